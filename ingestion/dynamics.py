"""dlt source of Dynamics 365 / Dataverse contacts through the Web API, incremental by change tracking.

The first run reads every contact with ``Prefer: odata.track-changes`` (pages of ``odata.maxpagesize`` followed
by ``@odata.nextLink``) and keeps the ``@odata.deltaLink`` of its last page in dlt state. Each later run follows
that link: contacts created or changed since come back whole, deleted ones as ``$deletedEntity`` entries, which
become tombstones. The delta link moves only when the load succeeds, so a run that fails part-way loses
nothing. When the link is no longer honoured (Dataverse keeps changes for a limited time) or the table does not
track changes, a run reads everything again and compares it with the warehouse: only changed rows are
written, and contacts that are no longer there are marked deleted. A targeted run (``contact_ids``) fetches just
those contacts and leaves the delta link alone.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dlt
import orjson

from clients.dataverse import DataverseClient, EntityMetadata, is_deleted_entry, key_segment
from clients.http import ApiError
from ingestion import normalize as n
from ingestion.b2c import changed_rows, first_sightings, tombstones
from ingestion.columns import (
    DYNAMICS_CONTACT,
    TableBatcher,
    arrow_schema,
    from_ipc,
    payload_columns,
    routed,
    table_from_columns,
    to_ipc,
)
from ingestion.paging import PageFetchError, numbered_pages
from ingestion.parallel import ordered_map
from ingestion.prefetch import prefetch
from ingestion.quality import LoadCounts, Quarantine, keyed_records
from ingestion.warehouse_state import known_hashes
from settings import DataverseSettings
from warehouse import Warehouse

log = logging.getLogger(__name__)

DATASET = "raw_dynamics"
TABLE = "contact"
ENTITY = "contact"
SCHEMA = arrow_schema(DYNAMICS_CONTACT)
STANDARD_COLUMNS: tuple[str, ...] = (
    "contactid", "firstname", "lastname", "emailaddress1", "telephone1", "mobilephone", "address1_line1",
    "address1_line2", "address1_city", "address1_postalcode", "address1_stateorprovince", "address1_country",
    "parentcustomerid", "createdon", "modifiedon", "versionnumber", "statecode", "masterid",
)
LOOKUPS = frozenset({"parentcustomerid", "masterid"})  # read as _<name>_value
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_PAYLOAD_COLUMNS = payload_columns(DYNAMICS_CONTACT)  # id … email_valid


class ConfigurationError(ValueError):
    """The configured contact columns do not exist in the environment."""


def property_name(column: str) -> str:
    """The Web API property of a column: lookups are read as ``_<column>_value``."""
    return f"_{column}_value" if column in LOOKUPS else column


def contact_columns(metadata: EntityMetadata, settings: DataverseSettings) -> list[str]:
    """``$select`` of the load (standard + external-id + configured extras), checked against the metadata."""
    wanted = list(STANDARD_COLUMNS) + [settings.external_id_field] + list(settings.extra_contact_fields)
    available = {name.lower(): name for name in metadata.attributes}
    unknown = [name for name in wanted if name.lower() not in available]
    if unknown:
        raise ConfigurationError("the contact table has no column(s) " + ", ".join(unknown)
                                 + " (check DATAVERSE_EXTERNAL_ID_FIELD / DATAVERSE_CONTACT_FIELDS)")
    return [property_name(available[name.lower()]) for name in dict.fromkeys(wanted)]


class ContactPageBuilder:
    """Turns Dataverse contact records into column lists of ``raw_dynamics.contact``."""

    def __init__(self, external_id_field: str, extra_fields: Sequence[str] = ()) -> None:
        self.external_id_field = external_id_field
        self.extra_fields = tuple(extra_fields)

    def build(self, records: list[Any], page_key: str, quarantine: Quarantine, now: datetime) -> dict[str, list]:
        cols: dict[str, list] = {f.name: [] for f in SCHEMA}
        for contact_id, record in keyed_records(records, "contactid", page_key, quarantine):
            self._append(cols, contact_id.lower(), record, now)
        return cols

    def _append(self, cols: dict[str, list], contact_id: str, r: dict, now: datetime) -> None:
        flags: set[str] = set()
        text = n.clean_text
        first_name, last_name = text(r.get("firstname"), flags), text(r.get("lastname"), flags)
        if not (first_name or last_name):
            flags.add(n.MISSING_NAME)
        email, email_valid = n.normalize_email(text(r.get("emailaddress1"), flags))
        if email_valid is None:
            flags.add(n.MISSING_EMAIL)
        elif not email_valid:
            flags.add(n.MALFORMED_EMAIL)
        phone, mobile_phone = text(r.get("telephone1"), flags), text(r.get("mobilephone"), flags)
        lines = [text(r.get(k), flags, multiline=True) for k in ("address1_line1", "address1_line2")]
        street = "\n".join(line for line in lines if line) or None
        city = text(r.get("address1_city"), flags)
        postal_code = text(r.get("address1_postalcode"), flags)
        state = text(r.get("address1_stateorprovince"), flags)
        country = text(r.get("address1_country"), flags)
        country_code = n.country_iso2(country)
        phone_e164 = n.first_e164((mobile_phone, phone), country_code, flags)
        statecode = r.get("statecode")
        version = r.get("versionnumber")
        extra = n.json_text({f: r.get(property_name(f)) for f in self.extra_fields}) if self.extra_fields else None
        values = (
            contact_id, text(r.get("_parentcustomerid_value"), flags), first_name, last_name, email, phone,
            mobile_phone, street, city, postal_code, state, country, country_code, phone_e164,
            text(r.get(self.external_id_field), flags), text(r.get("_masterid_value"), flags),
            None if statecode is None else statecode == 0,  # 0 = active; merged contacts are deactivated
            n.parse_timestamp(r.get("createdon"), flags), n.parse_timestamp(r.get("modifiedon"), flags),
            None if version is None else str(version), extra, email_valid,
        )
        flag_text = n.flags_text(flags)
        for name, value in zip(_PAYLOAD_COLUMNS, values):
            cols[name].append(value)
        # the row version changes with every write, also of columns not loaded: it stays out of the hash
        cols["content_hash"].append(n.content_hash(values[:19] + values[20:] + (flag_text,)))
        cols["quality_flags"].append(flag_text)
        cols["is_deleted"].append(False)
        cols["deleted_at"].append(None)
        cols["ingested_at"].append(now)


def build_contact_page(task: tuple[bytes, str, Sequence[str], str, datetime]
                       ) -> tuple[bytes, list[tuple[str, str, str]], int, list[str]]:
    """Worker step: raw page body -> (Arrow IPC of its rows, quarantined rows, records seen, ids of records
    deleted since the delta link). Pure."""
    raw, external_id_field, extra_fields, page_key, now = task
    body = orjson.loads(raw)
    entries = body.get("value", []) if isinstance(body, dict) else []
    removed = [str(e.get("id")).lower() for e in entries if is_deleted_entry(e) and e.get("id")]
    records = [e for e in entries if not is_deleted_entry(e)]
    quarantine = Quarantine("dynamics")
    cols = ContactPageBuilder(external_id_field, extra_fields).build(records, page_key, quarantine, now)
    return to_ipc(table_from_columns(SCHEMA, cols)), quarantine.rows, len(entries), removed


def _contacts_item(table: Any) -> Any:
    # a run emits each id at most once (first sightings), so dlt's merge can skip its deduplication
    return routed(table, TABLE, DYNAMICS_CONTACT, write_disposition="merge", primary_key="id", unique_keys=True)


class DeltaLinkRefused(Exception):
    """The environment no longer honours the saved delta link: the run reads everything again."""


def _pages(client: DataverseClient, path: str, params: dict | None, track: bool, label: str,
           delta_links: list[str]) -> Iterator[bytes]:
    def delta_link_refused(exc: ApiError) -> Exception | None:
        return DeltaLinkRefused(str(exc)) if label == "changes" and exc.status in (400, 404, 410) else None

    for page in numbered_pages(client.pages(path, params, track_changes=track), f"Dynamics contacts {label}",
                               first_page_refused=delta_link_refused):
        if page.delta_link:
            delta_links.append(page.delta_link)
        yield page.raw


def _targeted_pages(client: DataverseClient, entity_set: str, select: str, ids: Sequence[str],
                    not_found: list[str], per_page: int = 100) -> Iterator[bytes]:
    for start in range(0, len(ids), per_page):
        found = []
        for contact_id in ids[start:start + per_page]:
            try:
                record = client.get_record(key_segment(entity_set, record_id=contact_id), {"$select": select})
            except ApiError as exc:
                raise PageFetchError(f"Dynamics contact {contact_id} could not be fetched: {exc}") from None
            if record is None:
                not_found.append(contact_id)
            else:
                found.append(record)
        yield orjson.dumps({"value": found})


def _check_ids(ids: Sequence[str]) -> list[str]:
    cleaned = [i.lower() for i in dict.fromkeys(str(x).strip() for x in ids) if i]
    bad = sum(1 for i in cleaned if not _GUID.match(i))
    if bad:
        raise ValueError(f"{bad} of the requested contact ids are not Dataverse record ids (GUIDs)")
    return cleaned


@dlt.source(name="dynamics", max_table_nesting=0)
def dynamics_source(settings: DataverseSettings | None = None, warehouse: Warehouse | None = None,
                    contact_ids: Sequence[str] = (), dataset_name: str = DATASET, workers: int | None = None) -> Any:
    """Contacts as ``contact`` (merge on ``id`` = contactid); unrepresentable records go to ``quarantine``.
    Declaring the source needs no settings; loading it needs settings and the warehouse."""
    wanted = _check_ids(contact_ids)

    @dlt.resource(name="contact", table_name=TABLE, write_disposition="merge")
    def contact() -> Iterator[Any]:
        if settings is None or warehouse is None:
            raise ValueError("Dynamics is not configured (DATAVERSE_URL, DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID, "
                             "DATAVERSE_CLIENT_SECRET) or no warehouse was given")
        active = settings
        state = dlt.current.resource_state()
        client = DataverseClient(active)
        try:
            metadata = client.metadata(ENTITY)
        except ApiError as exc:
            raise PageFetchError(f"Dynamics contact metadata could not be read: {exc}") from None
        select = ",".join(contact_columns(metadata, active))
        counts, quarantine = LoadCounts(), Quarantine("dynamics")
        known = known_hashes(warehouse, dataset_name, TABLE)
        live_before = {i for i, digest in known.items() if digest is not None}
        now = datetime.now(UTC)
        seen: set[str] = set()
        removed: list[str] = []
        delta_links: list[str] = []

        def emit(pages: Iterator[bytes], label: str) -> Iterator[Any]:
            tasks = ((raw, active.external_id_field, active.extra_contact_fields, f"contact/{label}/page-{no}", now)
                     for no, raw in enumerate(prefetch(pages), start=1))
            batcher = TableBatcher()
            for ipc, quarantined, fetched, gone in ordered_map(build_contact_page, tasks, workers=workers):
                counts.pages += 1
                counts.fetched += fetched
                removed.extend(gone)
                table = changed_rows(first_sightings(from_ipc(ipc), seen), known, counts)
                if table is not None and (batch := batcher.add(table)) is not None:
                    yield _contacts_item(batch)
                if quarantined:
                    quarantine.extend(quarantined)
                    counts.quarantined += len(quarantine)
                    yield quarantine.item(now)
            if (batch := batcher.flush()) is not None:
                yield _contacts_item(batch)

        if wanted:
            not_found: list[str] = []
            yield from emit(_targeted_pages(client, metadata.entity_set, select, wanted, not_found), "targeted")
            gone = not_found
        else:
            follow = state.get("delta_link") if metadata.change_tracking else None
            if follow:
                try:
                    yield from emit(_pages(client, follow, None, False, "changes", delta_links), "changes")
                    gone = removed
                except DeltaLinkRefused as exc:
                    log.warning("Dynamics no longer honours the saved delta link (%s): reading every contact", exc)
                    follow = None
            if not follow:
                yield from emit(_pages(client, metadata.entity_set, {"$select": select}, metadata.change_tracking,
                                       "all", delta_links), "all")
                # a complete read (keyset paging) proves absence
                gone = removed + sorted(live_before - seen)
        tomb_ids = [i for i in dict.fromkeys(gone) if i in live_before and i not in seen]
        if tomb_ids:
            table = tombstones(warehouse, dataset_name, tomb_ids, now, TABLE, SCHEMA)
            counts.deleted += table.num_rows
            if table.num_rows:
                yield _contacts_item(table)
        if not wanted:
            # the link of the last page read; without change tracking there is none and every run reads all
            state["delta_link"] = delta_links[-1] if delta_links else None
        log.info("dynamics contacts: %s (%d requests, %.1f s waited for service protection)", counts.as_dict(),
                 client.api_calls, client.gate.waited_s)

    return contact


@dataclass(frozen=True)
class ContactChanges:
    """What a change watcher saw: contact ids changed or removed, and the link to read next time."""

    contact_ids: list[str]
    resume_link: str


def watch_contact_changes(client: DataverseClient, resume_link: str | None, max_pages: int = 1) -> ContactChanges:
    """Contact ids changed or removed since ``resume_link`` (a delta or next link from the last call), read by
    change tracking with ids only, at most ``max_pages`` pages per call. Without a link, the watch starts now:
    every page of the first read is passed over (earlier changes are the loads' business) and nothing is
    reported. For near-real-time triggers; the loads keep a delta link of their own."""
    if resume_link is None:
        entity_set = client.metadata("contact").entity_set
        last = None
        for page in client.pages(entity_set, {"$select": "contactid"}, track_changes=True):
            last = page
        if last is None or not last.delta_link:
            raise ApiError("the contact table does not track changes (no delta link)", code="no_change_tracking")
        return ContactChanges([], last.delta_link)
    ids: list[str] = []
    link = resume_link
    pages = client.pages(resume_link, track_changes=True)
    for page_no, page in enumerate(pages, start=1):
        ids.extend(str(entry.get("contactid") or entry.get("id") or "").lower() for entry in page.records
                   if isinstance(entry, dict))
        link = page.delta_link or page.next_link or link
        if page_no >= max_pages:
            break
    return ContactChanges([i for i in dict.fromkeys(ids) if _GUID.match(i)], link)
