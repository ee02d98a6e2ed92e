"""Linking benchmark: synthetic identities + contacts -> raw tables -> `dbt build` of the linking project.

    python bench/linking.py --size 1000000 [--seed 7] [--cache-dir data/bench]

Generating and loading the raw tables is not timed (datasets are cached as Parquet per size and seed).
The match model is trained first, as the training asset does (`dbt run-operation train_match_model` once the
intermediate tables exist); training_seconds is what training reports itself (dbt's start-up excluded).
Timed: `dbt build` of the seed, models and snapshot, which applies the trained model (wall-clock span of the
model nodes' execution in dbt's run_results, so dbt's own start-up and parsing are excluded); the data tests then
run as `dbt test` and are reported separately (tests_seconds). Peak RSS is sampled over the dbt process tree (DuckDB runs inside it);
cpu_seconds is the dbt process's CPU time, a figure less sensitive to other load on the machine. Precision and recall are measured against the
generator's ground truth (see tests/dbt/link_quality.py). Progress goes to stderr; one JSON line is printed last.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestration.defs.linking import decision_bands
from tests.dbt.link_quality import measure
from tests.dbt.raw_loader import load_raw_tables, raw_tables, read_parquet, write_parquet

DBT_PROJECT = REPO / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class TruthRow(tuple):
    """Attribute access over cached truth rows, matching sandbox.synthetic.TruthPair."""

    identity_provider = property(lambda self: self[0])
    identity_id = property(lambda self: self[1])
    contact_id = property(lambda self: self[2])
    evidence = property(lambda self: self[3])


def dataset(size: int, seed: int, cache_dir: Path, noise_profile: str = "default"
            ) -> tuple[dict, list, dict, list[tuple[str, str, str]]]:
    """Raw tables, truth, consent and the hard negatives (identity id, contact id, reason: a family's shared
    mailbox, a stranger of the same name) for (size, seed, noise profile); generated once, then read from the
    cache."""
    suffix = "" if noise_profile == "default" else f"-{noise_profile}"
    cache = cache_dir / f"linking-{size}-{seed}{suffix}"
    if (cache / "negatives.parquet").exists():
        log(f"reading cached dataset {cache}")
        truth = pq.read_table(cache / "truth.parquet").to_pylist()
        consent = pq.read_table(cache / "consent.parquet").to_pylist()
        negatives = pq.read_table(cache / "negatives.parquet").to_pylist()
        return (read_parquet(cache / "raw"),
                [TruthRow((t["identity_provider"], t["identity_id"], t["contact_id"], t["evidence"])) for t in truth],
                {c["identity_id"]: c["consent"] for c in consent},
                [(n["identity_id"], n["contact_id"], n["reason"]) for n in negatives])
    from sandbox.synthetic import generate

    started = time.perf_counter()
    log(f"generating {size} synthetic identities (seed {seed}, noise profile {noise_profile})")
    data = generate(size, seed, noise_profile=noise_profile)
    log(f"generated {len(data.users)} users, {len(data.contacts)} contacts in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    tables = raw_tables(data.users, data.contacts, data.akamai_users)
    log(f"built raw tables through the ingestion normalisation in {time.perf_counter() - started:.0f} s")
    write_parquet(tables, cache / "raw")
    pq.write_table(pa.Table.from_pylist([t._asdict() for t in data.truth]), cache / "truth.parquet")
    pq.write_table(pa.Table.from_pylist([{"identity_id": k, "consent": v} for k, v in data.identity_consent.items()]),
                   cache / "consent.parquet")
    negatives = [(n.identity_id, n.contact_id, n.reason) for n in data.negatives]
    pq.write_table(pa.Table.from_pylist([dict(zip(("identity_id", "contact_id", "reason"), n)) for n in negatives],
                                        schema=pa.schema([("identity_id", pa.string()), ("contact_id", pa.string()),
                                                          ("reason", pa.string())])),
                   cache / "negatives.parquet")
    return tables, list(data.truth), dict(data.identity_consent), negatives


def run_dbt(args: list[str], warehouse: Path, target_dir: Path) -> tuple[int, float, float]:
    """Runs dbt; returns (exit code, peak RSS in MB of the dbt process tree, CPU seconds of dbt)."""
    env = {**os.environ, "WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"}
    command = [str(DBT), *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
               "--target-path", str(target_dir), "--log-path", str(target_dir / "logs")]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    cpu = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, cpu
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
                peak = max(peak, rss)
                times = root.cpu_times()
                cpu = times.user + times.system
            except psutil.Error:
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        print(output[-5000:], file=sys.stderr)
    return proc.returncode, peak / 2**20, cpu


def node_span(results: list[dict], resource_prefix: str) -> float:
    """Wall-clock seconds from the first node's execution start to the last one's end."""
    starts, ends = [], []
    for result in results:
        if not result["unique_id"].startswith(resource_prefix):
            continue
        for timing in result.get("timing", []):
            if timing["name"] == "execute" and timing.get("started_at") and timing.get("completed_at"):
                starts.append(datetime.fromisoformat(timing["started_at"]))
                ends.append(datetime.fromisoformat(timing["completed_at"]))
    return (max(ends) - min(starts)).total_seconds() if starts else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise-profile", default="default",
                        help="the generator's noise profile (sandbox.synthetic.profiles: default, messy)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--keep-warehouse", type=Path,
                        help="copy the built warehouse here to look into its links afterwards")
    args = parser.parse_args(argv)

    tables, truth, consent, negatives = dataset(args.size, args.seed, args.cache_dir, args.noise_profile)
    with tempfile.TemporaryDirectory(prefix="idlink-bench-") as tmp:
        warehouse = Path(tmp) / "warehouse.duckdb"
        with duckdb.connect(str(warehouse)) as con:
            counts = load_raw_tables(con, tables)
        log(f"loaded raw tables {counts}")
        del tables

        log("training the match model")
        code, train_peak_mb, _ = run_dbt(["build", "--select", "+int_identities", "+int_contacts", "nickname_equivalents",
                              "--exclude", "resource_type:test", "resource_type:unit_test"], warehouse,
                             Path(tmp) / "target-train")
        if code == 0:
            code, train_peak_mb, _ = run_dbt(["run-operation", "train_match_model"], warehouse, Path(tmp) / "target-train")
        if code != 0:
            log("training failed")
            return 1
        with duckdb.connect(str(warehouse), read_only=True) as con:
            training_s, iterations, converged = con.execute(
                "select training_seconds, iterations, converged from match_model.versions order by version desc limit 1"
            ).fetchone()
        log(f"trained in {training_s:.1f} s ({iterations} EM iterations, converged: {converged}), "
            f"peak RSS {train_peak_mb:.0f} MB")

        log("dbt build of the seed, models and snapshot")
        started = time.perf_counter()
        code, peak_mb, cpu_s = run_dbt(["build", "--exclude", "resource_type:test", "resource_type:unit_test"],
                                       warehouse, Path(tmp) / "target")
        total = time.perf_counter() - started
        if code != 0:
            log("dbt build failed")
            return 1
        results = json.loads((Path(tmp) / "target" / "run_results.json").read_text())["results"]
        models_s = node_span(results, "model.")
        # the slowest nodes, to see where the time goes
        for result in sorted(results, key=lambda r: -r.get("execution_time", 0))[:8]:
            log(f"  {result['unique_id']}: {result.get('execution_time', 0):.2f} s")
        log(f"models {models_s:.2f} s (dbt CPU {cpu_s:.1f} s), whole dbt process {total:.1f} s, "
            f"peak RSS {peak_mb:.0f} MB")

        log("dbt test (data tests)")
        code, test_peak_mb, _ = run_dbt(["test", "--exclude", "resource_type:unit_test"], warehouse,
                                        Path(tmp) / "target-test")
        if code != 0:
            log("dbt test failed")
            return 1
        tests_s = node_span(json.loads((Path(tmp) / "target-test" / "run_results.json").read_text())["results"],
                            "test.")
        log(f"data tests {tests_s:.2f} s, peak RSS {test_peak_mb:.0f} MB")

        with duckdb.connect(str(warehouse), read_only=True) as con:
            quality = measure(con, truth, consent)
            bands = decision_bands(con)
            # links the generator says are two people: a family's shared mailbox, strangers of one name
            active = set(con.execute("""select identity_id, contact_id from marts.identity_contact_links
                where status = 'active'""").fetchall())
        wrong_links: dict[str, int] = {}
        for identity_id, contact_id, reason in negatives:
            if (identity_id, contact_id) in active:
                wrong_links[reason] = wrong_links.get(reason, 0) + 1
        if args.keep_warehouse:
            shutil.copyfile(warehouse, args.keep_warehouse)
        log(f"active links {quality.active_links}, linkable true pairs {quality.linkable_pairs}, "
            f"precision {quality.precision:.5f}, recall {quality.recall:.5f}")

    print(json.dumps({
        "size": args.size, "seconds": round(models_s, 3),
        "peak_rss_mb": round(max(peak_mb, test_peak_mb), 1),
        "precision": round(quality.precision, 6), "recall": round(quality.recall, 6),
        "cpu_seconds": round(cpu_s, 1), "tests_seconds": round(tests_s, 3),
        "dbt_process_seconds": round(total, 2),
        "identities": counts.get("raw_b2c.users", 0) + counts.get("raw_akamai.users", 0),
        "contacts": counts.get("raw_salesforce.contact", 0), "active_links": quality.active_links,
        "training_seconds": round(training_s, 2), "training_iterations": iterations, "training_converged": converged,
        "auto_links": bands["auto_links"], "model_links": bands["model_links"], "review_items": bands["review_items"],
        "noise_profile": args.noise_profile,
        "family_mailbox_links": wrong_links.get("family_mailbox", 0),
        "same_name_stranger_links": wrong_links.get("same_name_stranger", 0),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
