"""Filling a sandbox with records: JSONL seed files in each API's native shape, or synthetic data generated
in-process for the systems that have no seed file.

Each system module exposes a loader (``sandbox.microsoft.load_users``, ``sandbox.salesforce.load_contacts``,
``sandbox.akamai.load_entities``, ``sandbox.scim.load_users``); this module only reads files and routes records to them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import synthetic, wire_json
from sandbox.context import SandboxContext, gc_paused


class SeedFileError(ValueError):
    """A seed file that cannot be read as JSON lines of objects; names the file and line, never the content."""


@dataclass(frozen=True)
class SeedTarget:
    system: str  # key in the seed mapping, the returned counts and SyntheticData; ``--<system>`` on the CLI
    module: str
    loader: str
    description: str  # what the seed file holds, for ``--help``

    @property
    def option(self) -> str:
        return "--" + self.system.replace("_", "-")


SEED_TARGETS: tuple[SeedTarget, ...] = (
    SeedTarget("users", "sandbox.microsoft", "load_users", "JSONL of Microsoft Graph user objects"),
    SeedTarget("contacts", "sandbox.salesforce", "load_contacts", "JSONL of Salesforce Contact records"),
    SeedTarget("akamai_users", "sandbox.akamai", "load_entities", "JSONL of Akamai Identity Cloud user entities"),
    SeedTarget("scim_users", "sandbox.scim", "load_users", "JSONL of SCIM 2.0 User resources"),
    SeedTarget("dynamics_contacts", "sandbox.dataverse", "load_contacts",
               "JSONL of Dataverse contact records (Web API shape)"),
)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file (blank lines ignored); every line must be one JSON object."""
    with gc_paused():
        return _read_jsonl(path)


def _read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with Path(path).open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = wire_json.loads(line)
            except ValueError as exc:
                raise SeedFileError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise SeedFileError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        for record in records:
            fh.write(wire_json.dumps(record) + b"\n")
    return target


def _loader(target: SeedTarget):
    return getattr(importlib.import_module(target.module), target.loader)


def _generate(ctx: SandboxContext, size: int) -> Any:
    config = ctx.config
    return synthetic.generate(
        size, seed=config.seed, extensions_app_id=config.extensions_app_id, tenant=config.tenant_id,
        dynamics_share=config.dynamics_share, noise_profile=config.noise_profile,
    )


def seed_context(
    ctx: SandboxContext,
    *,
    files: dict[str, str | Path | None],
    size: int | None = None,
) -> dict[str, int]:
    """Load every system: from its seed file when given, else (with ``size``) from synthetic data.

    ``files`` maps a seed target's ``system`` (``users``, ``contacts``, …) to a JSONL path. Returns records loaded
    per system.
    """
    with gc_paused():
        return _seed(ctx, files, size)


def _seed(ctx: SandboxContext, files: dict[str, str | Path | None], size: int | None) -> dict[str, int]:
    records: dict[str, list[dict[str, Any]]] = {}
    for target in SEED_TARGETS:
        path = files.get(target.system)
        if path:
            records[target.system] = read_jsonl(path)
    missing = [t.system for t in SEED_TARGETS if t.system not in records]
    if size and missing:
        data = _generate(ctx, size)
        for system in missing:
            records[system] = getattr(data, system)
    counts: dict[str, int] = {}
    for target in SEED_TARGETS:
        batch = records.get(target.system)
        if batch is None:
            continue
        loaded = _loader(target)(ctx, batch)
        counts[target.system] = loaded if isinstance(loaded, int) else len(batch)
    return counts
