"""Builds the marts the reverse ETL reads (documented columns) in a scratch DuckDB file, without dbt."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

IDENTITY_VALUES = ("email", "given_name", "family_name", "phone_e164", "street_address", "city", "postal_code",
                   "country_code")
SEED_ATTRIBUTES = ("created_at", "email_verified", "last_login_at", "last_updated_at")
CONTACTS_TO_CREATE = ("identity_provider", "identity_id", "crm", *IDENTITY_VALUES, "client_id", *SEED_ATTRIBUTES,
                      "marketing_opt_out")
EXTERNAL_IDS_TO_PUSH = ("target_system", "target_id", "attribute", "value", "reason", "identity_provider",
                        "identity_id", "crm", "contact_id", "client_id")
CONTACT_FIELDS_TO_PUSH = ("crm", "contact_id", "identity_provider", "identity_id", *IDENTITY_VALUES, "client_id",
                          *SEED_ATTRIBUTES)
_TYPES = {"created_at": "TIMESTAMPTZ", "last_login_at": "TIMESTAMPTZ", "last_updated_at": "TIMESTAMPTZ",
          "email_verified": "BOOLEAN", "marketing_opt_out": "BOOLEAN"}
IDENTITY_CONTACT_LINKS = ("identity_provider", "identity_id", "crm", "contact_id", "match_rule", "match_confidence",
                          "status", "consent_state", "first_seen_at", "last_seen_at", "linked_at")


def contact_row(identity_id: str, n: int, **overrides: Any) -> dict[str, Any]:
    row = {"identity_provider": "b2c", "identity_id": identity_id, "crm": "salesforce",
           "email": f"person{n}@example.org", "given_name": f"Given{n}", "family_name": f"Family{n}",
           "phone_e164": f"+4930{n:07d}", "street_address": f"{n} Main Street", "city": "Berlin",
           "postal_code": "10115", "country_code": "DE", "marketing_opt_out": True}
    row.update(overrides)
    return row


def external_id_row(target_system: str, target_id: str, attribute: str, value: str | None, *,
                    identity_id: str, contact_id: str, reason: str = "link") -> dict[str, Any]:
    return {"target_system": target_system, "target_id": target_id, "attribute": attribute, "value": value,
            "reason": reason, "identity_provider": "b2c", "identity_id": identity_id, "crm": "salesforce",
            "contact_id": contact_id}


def write_marts(path: str | Path, *, contacts: Iterable[Mapping[str, Any]] = (),
                external_ids: Iterable[Mapping[str, Any]] = (), contact_fields: Iterable[Mapping[str, Any]] = ()
                ) -> None:
    """(Re)create marts.contacts_to_create, marts.external_ids_to_push, marts.contact_fields_to_push and
    marts.identity_contact_links."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for name, columns, rows in (("contacts_to_create", CONTACTS_TO_CREATE, list(contacts)),
                                    ("external_ids_to_push", EXTERNAL_IDS_TO_PUSH, list(external_ids)),
                                    ("contact_fields_to_push", CONTACT_FIELDS_TO_PUSH, list(contact_fields))):
            frame = pd.DataFrame(rows, columns=list(columns)).astype("object")
            con.register("frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT "
                        + ", ".join(f"CAST({c} AS {_TYPES.get(c, 'VARCHAR')}) AS {c}" for c in columns)
                        + " FROM frame")
            con.unregister("frame")
        con.execute("CREATE TABLE IF NOT EXISTS marts.identity_contact_links ("
                    + ", ".join(f"{c} VARCHAR" for c in IDENTITY_CONTACT_LINKS) + ")")
