"""Runs the project's dbt CLI against a given warehouse, in a subprocess (dbt keeps global state in-process)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    output: str
    results: list[dict]

    def failures(self) -> list[str]:
        return [f"{r['unique_id']}: {r['status']}" for r in self.results
                if r["status"] not in ("success", "pass")]


def run_dbt(args: list[str], target_dir: Path, env: dict[str, str], timeout_s: float = 600) -> DbtRun:
    command = [str(DBT), *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
               "--target-path", str(target_dir), "--log-path", str(target_dir / "logs")]
    proc = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout_s,
                          check=False)  # the caller asserts on the exit code and shows the output
    results_path = target_dir / "run_results.json"
    results = json.loads(results_path.read_text())["results"] if results_path.exists() else []
    return DbtRun(proc.returncode, proc.stdout + proc.stderr, results)
