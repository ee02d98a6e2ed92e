"""dlt source of the users of a SCIM 2.0 directory (RFC 7643/7644: Okta, Entra provisioning, Auth0 and any
other), landing in ``raw_scim.users`` with the identity columns of ``raw_b2c.users`` so the linking models treat
every identity provider alike.

What the server supports is read from ``/ServiceProviderConfig``:

* with filtering, a run after the first asks only for users with ``meta.lastModified gt`` the last one seen (less
  a margin for clocks and slow commits; unchanged users re-read inside it are dropped by their content hash), and
  compares the directory's ``totalResults`` with the users it knows: only when they differ does it list every id
  (``attributes=id``) to find who was removed;
* without it (or when the server refuses the filter), every run is a full scan with change detection.

SCIM has no tombstones and offset paging can skip a user that moves while the scan runs, so a user is marked
deleted only after ``GET /Users/{id}`` answered 404. The cursor lives in dlt state and moves only with a
successful load. A targeted run (``identity_ids``) fetches just those users and leaves the cursor alone.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import orjson

from clients.http import ApiError
from clients.scim import ENTERPRISE_USER, ScimClient, attribute_value, scim_filter_string
from ingestion import normalize as n
from ingestion.b2c import SCHEMA, TABLE, changed_rows, first_sightings, tombstones
from ingestion.columns import (
    B2C_USERS,
    TableBatcher,
    dlt_columns,
    from_ipc,
    payload_columns,
    table_from_columns,
    to_ipc,
)
from ingestion.paging import PageFetchError, numbered_pages
from ingestion.parallel import ordered_map
from ingestion.prefetch import prefetch
from ingestion.quality import LoadCounts, Quarantine, keyed_records
from ingestion.warehouse_state import known_hashes
from settings import ScimSettings
from warehouse import Warehouse

log = logging.getLogger(__name__)

DATASET = "raw_scim"
CONSENT_KEY = "CrmSyncConsent"
CONTACT_ID_KEY = "CrmContactId"
ENTERPRISE_FIELDS = ("employeeNumber", "organization", "division", "department", "costCenter")
# re-read users modified this long before the cursor: clocks of a server's nodes differ and a change committed
# late may carry an earlier timestamp; re-read users that did not change are dropped by their content hash
CURSOR_MARGIN = timedelta(minutes=5)
_PAYLOAD_COLUMNS = payload_columns(B2C_USERS)  # id … email_valid, as in raw_b2c.users
_REFUSED_FILTER = frozenset({"invalidFilter", "tooMany"})


def _primary(values: Any, preferred_types: Sequence[str] = ()) -> dict | None:
    """The multi-valued attribute's primary entry, else the first of the preferred types, else the first."""
    entries = [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
    for entry in entries:
        if entry.get("primary") is True:
            return entry
    for kind in preferred_types:
        for entry in entries:
            if str(entry.get("type") or "").lower() == kind:
                return entry
    return entries[0] if entries else None


def _of_type(values: Any, kind: str) -> dict | None:
    entries = values if isinstance(values, list) else []
    return next((v for v in entries if isinstance(v, dict) and str(v.get("type") or "").lower() == kind), None)


class ScimUserPageBuilder:
    """Turns pages of SCIM User resources into column lists of ``raw_scim.users``."""

    def __init__(self, consent_attribute: str, contact_id_attribute: str, client_id_attribute: str | None = None
                 ) -> None:
        self.consent_attribute = consent_attribute
        self.contact_id_attribute = contact_id_attribute
        self.client_id_attribute = client_id_attribute

    @classmethod
    def for_settings(cls, settings: ScimSettings) -> ScimUserPageBuilder:
        return cls(*attribute_paths(settings))

    def build(self, records: list[Any], page_key: str, quarantine: Quarantine, now: datetime) -> dict[str, list]:
        cols: dict[str, list] = {f.name: [] for f in SCHEMA}
        for user_id, record in keyed_records(records, "id", page_key, quarantine):
            self._append(cols, user_id, record, now)
        return cols

    def _append(self, cols: dict[str, list], user_id: str, r: dict, now: datetime) -> None:
        flags: set[str] = set()
        text = n.clean_text
        name = r.get("name") if isinstance(r.get("name"), dict) else {}
        given_name = text(name.get("givenName"), flags)
        surname = text(name.get("familyName"), flags)
        display_name = text(r.get("displayName"), flags) or text(name.get("formatted"), flags)

        emails = r.get("emails")
        if emails is not None and not isinstance(emails, list):
            flags.add(n.INVALID_VALUE)
            emails = None
        primary = _primary(emails, ("work", "home"))
        mail, mail_valid = n.normalize_email(text(primary.get("value"), flags) if primary else None)
        others = [e.get("value") for e in emails or () if isinstance(e, dict) and e is not primary]
        # userName is what the person signs in with; when it is an address it is the one they prove
        user_name = text(r.get("userName"), flags)
        sign_in_email, sign_in_valid = n.normalize_email(user_name if user_name and "@" in user_name else None)
        email_valid = sign_in_valid if sign_in_email is not None else mail_valid
        if email_valid is None:
            flags.add(n.MISSING_EMAIL)
        elif email_valid is False or mail_valid is False:
            flags.add(n.MALFORMED_EMAIL)
        if not (given_name or surname or display_name):
            flags.add(n.MISSING_NAME)

        phones = r.get("phoneNumbers")
        mobile = _of_type(phones, "mobile")
        business = _of_type(phones, "work") or (_primary(phones) if mobile is None else None)
        mobile_phone = text(mobile.get("value"), flags) if mobile else None
        business_phone = text(business.get("value"), flags) if business else None
        address = _primary(r.get("addresses"), ("work", "home")) or {}
        street_address = text(address.get("streetAddress"), flags, multiline=True)
        city = text(address.get("locality"), flags)
        postal_code = text(address.get("postalCode"), flags)
        state = text(address.get("region"), flags)
        country = text(address.get("country"), flags)
        country_code = n.country_iso2(country)
        phone_e164 = n.first_e164((mobile_phone, business_phone), country_code, flags)
        active = n.parse_bool(r.get("active"), flags)
        meta = r.get("meta") if isinstance(r.get("meta"), dict) else {}
        created = n.parse_timestamp(meta.get("created"), flags)
        client_id = text(attribute_value(r, self.client_id_attribute), flags) if self.client_id_attribute else None
        enterprise = r.get(ENTERPRISE_USER) if isinstance(r.get(ENTERPRISE_USER), dict) else {}
        custom_attributes = {
            CONSENT_KEY: attribute_value(r, self.consent_attribute),
            CONTACT_ID_KEY: attribute_value(r, self.contact_id_attribute),
            **{f"enterprise.{key}": enterprise[key] for key in ENTERPRISE_FIELDS if key in enterprise},
        }
        identities = [{"userName": user_name, "externalId": text(r.get("externalId"), flags)}]

        values = (user_id, display_name, given_name, surname, mail, n.json_text(others or None), sign_in_email,
                  n.json_text(identities), mobile_phone, business_phone, phone_e164, street_address, city,
                  postal_code, state, country, country_code,
                  True if active is None else active,  # RFC 7643: a user without "active" is not disabled
                  created, n.json_text(custom_attributes), client_id,
                  None,  # SCIM's core schema says nothing of a verified address or the last sign-in
                  None, n.parse_timestamp(meta.get("lastModified"), flags), email_valid)
        flag_text = n.flags_text(flags)
        for column, value in zip(_PAYLOAD_COLUMNS, values):
            cols[column].append(value)
        cols["content_hash"].append(n.content_hash(values + (flag_text,)))
        cols["quality_flags"].append(flag_text)
        cols["is_deleted"].append(False)
        cols["deleted_at"].append(None)
        cols["ingested_at"].append(now)


def attribute_paths(settings: ScimSettings) -> tuple[str, str, str]:
    """The SCIM attribute paths of the consent, the carried CRM id and the client id, as the builder takes them."""
    return settings.consent_attribute, settings.contact_id_attribute, settings.client_id_attribute


def build_scim_page(task: tuple[bytes, tuple[str, str, str], str, datetime]
                    ) -> tuple[bytes, list[tuple[str, str, str]], int, str | None]:
    """Worker step: raw ListResponse body -> (Arrow IPC of its rows, quarantined rows, records seen, the latest
    ``meta.lastModified`` of the page). Pure."""
    raw, paths, page_key, now = task
    body = orjson.loads(raw)
    records = body.get("Resources", []) if isinstance(body, dict) else []
    quarantine = Quarantine("scim")
    cols = ScimUserPageBuilder(*paths).build(records, page_key, quarantine, now)
    return to_ipc(table_from_columns(SCHEMA, cols)), quarantine.rows, len(records), latest_modified(records)


def latest_modified(records: list[Any]) -> str | None:
    """The latest ``meta.lastModified`` among records, as an aware UTC ISO timestamp."""
    stamps = []
    for record in records:
        meta = record.get("meta") if isinstance(record, dict) else None
        stamp = n.parse_timestamp(meta.get("lastModified"), set()) if isinstance(meta, dict) else None
        if stamp is not None:
            stamps.append(stamp)
    return max(stamps).isoformat() if stamps else None


def modified_since(cursor: str) -> str:
    """The filter of an incremental load: users modified after the cursor less ``CURSOR_MARGIN``."""
    since = datetime.fromisoformat(cursor).astimezone(UTC) - CURSOR_MARGIN
    return f"meta.lastModified gt {scim_filter_string(since.strftime('%Y-%m-%dT%H:%M:%SZ'))}"


def _pages(client: ScimClient, count: int, filter: str | None, label: str) -> Iterator[bytes]:
    """Raw body of every page of ``/Users``; a page that fails past its retries names itself."""
    def filter_refused(exc: ApiError) -> Exception | None:
        return FilterRefused(str(exc)) if filter and (exc.code in _REFUSED_FILTER or exc.status in (400, 501)) else None

    pages = numbered_pages(client.user_pages(count, filter=filter), f"SCIM users {label}", "GET /Users",
                           first_page_refused=filter_refused)
    return (page.raw for page in pages)


class FilterRefused(Exception):
    """The server announced filtering but refused ``meta.lastModified gt``: the run falls back to a full scan."""


def _fetch(client: ScimClient, user_id: str) -> dict | None:
    try:
        return client.get_user(user_id)
    except ApiError as exc:
        raise PageFetchError(f"SCIM user {user_id} (GET /Users/{{id}}) could not be fetched: {exc}") from None


def _targeted_pages(client: ScimClient, ids: Sequence[str], not_found: list[str], per_page: int = 50
                    ) -> Iterator[bytes]:
    """The users ``ids`` one ``GET /Users/{id}`` each, as ListResponse bodies; absent ones land in ``not_found``."""
    for start in range(0, len(ids), per_page):
        found = []
        for user_id in ids[start:start + per_page]:
            user = _fetch(client, user_id)
            if user is None:
                not_found.append(user_id)
            else:
                found.append(user)
        yield orjson.dumps({"Resources": found})


def listed_ids(client: ScimClient, count: int) -> set[str]:
    """Every user id of the directory (``attributes=id``: ids only, a fraction of the data)."""
    ids: set[str] = set()
    try:
        for page in client.user_pages(count, attributes=("id",)):
            ids.update(str(r["id"]) for r in page.resources if isinstance(r, dict) and r.get("id"))
    except ApiError as exc:
        raise PageFetchError(f"SCIM user ids (GET /Users?attributes=id) could not be listed: {exc}") from None
    return ids


@dlt.source(name="scim", max_table_nesting=0)
def scim_source(settings: ScimSettings | None = None, warehouse: Warehouse | None = None,
                identity_ids: Sequence[str] = (), dataset_name: str = DATASET, workers: int | None = None) -> Any:
    """Users of the SCIM directory as ``users`` (merge on ``id``); unrepresentable records go to ``quarantine``.
    Declaring the source needs no settings; loading it needs settings and the warehouse."""
    wanted = [i for i in dict.fromkeys(str(x).strip() for x in identity_ids) if i]

    @dlt.resource(name="users", table_name=TABLE, write_disposition="merge", primary_key="id",
                  columns=dlt_columns(B2C_USERS))
    def users() -> Iterator[Any]:
        if settings is None or warehouse is None:
            raise ValueError("SCIM is not configured (SCIM_BASE_URL, SCIM_TOKEN) or no warehouse was given")
        active = settings
        state = dlt.current.resource_state()
        counts = LoadCounts()
        quarantine = Quarantine("scim")
        known = known_hashes(warehouse, dataset_name, TABLE)
        live_before = {user_id for user_id, digest in known.items() if digest is not None}
        now = datetime.now(UTC)
        not_found: list[str] = []
        seen: set[str] = set()
        newest: list[str] = [state["last_modified"]] if state.get("last_modified") else []

        def emit(pages: Iterator[bytes], label: str) -> Iterator[Any]:
            tasks = ((raw, attribute_paths(active), f"users/{label}/page-{no}", now)
                     for no, raw in enumerate(prefetch(pages), start=1))
            batcher = TableBatcher()
            for ipc, quarantined, fetched, latest in ordered_map(build_scim_page, tasks, workers=workers):
                counts.pages += 1
                counts.fetched += fetched
                if latest:
                    newest.append(latest)
                table = changed_rows(first_sightings(from_ipc(ipc), seen), known, counts)
                if table is not None and (batch := batcher.add(table)) is not None:
                    yield batch
                if quarantined:
                    quarantine.extend(quarantined)
                    counts.quarantined += len(quarantine)
                    yield quarantine.item(now)
            if (batch := batcher.flush()) is not None:
                yield batch

        with ScimClient(active) as client:
            if wanted:
                yield from emit(_targeted_pages(client, wanted, not_found), "targeted")
                gone = not_found
            else:
                try:
                    provider = client.service_provider()
                except ApiError as exc:
                    raise PageFetchError(f"SCIM service provider configuration (GET /ServiceProviderConfig) could "
                                         f"not be read: {exc}") from None
                count = client.page_size(provider)
                incremental = provider.filter_supported and bool(state.get("last_modified"))
                if incremental:
                    try:
                        yield from emit(_pages(client, count, modified_since(state["last_modified"]), "changed"),
                                        "changed")
                    except FilterRefused as exc:
                        log.warning("SCIM server refused the lastModified filter (%s): full scan instead", exc)
                        incremental = False
                if incremental:
                    gone = yield from removed_users(client, count, live_before | seen, seen, emit)
                else:
                    yield from emit(_pages(client, count, None, "all"), "all")
                    # offset paging may skip a user that moved while the scan ran: confirm each absence
                    gone = [user_id for user_id in sorted(live_before - seen) if _fetch(client, user_id) is None]
            requests_made = client.calls
        # only users the warehouse holds as live can be tombstoned (a targeted id may never have been loaded)
        tomb_ids = [user_id for user_id in gone if user_id in live_before and user_id not in seen]
        if tomb_ids:
            table = tombstones(warehouse, dataset_name, tomb_ids, now)
            counts.deleted += table.num_rows
            if table.num_rows:
                yield table
        if not wanted and newest:
            state["last_modified"] = max(newest)
        log.info("scim users: %s (%d requests)", counts.as_dict(), requests_made)

    return users


def removed_users(client: ScimClient, count: int, live: set[str], seen: set[str],
                  emit: Callable[[Iterator[bytes], str], Iterator[Any]]) -> Generator[Any, None, list[str]]:
    """Yields the rows of users listed but never loaded; returns the ids of users removed from the directory.

    The directory's total is compared with the users known first, so a run without removals costs one
    ``count=0`` request; only when they disagree is every id listed, and each missing one confirmed by a 404.
    """
    try:
        total = client.total_users()
    except ApiError as exc:
        raise PageFetchError(f"SCIM user count (GET /Users?count=0) could not be read: {exc}") from None
    if total is not None and total == len(live):
        return []
    present = listed_ids(client, count)
    unknown = sorted(present - live - seen)
    if unknown:  # created with a timestamp before the cursor (a skewed clock): load them now
        yield from emit(_targeted_pages(client, unknown, []), "listed")
    return [user_id for user_id in sorted(live - present) if _fetch(client, user_id) is None]
