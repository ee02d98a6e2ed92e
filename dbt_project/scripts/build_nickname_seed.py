"""Write seeds/nickname_equivalents.csv: for every known first name or nickname, the names it may stand for.

Rows are (name, canonical_name): the name itself, and every name it is a nickname of ("bill" -> bill, william;
"kittie" -> kittie, catherine, ...). Two first names agree when their canonical names overlap. The `nicknames`
package is noisy: some relations run backwards ("bill" has_nickname "william"), which would chain unrelated
formal names together (william ~ bill ~ robert). A relation whose nickname has more nicknames of its own than
its "formal" name is therefore dropped: a real nickname is the less elaborated of the two.

Refresh (after upgrading the `nicknames` package), from the repository root:
    .venv/bin/python dbt_project/scripts/build_nickname_seed.py
then commit the CSV; `dbt seed` / `dbt build` loads it.
"""
from __future__ import annotations

import csv
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

from nicknames import name_triplets

SEED_PATH = Path(__file__).resolve().parent.parent / "seeds" / "nickname_equivalents.csv"


def _fold(name: str) -> str:
    """Same folding the staging models apply: case-folded, accent-free, single-spaced."""
    decomposed = unicodedata.normalize("NFKD", name.strip().lower())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def canonical_names() -> list[tuple[str, str]]:
    relations: set[tuple[str, str]] = set()
    nickname_count: dict[str, int] = defaultdict(int)
    for triplet in name_triplets():
        if triplet.relationship != "has_nickname":
            continue
        name, nickname = _fold(triplet.name1), _fold(triplet.name2)
        if name and nickname and name != nickname:
            relations.add((name, nickname))
            nickname_count[name] += 1
    rows = {(name, name) for pair in relations for name in pair}
    rows |= {(nickname, name) for name, nickname in relations if nickname_count[nickname] <= nickname_count[name]}
    return sorted(rows)


def main(path: Path = SEED_PATH) -> int:
    rows = canonical_names()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "canonical_name"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
