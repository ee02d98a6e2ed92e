"""A small, fully known world for the sandbox tests: B2C users, existing contacts, and the marts that link them."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from reverse_etl.mapping import mapping_for
from settings import GraphSettings, SalesforceSettings, load_settings
from tests.reverse_etl.marts import contact_row, external_id_row, write_marts

WRITE_METHODS = ("POST ", "PATCH ", "PUT ", "DELETE ")


def identity_id(n: int) -> str:
    return str(uuid.UUID(int=0xB2C0000000000000 + n))


def seed_users(n: int) -> list[dict]:
    return [{"id": identity_id(i), "displayName": f"User {i}", "accountEnabled": True} for i in range(n)]


def seed_contacts(n: int) -> list[dict]:
    return [{"LastName": f"Existing{i}", "Email": f"existing{i}@example.org"} for i in range(n)]


def write_calls(stats: dict) -> int:
    """Requests that could change data; token requests excluded."""
    return sum(count for route, count in stats["requests"].items()
               if route.startswith(WRITE_METHODS) and "token" not in route)


@dataclass
class World:
    sandbox: object
    warehouse: Path
    creates: list[str]  # identity ids that must each get exactly one new contact
    links: list[tuple[str, str]]  # (identity id, existing contact id) written on both sides
    existing_contacts: int

    @property
    def graph(self) -> GraphSettings:
        return load_settings(self.sandbox.env).graph

    @property
    def salesforce(self) -> SalesforceSettings:
        return load_settings(self.sandbox.env).salesforce

    @property
    def mapping(self):
        return mapping_for(load_settings({}).field_mapping)

    def contacts(self) -> list[dict]:
        return self.sandbox.state()["salesforce"]["Contact"]

    def users(self) -> dict[str, dict]:
        return {u["id"]: u for u in self.sandbox.state()["b2c"]["users"]}


def build_world(sandbox_factory, tmp_path: Path, *, creates: int, links: int, **sandbox_kwargs) -> World:
    """``creates`` identities without a contact, ``links`` identities matched to existing contacts."""
    sandbox = sandbox_factory(users=seed_users(creates + links), contacts=seed_contacts(links), **sandbox_kwargs)
    contact_ids = sorted(c["Id"] for c in sandbox.state()["salesforce"]["Contact"])
    create_ids = [identity_id(i) for i in range(creates)]
    pairs = [(identity_id(creates + i), contact_ids[i]) for i in range(links)]
    external_ids = []
    for ident, contact in pairs:
        external_ids.append(external_id_row("salesforce", contact, "External_User_Id__c", ident,
                                            identity_id=ident, contact_id=contact))
        external_ids.append(external_id_row("b2c", ident, "CrmContactId", contact,
                                            identity_id=ident, contact_id=contact))
    warehouse = tmp_path / "warehouse.duckdb"
    write_marts(warehouse, contacts=[contact_row(ident, n) for n, ident in enumerate(create_ids)],
                external_ids=external_ids)
    return World(sandbox, warehouse, create_ids, pairs, links)
