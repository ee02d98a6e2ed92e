"""Column schemas of the raw tables, as pyarrow schemas (what the sources yield) and dlt column hints.

Declaring both keeps column types stable even when a page holds only nulls in some column.
"""

from __future__ import annotations

import dlt
import pyarrow as pa

TEXT = pa.string()
BOOL = pa.bool_()
TIMESTAMP = pa.timestamp("us", tz="UTC")

_DLT_TYPES = {TEXT: "text", BOOL: "bool", TIMESTAMP: "timestamp"}

# columns every raw table carries after its own ones
BOOKKEEPING: tuple[tuple[str, pa.DataType], ...] = (
    ("email_valid", BOOL),
    ("content_hash", TEXT),
    ("quality_flags", TEXT),
    ("is_deleted", BOOL),
    ("deleted_at", TIMESTAMP),
    ("ingested_at", TIMESTAMP),
)

B2C_USERS: tuple[tuple[str, pa.DataType], ...] = (
    ("id", TEXT),
    ("display_name", TEXT),
    ("given_name", TEXT),
    ("surname", TEXT),
    ("mail", TEXT),
    ("other_mails", TEXT),
    ("sign_in_email", TEXT),
    ("identities", TEXT),
    ("mobile_phone", TEXT),
    ("business_phone", TEXT),
    ("phone_e164", TEXT),
    ("street_address", TEXT),
    ("city", TEXT),
    ("postal_code", TEXT),
    ("state", TEXT),
    ("country", TEXT),
    ("country_code", TEXT),
    ("account_enabled", BOOL),
    ("created_date_time", TIMESTAMP),
    ("custom_attributes", TEXT),
    # the application (client id) the identity registered through: which field-mapping entry applies to it
    ("client_id", TEXT),
    ("email_verified", BOOL),
    ("last_login_at", TIMESTAMP),
    ("last_updated_at", TIMESTAMP),
) + BOOKKEEPING

SALESFORCE_CONTACT: tuple[tuple[str, pa.DataType], ...] = (
    ("id", TEXT),
    ("account_id", TEXT),
    ("first_name", TEXT),
    ("last_name", TEXT),
    ("email", TEXT),
    ("phone", TEXT),
    ("mobile_phone", TEXT),
    ("mailing_street", TEXT),
    ("mailing_city", TEXT),
    ("mailing_postal_code", TEXT),
    ("mailing_state", TEXT),
    ("mailing_country", TEXT),
    ("country_code", TEXT),
    ("phone_e164", TEXT),
    ("external_user_id", TEXT),
    ("master_record_id", TEXT),
    ("created_date", TIMESTAMP),
    ("last_modified_date", TIMESTAMP),
    ("system_modstamp", TIMESTAMP),
    ("extra_fields", TEXT),
) + BOOKKEEPING

# Dynamics 365 / Dataverse contacts: the contact columns of raw_salesforce.contact where they mean the same,
# under Dataverse's own words where they do not (created_on, modified_on, version_number, is_active)
DYNAMICS_CONTACT: tuple[tuple[str, pa.DataType], ...] = (
    ("id", TEXT),
    ("account_id", TEXT),
    ("first_name", TEXT),
    ("last_name", TEXT),
    ("email", TEXT),
    ("phone", TEXT),
    ("mobile_phone", TEXT),
    ("street", TEXT),
    ("city", TEXT),
    ("postal_code", TEXT),
    ("state", TEXT),
    ("country", TEXT),
    ("country_code", TEXT),
    ("phone_e164", TEXT),
    ("external_user_id", TEXT),
    ("master_record_id", TEXT),
    ("is_active", BOOL),
    ("created_on", TIMESTAMP),
    ("modified_on", TIMESTAMP),
    ("version_number", TEXT),
    ("extra_fields", TEXT),
) + BOOKKEEPING

QUARANTINE: tuple[tuple[str, pa.DataType], ...] = (
    ("source", TEXT),
    ("record_key", TEXT),
    ("reason", TEXT),
    ("payload_excerpt", TEXT),
    ("quarantined_at", TIMESTAMP),
)


def payload_columns(columns: tuple[tuple[str, pa.DataType], ...]) -> tuple[str, ...]:
    """The columns a page builder fills from the record, in order: the table's own ones and ``email_valid``
    (what the content hash covers); the other bookkeeping columns are filled by the load."""
    own = tuple(name for name, _ in columns[:len(columns) - len(BOOKKEEPING)])
    return own + (BOOKKEEPING[0][0],)


def arrow_schema(columns: tuple[tuple[str, pa.DataType], ...]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=(name != "id")) for name, dtype in columns])


def dlt_columns(columns: tuple[tuple[str, pa.DataType], ...]) -> dict[str, dict]:
    hints: dict[str, dict] = {}
    for name, dtype in columns:
        hint: dict = {"data_type": _DLT_TYPES[dtype], "nullable": name != "id"}
        if dtype == TIMESTAMP:
            hint["timezone"] = True
        hints[name] = hint
    return hints


def table_from_columns(schema: pa.Schema, data: dict[str, list]) -> pa.Table:
    """An arrow table of ``schema`` built column by column (much cheaper than row dicts)."""
    return pa.Table.from_arrays([pa.array(data[f.name], type=f.type) for f in schema], schema=schema)


def routed(
    table: pa.Table | list[dict],
    table_name: str,
    columns: tuple[tuple[str, pa.DataType], ...],
    *,
    write_disposition: str,
    primary_key: str | None = None,
    unique_keys: bool = False,
):
    """``table`` marked for ``table_name`` with its own complete hints.

    One resource writes both its main table and ``quarantine``; dlt merges a resource's base column hints
    into every table it writes, so the main table's hints travel with its items instead of the resource.
    ``unique_keys`` declares that a run never emits a primary key twice, so dlt's merge skips its
    deduplication pass over the staged rows (a window over every row of the load).
    """
    hints = dlt.mark.make_hints(
        table_name=table_name,
        write_disposition=write_disposition,
        columns=dlt_columns(columns),
        primary_key=primary_key,
        additional_table_hints={"x-stage-data-deduplicated": True} if unique_keys else None,
    )
    return dlt.mark.with_hints(table, hints, create_table_variant=True)


def to_ipc(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes of ``table`` (how worker processes hand pages back)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


class TableBatcher:
    """Gathers page tables into items of at least ``min_rows`` rows.

    Every item costs dlt a fixed amount of work (hint computation, a file of its own, a load job), so a few
    large items load much faster than one item per API page.
    """

    def __init__(self, min_rows: int = 50_000) -> None:
        self.min_rows = min_rows
        self._tables: list[pa.Table] = []
        self._rows = 0

    def add(self, table: pa.Table) -> pa.Table | None:
        """Adds ``table``; returns the gathered batch once it is large enough, else None."""
        self._tables.append(table)
        self._rows += table.num_rows
        return self.flush() if self._rows >= self.min_rows else None

    def flush(self) -> pa.Table | None:
        """The gathered rows as one table (None when there are none); starts a new batch."""
        tables, self._tables, self._rows = self._tables, [], 0
        if not tables:
            return None
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()
