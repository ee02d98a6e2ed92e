"""Publishing: after every linking run, each role's views are copied out of the warehouse into what that role
reads, so analysts query at any time without touching the pipeline's warehouse.

* DuckDB (default): one file per role (``ANALYST_DB_PATH``, ``COMPLIANCE_DB_PATH``, optionally
  ``STEWARD_DB_PATH``), replaced atomically (``publish_files``).
* Postgres: schemas ``links``, ``personal``, ``audit`` swapped in one transaction and granted to the roles
  ``idlink_analyst``, ``idlink_steward``, ``idlink_compliance`` (``publish_schemas``).

``publish`` does whichever the warehouse calls for. The access matrix is ``publishing.roles``. Imports:
``settings``, ``warehouse``.
"""

from publishing.duckdb_files import Publication, PublishError, publish_files
from publishing.postgres import publish_schemas
from publishing.roles import ANALYST, COMPLIANCE, ROLES, STEWARD, Role, published_schemas, view_schema
from settings import PublishSettings
from warehouse import Warehouse


def file_targets(settings: PublishSettings) -> dict[Role, object]:
    """Each role's file: the analyst and compliance databases always, the steward's only when configured."""
    targets = {ANALYST: settings.analyst_db_path, COMPLIANCE: settings.compliance_db_path}
    if settings.steward_db_path is not None:
        targets[STEWARD] = settings.steward_db_path
    return targets


def publish(warehouse: Warehouse, settings: PublishSettings, run_id: str) -> list[Publication]:
    """This run's copy of every role's schemas: granted schemas on a Postgres warehouse, files beside a DuckDB
    one."""
    if warehouse.url:
        with warehouse.connect() as con:
            con.raw.autocommit = False  # publish_schemas commits its one transaction itself
            return publish_schemas(con.raw, run_id, settings.hash_salt)
    return publish_files(warehouse.path, file_targets(settings), run_id, settings.hash_salt)


__all__ = [
    "ANALYST",
    "COMPLIANCE",
    "ROLES",
    "STEWARD",
    "Publication",
    "PublishError",
    "Role",
    "file_targets",
    "publish",
    "publish_files",
    "publish_schemas",
    "published_schemas",
    "view_schema",
]
