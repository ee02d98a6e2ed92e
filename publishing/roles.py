"""Who reads what (the access matrix): each role is granted published schemas, never the warehouse itself.

=============  ===================  ===========================================================================
role           published schemas    what it sees
=============  ===================  ===========================================================================
analyst        links                links, review queue, duplicates, consent exclusions, sync outcomes; personal
                                    fields only masked (j***@example.com) or keyed (salted hash to join on)
steward        links, personal      the same, and every personal field in full (to resolve reviews, requests)
compliance     audit                the audit trail only: every write to an outside system, erasures; keys only
=============  ===================  ===========================================================================

Schemas are named for what they hold, not for who reads them: a DuckDB file is a catalog named after the file
(``analyst.duckdb`` is catalog ``analyst``), and a schema of the same name would make ``analyst.x`` ambiguous.

dbt builds each published schema as views in ``<schema>_views`` of the warehouse (models/published/); the
publisher copies them into tables, then creates the schema's published views over those tables. On Postgres a role is a database role (``idlink_<name>``) granted its schemas; on DuckDB,
which has no roles, a role is a file holding exactly its schemas, and the file system decides who opens it.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLE_PREFIX = "idlink_"  # Postgres roles: idlink_analyst, idlink_steward, idlink_compliance
PERSONAL_SCHEMAS = frozenset({"personal"})  # schemas with personal fields in clear


@dataclass(frozen=True)
class Role:
    name: str
    schemas: tuple[str, ...]

    @property
    def database_role(self) -> str:
        return ROLE_PREFIX + self.name

    @property
    def holds_personal_data(self) -> bool:
        return any(schema in PERSONAL_SCHEMAS for schema in self.schemas)


ANALYST = Role("analyst", ("links",))
STEWARD = Role("steward", ("links", "personal"))
COMPLIANCE = Role("compliance", ("audit",))
ROLES: tuple[Role, ...] = (ANALYST, STEWARD, COMPLIANCE)


# Views of a published database over its own tables (dbt materialization published_view, e.g. links.link_evidence
# over links.link_scores): dbt records their SQL here, in the warehouse, and the publisher creates them
PUBLISHED_VIEWS_REGISTRY = ("publishing", "views")  # (published_schema, name, definition)


def view_schema(published_schema: str) -> str:
    """The warehouse schema dbt builds a published schema's views in."""
    return f"{published_schema}_views"


def published_schemas() -> tuple[str, ...]:
    """Every published schema, each once, in the order of the matrix."""
    return tuple(dict.fromkeys(schema for role in ROLES for schema in role.schemas))
