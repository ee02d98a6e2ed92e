"""A small warehouse built by dbt from synthetic raw tables, the personal values it was built from, and the
README's questions analysts ask."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sandbox.synthetic import generate
from tests.dbt.dbt_cli import run_dbt
from tests.dbt.raw_loader import load_raw_tables, raw_tables

PERSONAL_COLUMNS = {
    ("raw_b2c", "users"): ("given_name", "surname", "display_name", "mail", "sign_in_email", "mobile_phone",
                           "business_phone", "phone_e164", "street_address"),
    ("raw_akamai", "users"): ("given_name", "surname", "display_name", "mail", "sign_in_email", "phone_e164",
                              "street_address"),
    ("raw_salesforce", "contact"): ("first_name", "last_name", "email", "phone", "mobile_phone", "phone_e164",
                                    "mailing_street"),
    ("raw_dynamics", "contact"): ("first_name", "last_name", "email", "phone", "mobile_phone", "phone_e164",
                                  "street"),
}
PERSONAL_COLUMNS[("raw_scim", "users")] = PERSONAL_COLUMNS[("raw_akamai", "users")]
README = Path(__file__).resolve().parents[2] / "README.md"


def questions() -> list[str]:
    """The SQL of the README's "Questions analysts ask"."""
    text = README.read_text()
    section = text[text.index("### Questions analysts ask"):]
    section = section[:section.index("\n## ")]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


@dataclass(frozen=True)
class BuiltWarehouse:
    path: Path
    target: Path

    def personal_values(self) -> set[str]:
        """Every non-empty personal value of the raw tables, lower-cased."""
        values: set[str] = set()
        with duckdb.connect(str(self.path), read_only=True) as con:
            present = set(con.execute("select table_schema, table_name from information_schema.tables").fetchall())
            for (schema, table), columns in PERSONAL_COLUMNS.items():
                for column in columns if (schema, table) in present else ():
                    values.update(str(v).strip().lower() for (v,) in con.execute(
                        f'select distinct "{column}" from "{schema}"."{table}" where "{column}" is not null'
                    ).fetchall() if str(v).strip())
        return values

    def emails(self) -> set[str]:
        return {value for value in self.personal_values() if "@" in value}


def build_warehouse(workdir: Path, size: int = 200, seed: int = 3,
                    before_build: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> BuiltWarehouse:
    """Raw tables of ``size`` synthetic people, ``before_build`` (e.g. earlier pushes' bookkeeping), dbt build."""
    data = generate(size, seed=seed)
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, raw_tables(data.users, data.contacts, data.akamai_users))
        if before_build is not None:
            before_build(con)
    target = workdir / "target"
    run = run_dbt(["build", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"], target,
                  {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"})
    assert run.returncode == 0, run.output[-4000:]
    return BuiltWarehouse(warehouse, target)
