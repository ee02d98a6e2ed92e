"""dlt source of Salesforce contacts, incremental on ``SystemModstamp``.

Each run asks only for contacts modified since the cursor kept in dlt state (``>=``: dlt drops the rows of the
boundary it already loaded) and, through ``queryAll``, for contacts deleted since then. The cursor only moves
when the load succeeds, so a run that fails part-way loses nothing. A targeted run (``contact_ids``) fetches
just those contacts and leaves the cursor alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
import pyarrow.compute as pc

from clients import json_bodies
from clients.salesforce import SalesforceClient
from ingestion import normalize as n
from ingestion.columns import (
    SALESFORCE_CONTACT,
    TableBatcher,
    arrow_schema,
    from_ipc,
    payload_columns,
    routed,
    table_from_columns,
    to_ipc,
)
from ingestion.paging import numbered_pages
from ingestion.parallel import ordered_map
from ingestion.prefetch import prefetch
from ingestion.quality import LoadCounts, Quarantine, keyed_records
from settings import SalesforceSettings

log = logging.getLogger(__name__)

DATASET = "raw_salesforce"
TABLE = "contact"
SCHEMA = arrow_schema(SALESFORCE_CONTACT)
STANDARD_FIELDS: tuple[str, ...] = (
    "Id",
    "IsDeleted",
    "AccountId",
    "MasterRecordId",
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MobilePhone",
    "MailingStreet",
    "MailingCity",
    "MailingPostalCode",
    "MailingState",
    "MailingCountry",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
)
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_IDS_PER_QUERY = 200  # keeps each SOQL statement far below Salesforce's length limit
_PAYLOAD_COLUMNS = payload_columns(SALESFORCE_CONTACT)  # id … email_valid


class ConfigurationError(ValueError):
    """The configured Contact fields do not exist in the org."""


def contact_fields(client: SalesforceClient) -> list[str]:
    """SOQL field list (standard + external-ID + configured extras) checked against ``describe``."""
    settings = client.settings
    wanted = list(STANDARD_FIELDS) + [settings.external_id_field] + list(settings.extra_contact_fields)
    described = client.describe("Contact")
    available = {f["name"].lower(): f["name"] for f in described.get("fields", [])}
    unknown = [name for name in wanted if name.lower() not in available]
    if unknown:
        raise ConfigurationError(
            "Contact has no field(s) "
            + ", ".join(unknown)
            + " (check SALESFORCE_EXTERNAL_ID_FIELD / SALESFORCE_CONTACT_FIELDS)"
        )
    # the org's spelling, without duplicates
    return list(dict.fromkeys(available[name.lower()] for name in wanted))


def soql_datetime(value: datetime) -> str:
    """SOQL datetime literal, rounded down to the second (``>=`` then re-reads at most that second)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContactPageBuilder:
    """Turns pages of Salesforce Contact records into column lists of ``raw_salesforce.contact``."""

    def __init__(self, external_id_field: str, extra_fields: Sequence[str] = ()) -> None:
        self.external_id_field = external_id_field
        self.extra_fields = tuple(extra_fields)

    @classmethod
    def for_settings(cls, settings: SalesforceSettings) -> ContactPageBuilder:
        return cls(settings.external_id_field, settings.extra_contact_fields)

    def build(
        self, records: list[Any], page_key: str, quarantine: Quarantine, now: datetime, screen_text: bool = False
    ) -> dict[str, list]:
        cols: dict[str, list] = {f.name: [] for f in SCHEMA}
        for contact_id, record in keyed_records(records, "Id", page_key, quarantine, screen_text=screen_text):
            self._append(cols, contact_id, record, now)
        return cols

    def _append(self, cols: dict[str, list], contact_id: str, r: dict, now: datetime) -> None:
        flags: set[str] = set()
        text = n.clean_text
        first_name = text(r.get("FirstName"), flags)
        last_name = text(r.get("LastName"), flags)
        if not (first_name or last_name):
            flags.add(n.MISSING_NAME)
        email, email_valid = n.normalize_email(text(r.get("Email"), flags))
        if email_valid is None:
            flags.add(n.MISSING_EMAIL)
        elif not email_valid:
            flags.add(n.MALFORMED_EMAIL)
        phone = text(r.get("Phone"), flags)
        mobile_phone = text(r.get("MobilePhone"), flags)
        street = text(r.get("MailingStreet"), flags, multiline=True)
        city = text(r.get("MailingCity"), flags)
        postal_code = text(r.get("MailingPostalCode"), flags)
        state = text(r.get("MailingState"), flags)
        country = text(r.get("MailingCountry"), flags)
        country_code = n.country_iso2(country)
        phone_e164 = n.first_e164((mobile_phone, phone), country_code, flags)
        external_user_id = text(r.get(self.external_id_field), flags)
        master_record_id = text(r.get("MasterRecordId"), flags)  # set on a contact merged into another
        created = n.parse_timestamp(r.get("CreatedDate"), flags)
        modified = n.parse_timestamp(r.get("LastModifiedDate"), flags)
        modstamp = n.parse_timestamp(r.get("SystemModstamp"), flags)
        extra = n.json_text({name: r.get(name) for name in self.extra_fields}) if self.extra_fields else None
        deleted = r.get("IsDeleted") is True

        values = (
            contact_id,
            text(r.get("AccountId"), flags),
            first_name,
            last_name,
            email,
            phone,
            mobile_phone,
            street,
            city,
            postal_code,
            state,
            country,
            country_code,
            phone_e164,
            external_user_id,
            master_record_id,
            created,
            modified,
            modstamp,
            extra,
            email_valid,
        )
        flag_text = n.flags_text(flags)
        for name, value in zip(_PAYLOAD_COLUMNS, values):
            cols[name].append(value)
        cols["content_hash"].append(n.content_hash(values + (flag_text,)))
        cols["quality_flags"].append(flag_text)
        cols["is_deleted"].append(deleted)
        cols["deleted_at"].append((modstamp or now) if deleted else None)
        cols["ingested_at"].append(now)


def _pages(
    client: SalesforceClient, soql: str, include_deleted: bool, label: str, batch_size: int | None = None
) -> Iterator[bytes]:
    """Raw bodies of one query's pages; a page that fails past its retries names the query and page."""
    pages = client.query_page_bodies(soql, include_deleted=include_deleted, batch_size=batch_size)
    # the org's API budget spent: the caller says so rather than that one page failed
    spent = lambda exc: exc.code == "REQUEST_LIMIT_EXCEEDED" and not exc.retryable
    return (raw for raw, _ in numbered_pages(pages, f"Salesforce {label}", passes=spent))


def build_contact_page(
    task: tuple[bytes, str, Sequence[str], str, datetime],
) -> tuple[bytes, list[tuple[str, str, str]], int]:
    """Worker step: raw query page body -> (Arrow IPC of its rows, quarantined rows, records seen). Pure."""
    raw, external_id_field, extra_fields, page_key, now = task
    body, screen_text = json_bodies.loads_checked(raw)
    records = body.get("records", []) if isinstance(body, dict) else []
    quarantine = Quarantine("salesforce")
    cols = ContactPageBuilder(external_id_field, extra_fields).build(records, page_key, quarantine, now, screen_text)
    return to_ipc(table_from_columns(SCHEMA, cols)), quarantine.rows, len(records)


def _emit(
    pages: Iterator[bytes],
    builder: ContactPageBuilder,
    quarantine: Quarantine,
    label: str,
    counts: LoadCounts,
    now: datetime,
    workers: int | None,
) -> Iterator[Any]:
    tasks = (
        (raw, builder.external_id_field, builder.extra_fields, f"contact/{label}/page-{page_no}", now)
        for page_no, raw in enumerate(prefetch(pages), start=1)
    )
    batcher = TableBatcher()
    for ipc, quarantined, fetched in ordered_map(build_contact_page, tasks, workers=workers):
        counts.pages += 1
        counts.fetched += fetched
        table = from_ipc(ipc)
        if table.num_rows:
            counts.emitted += table.num_rows
            counts.deleted += pc.sum(table.column("is_deleted")).as_py() or 0
            counts.count_flags(table.column("quality_flags").to_pylist())
            if (batch := batcher.add(table)) is not None:
                yield _contacts_item(batch)
        if quarantined:
            quarantine.extend(quarantined)
            counts.quarantined += len(quarantine)
            yield quarantine.item(now)
    if (batch := batcher.flush()) is not None:
        yield _contacts_item(batch)


def _configured(settings: SalesforceSettings | None) -> SalesforceSettings:
    if settings is None:
        raise ValueError("Salesforce is not configured: set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET")
    return settings


def _contacts_item(table: Any) -> Any:
    return routed(table, TABLE, SALESFORCE_CONTACT, write_disposition="merge", primary_key="id")


def _check_ids(ids: Sequence[str]) -> list[str]:
    cleaned = [i for i in dict.fromkeys(str(x).strip() for x in ids) if i]
    bad = sum(1 for i in cleaned if not _ID.match(i))
    if bad:
        raise ValueError(
            f"{bad} of the requested contact ids are not Salesforce ids (15 or 18 letters/digits)"
        )
    return cleaned


@dlt.source(name="salesforce", max_table_nesting=0)
def salesforce_source(
    settings: SalesforceSettings | None = None, contact_ids: Sequence[str] = (), page_size: int | None = None,
    workers: int | None = None,
) -> Any:
    """Contacts as ``contact`` (merge on ``id``); unrepresentable records go to ``quarantine``.

    ``page_size`` is the query batch-size hint (200..2000; default: Salesforce's 2000); ``workers`` the processes
    normalising pages (None: the usable CPU count). Declaring the source needs no settings; loading it does.
    """
    wanted = _check_ids(contact_ids)
    # table hints travel with the items (see ``routed``): the resource also writes ``quarantine``
    hints: dict[str, Any] = {"name": "contact", "table_name": TABLE, "write_disposition": "merge"}

    @dlt.resource(**hints)
    def contact(
        # dlt's idiom: the incremental cursor is declared as the argument's default
        system_modstamp: dlt.sources.incremental[datetime] = dlt.sources.incremental(  # noqa: B008
            "system_modstamp", on_cursor_value_missing="include"
        ),
    ) -> Iterator[Any]:
        client = SalesforceClient(_configured(settings))
        fields = ", ".join(contact_fields(client))
        builder, quarantine, counts = (
            ContactPageBuilder.for_settings(client.settings),
            Quarantine("salesforce"),
            LoadCounts(),
        )
        now = datetime.now(UTC)
        cursor = system_modstamp.last_value
        if cursor is None:
            yield from _emit(
                _pages(client, f"SELECT {fields} FROM Contact", False, "query", page_size),
                builder,
                quarantine,
                "all",
                counts,
                now,
                workers,
            )
        else:
            since = soql_datetime(cursor)
            yield from _emit(
                _pages(
                    client,
                    f"SELECT {fields} FROM Contact WHERE SystemModstamp >= {since}",
                    False,
                    "query changed",
                    page_size,
                ),
                builder,
                quarantine,
                "changed",
                counts,
                now,
                workers,
            )
            yield from _emit(
                _pages(
                    client,
                    f"SELECT {fields} FROM Contact WHERE IsDeleted = true AND SystemModstamp >= {since}",
                    True,
                    "queryAll deleted",
                    page_size,
                ),
                builder,
                quarantine,
                "deleted",
                counts,
                now,
                workers,
            )
        log.info("salesforce contacts: %s (api usage %s)", counts.as_dict(), client.api_usage)

    @dlt.resource(**hints)
    def contact_by_id() -> Iterator[Any]:
        # targeted: queryAll so deleted contacts come back as deletions; no cursor involved
        client = SalesforceClient(_configured(settings))
        fields = ", ".join(contact_fields(client))
        builder, quarantine, counts = (
            ContactPageBuilder.for_settings(client.settings),
            Quarantine("salesforce"),
            LoadCounts(),
        )
        now = datetime.now(UTC)
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            id_list = ", ".join(f"'{i}'" for i in wanted[start : start + _IDS_PER_QUERY])
            yield from _emit(
                _pages(
                    client,
                    f"SELECT {fields} FROM Contact WHERE Id IN ({id_list})",
                    True,
                    f"queryAll by id (chunk {start // _IDS_PER_QUERY + 1})",
                ),
                builder,
                quarantine,
                f"ids-{start // _IDS_PER_QUERY + 1}",
                counts,
                now,
                workers,
            )
        log.info("salesforce contacts (targeted): %s", counts.as_dict())

    return contact_by_id if wanted else contact
