"""Linking quality on the public FEBRL 4 data set (5,000 people; names and addresses only, corrupted on one side).

    python bench/record_linkage.py

Builds the dbt project over FEBRL 4 (file A as consented identities, file B as CRM contacts; see
tests/dbt/febrl.py) and prints one JSON line: links, precision, recall, links per rule, conflicts by reason.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dbt.febrl import build, febrl4


def main() -> int:
    data = febrl4()
    with tempfile.TemporaryDirectory(prefix="idlink-febrl-") as tmp:
        result = build(data, Path(tmp), ["build", "--exclude", "resource_type:test", "resource_type:unit_test"])
    if result.run.returncode != 0:
        print(result.run.output[-4000:], file=sys.stderr)
        return 1
    links, conflicts = result.links, result.conflicts
    true_links = sum((identity, contact) in data.true_pairs for identity, contact, _ in links)
    by_rule: dict[str, int] = {}
    for _, _, rule in links:
        by_rule[rule] = by_rule.get(rule, 0) + 1
    print(json.dumps({
        "dataset": "febrl4", "people": len(data.true_pairs), "active_links": len(links),
        "precision": round(true_links / len(links), 6) if links else 1.0,
        "recall": round(true_links / len(data.true_pairs), 6), "links_by_rule": by_rule, "conflicts": conflicts,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
