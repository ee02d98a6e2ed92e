"""dlt source of Azure AD B2C / External ID users read through Microsoft Graph.

B2C tenants offer no delta query, so every run scans the whole directory and emits only users whose normalised
content changed since the last load (content hash compared with the warehouse), plus one tombstone for each
user that disappeared. A targeted run (``identity_ids``) fetches just those users through ``$batch``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import dlt
import pyarrow as pa
import tenacity

from clients import http, json_bodies
from clients.graph import BATCH_LIMIT, GraphClient
from clients.http import RETRYABLE_STATUSES, ApiError, parse_retry_after, path_segment
from ingestion import normalize as n
from ingestion.columns import (
    B2C_USERS,
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
from ingestion.warehouse_state import known_hashes, previous_rows
from settings import GraphSettings
from warehouse import Warehouse

log = logging.getLogger(__name__)

DATASET = "raw_b2c"
TABLE = "users"
SCHEMA = arrow_schema(B2C_USERS)
STANDARD_FIELDS: tuple[str, ...] = (
    "id",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "otherMails",
    "identities",
    "mobilePhone",
    "businessPhones",
    "streetAddress",
    "city",
    "postalCode",
    "state",
    "country",
    "accountEnabled",
    "createdDateTime",
    "usageLocation",
)
_ROUTE = "GET /v1.0/users"


def select_fields(settings: GraphSettings) -> list[str]:
    fields = list(STANDARD_FIELDS)
    if settings.extensions_app_id:
        fields += [settings.extension_attribute(name) for name in settings.custom_attributes]
    return fields


def extension_properties(settings: GraphSettings) -> tuple[tuple[str, str], ...]:
    if not settings.extensions_app_id:
        return ()
    return tuple((name, settings.extension_attribute(name)) for name in settings.custom_attributes)


def client_id_attribute(settings: GraphSettings) -> str | None:
    """The custom attribute holding the client id a user signed up through, when it is one that is read."""
    wanted = settings.client_id_attribute.lower()
    return next((name for name in settings.custom_attributes if name.lower() == wanted), None)


class UserPageBuilder:
    """Turns pages of Graph user objects into column lists of ``raw_b2c.users``."""

    def __init__(
        self, settings: GraphSettings | None = None, extensions: Sequence[tuple[str, str]] | None = None,
        client_attribute: str | None = None,
    ) -> None:
        # (short name, Graph property) of each custom attribute
        if extensions is None:
            extensions = extension_properties(settings) if settings is not None else ()
        self.extensions = list(extensions)
        # the custom attribute the sign-up connector writes the client id into (``SignUpClientId``)
        if client_attribute is None and settings is not None and self.extensions:
            client_attribute = client_id_attribute(settings)
        self.client_attribute = client_attribute

    def build(
        self, records: list[Any], page_key: str, quarantine: Quarantine, now: datetime, screen_text: bool = False
    ) -> dict[str, list]:
        cols: dict[str, list] = {f.name: [] for f in SCHEMA}
        for user_id, record in keyed_records(records, "id", page_key, quarantine, screen_text=screen_text):
            self._append(cols, user_id, record, now)
        return cols

    def _append(self, cols: dict[str, list], user_id: str, r: dict, now: datetime) -> None:
        flags: set[str] = set()
        text = n.clean_text
        display_name = text(r.get("displayName"), flags)
        given_name = text(r.get("givenName"), flags)
        surname = text(r.get("surname"), flags)
        mail_raw = text(r.get("mail"), flags)
        mail, mail_valid = n.normalize_email(mail_raw)

        other_mails = r.get("otherMails")
        if other_mails is not None and not isinstance(other_mails, list):
            flags.add(n.INVALID_VALUE)
            other_mails = [other_mails]
        identities = r.get("identities")
        if identities is not None and not isinstance(identities, list):
            flags.add(n.INVALID_VALUE)
            identities = None
        sign_in_raw = None
        for identity in identities or ():
            if isinstance(identity, dict) and identity.get("signInType") == "emailAddress":
                sign_in_raw = text(identity.get("issuerAssignedId"), flags)
                if sign_in_raw:
                    break
        sign_in_email, sign_in_valid = n.normalize_email(sign_in_raw)

        # the sign-in email is the address the person proved; mail is only the fallback
        email_valid = sign_in_valid if sign_in_email is not None else mail_valid
        if email_valid is None:
            flags.add(n.MISSING_EMAIL)
        elif email_valid is False or mail_valid is False:
            flags.add(n.MALFORMED_EMAIL)
        if not (given_name or surname or display_name):
            flags.add(n.MISSING_NAME)

        mobile_phone = text(r.get("mobilePhone"), flags)
        business_phones = r.get("businessPhones")
        if business_phones is not None and not isinstance(business_phones, list):
            flags.add(n.INVALID_VALUE)
            business_phones = [business_phones]
        business_phone = text(business_phones[0], flags) if business_phones else None
        street_address = text(r.get("streetAddress"), flags, multiline=True)
        city = text(r.get("city"), flags)
        postal_code = text(r.get("postalCode"), flags)
        state = text(r.get("state"), flags)
        country = text(r.get("country"), flags)
        # usageLocation (ISO2, set for licensing) stands in when the address has no country
        country_code = n.country_iso2(country) or n.country_iso2(n.as_text(r.get("usageLocation"))[0])
        phone_e164 = n.first_e164((mobile_phone, business_phone), country_code, flags)
        account_enabled = n.parse_bool(r.get("accountEnabled"), flags)
        created = n.parse_timestamp(r.get("createdDateTime"), flags)
        custom_attributes = {short: r.get(long) for short, long in self.extensions}
        client_id = text(custom_attributes.get(self.client_attribute), flags) if self.client_attribute else None
        other_mails_text = n.json_text(other_mails)
        identities_text = n.json_text(identities)
        custom_text = n.json_text(custom_attributes)

        values = (
            user_id,
            display_name,
            given_name,
            surname,
            mail,
            other_mails_text,
            sign_in_email,
            identities_text,
            mobile_phone,
            business_phone,
            phone_e164,
            street_address,
            city,
            postal_code,
            state,
            country,
            country_code,
            account_enabled,
            created,
            custom_text,
            client_id,
            # Graph's user says nothing of a verified address, the last sign-in or the last profile change
            None,
            None,
            None,
            email_valid,
        )
        flag_text = n.flags_text(flags)
        digest = n.content_hash(values + (flag_text,))
        for name, value in zip(_PAYLOAD_COLUMNS, values):
            cols[name].append(value)
        cols["content_hash"].append(digest)
        cols["quality_flags"].append(flag_text)
        cols["is_deleted"].append(False)
        cols["deleted_at"].append(None)
        cols["ingested_at"].append(now)


_PAYLOAD_COLUMNS = payload_columns(B2C_USERS)  # id … email_valid


def changed_rows(table: pa.Table, known: dict[str, str | None], counts: LoadCounts) -> pa.Table | None:
    """Rows whose hash differs from the warehouse (new, changed or back from deletion); marks all seen."""
    missing = object()
    ids = table.column("id").to_pylist()
    hashes = table.column("content_hash").to_pylist()
    mask = [known.pop(user_id, missing) != digest for user_id, digest in zip(ids, hashes)]
    kept = sum(mask)
    counts.unchanged += len(ids) - kept
    if not kept:
        return None
    if kept < len(ids):
        table = table.filter(pa.array(mask, pa.bool_()))
    counts.emitted += kept
    counts.count_flags(table.column("quality_flags").to_pylist())
    return table


def first_sightings(table: pa.Table, seen: set[str]) -> pa.Table:
    """Rows of ids not met before in this run (a user listed twice keeps its first row); records them in ``seen``.

    Each run emits an id at most once, which lets the load skip deduplicating the staged rows.
    """
    mask = []
    for user_id in table.column("id").to_pylist():
        mask.append(user_id not in seen)
        seen.add(user_id)
    return table if all(mask) else table.filter(pa.array(mask, pa.bool_()))


def changed_only(cols: dict[str, list], known: dict[str, str | None], counts: LoadCounts) -> pa.Table | None:
    """``changed_rows`` of column lists built by a page builder."""
    return changed_rows(table_from_columns(SCHEMA, cols), known, counts)


def build_user_page(
    task: tuple[bytes, Sequence[tuple[str, str]], str | None, str, datetime],
) -> tuple[bytes, list[tuple[str, str, str]], int, list[str]]:
    """Worker step: raw Graph page body -> (Arrow IPC of its rows, quarantined rows, records seen, ids of
    quarantined users that exist). Pure."""
    raw, extensions, client_attribute, page_key, now = task
    body, screen_text = json_bodies.loads_checked(raw)
    records = body.get("value", []) if isinstance(body, dict) else []
    quarantine = Quarantine("b2c")
    builder = UserPageBuilder(extensions=extensions, client_attribute=client_attribute)
    cols = builder.build(records, page_key, quarantine, now, screen_text)
    return to_ipc(table_from_columns(SCHEMA, cols)), quarantine.rows, len(records), quarantine.held_keys


def tombstones(warehouse: Warehouse, dataset: str, ids: list[str], now: datetime, table: str = TABLE,
               schema: pa.Schema = SCHEMA) -> pa.Table:
    """Last known rows of ``ids`` marked deleted now (keeping their values so links can be withdrawn); any raw
    table with the bookkeeping columns (``table`` and its ``schema``; the identity table by default)."""
    rows = previous_rows(warehouse, dataset, table, ids, schema)
    if rows.num_rows == 0:
        return rows
    size = rows.num_rows
    for name, value in (
        ("is_deleted", pa.array([True] * size, pa.bool_())),
        ("deleted_at", pa.array([now] * size, schema.field("deleted_at").type)),
        ("ingested_at", pa.array([now] * size, schema.field("ingested_at").type)),
    ):
        rows = rows.set_column(rows.schema.get_field_index(name), schema.field(name), value)
    return rows


def _users_item(table: pa.Table) -> Any:
    # ids are unique within a run: pages pass ``first_sightings`` and tombstones are ids the run never saw
    return routed(table, TABLE, B2C_USERS, write_disposition="merge", primary_key="id", unique_keys=True)


def _scan_pages(client: GraphClient, page_size: int = 999) -> Iterator[bytes]:
    """Raw body of every page of the directory; a page that fails past its retries names itself."""
    pages = client.iter_user_page_bodies(select_fields(client.settings), top=page_size)
    return (raw for raw, _ in numbered_pages(pages, "B2C users", _ROUTE))


def _targeted_pages(client: GraphClient, ids: list[str], not_found: list[str]) -> Iterator[bytes]:
    """The users ``ids`` through $batch, 20 at a time; a 404 lands in ``not_found``.

    Throttled or failing sub-requests are retried (honouring their Retry-After) within the retry budget.
    """
    select = quote(",".join(select_fields(client.settings)), safe=",_")
    jitter = tenacity.wait_random_exponential(multiplier=0.5, max=30)
    for start in range(0, len(ids), BATCH_LIMIT):
        pending = {str(k): uid for k, uid in enumerate(ids[start : start + BATCH_LIMIT])}
        found: list[Any] = []
        deadline = time.monotonic() + client.settings.retry_max_s
        attempt = 0
        while pending:
            try:
                answers = client.batch(
                    [
                        {"id": k, "method": "GET", "url": f"/users/{path_segment(uid)}?$select={select}"}
                        for k, uid in pending.items()
                    ]
                )
            except ApiError as exc:
                raise PageFetchError(
                    f"B2C users batch {start // BATCH_LIMIT + 1} (POST /v1.0/$batch) "
                    f"could not be fetched: {exc}"
                ) from None
            retry: dict[str, str] = {}
            asked: list[float] = []
            for answer in answers:
                status = answer["status"]
                if status == 200 and isinstance(answer["body"], dict):
                    found.append(answer["body"])
                elif status == 404:
                    not_found.append(pending[answer["id"]])
                elif status in RETRYABLE_STATUSES:
                    retry[answer["id"]] = pending[answer["id"]]
                    headers = {str(k).lower(): v for k, v in (answer["headers"] or {}).items()}
                    wait = parse_retry_after(headers.get("retry-after"))
                    if wait is not None:
                        asked.append(wait)
                else:
                    raise PageFetchError(
                        f"B2C users batch {start // BATCH_LIMIT + 1}: GET /v1.0/users/{{id}} "
                        f"answered HTTP {status}"
                    )
            if retry:
                attempt += 1
                state = tenacity.RetryCallState(None, None, (), {})
                state.attempt_number = attempt
                delay = max(asked) if asked else jitter(state)
                if time.monotonic() + delay > deadline:
                    raise PageFetchError(
                        f"B2C users batch {start // BATCH_LIMIT + 1}: {len(retry)} sub-requests "
                        f"still throttled or failing after {attempt} attempts"
                    )
                http._sleep(delay)
            pending = retry
        yield json_bodies.dumps({"value": found})


@dlt.source(name="b2c", max_table_nesting=0)
def b2c_source(
    settings: GraphSettings | None = None,
    warehouse: Warehouse | None = None,
    identity_ids: Sequence[str] = (),
    dataset_name: str = DATASET,
    page_size: int = 999,
    workers: int | None = None,
) -> Any:
    """Users of the B2C directory as ``users`` (merge on ``id``); unrepresentable records go to ``quarantine``.

    ``page_size`` is Graph's ``$top`` (1..999) of the full scan; ``workers`` the processes normalising pages
    (None: the usable CPU count). Declaring the source needs no settings; loading it needs settings and the
    warehouse.
    """
    wanted = [i for i in dict.fromkeys(str(x).strip() for x in identity_ids) if i]

    # table hints travel with the items (see ``routed``): the resource also writes ``quarantine``
    @dlt.resource(name="users", table_name=TABLE, write_disposition="merge")
    def users() -> Iterator[Any]:
        if settings is None or warehouse is None:
            raise ValueError("B2C is not configured (B2C_TENANT_ID, B2C_CLIENT_ID, B2C_CLIENT_SECRET) or no "
                             "warehouse path was given")
        graph_settings = settings
        counts = LoadCounts()
        client = GraphClient(graph_settings)
        extensions = extension_properties(graph_settings)
        client_attribute = client_id_attribute(graph_settings) if extensions else None
        quarantine = Quarantine("b2c")
        known = known_hashes(warehouse, dataset_name, TABLE)
        now = datetime.now(UTC)
        not_found: list[str] = []
        pages = _targeted_pages(client, wanted, not_found) if wanted else _scan_pages(client, page_size)
        tasks = (
            (raw, extensions, client_attribute, f"users/page-{page_no}", now)
            for page_no, raw in enumerate(prefetch(pages), start=1)
        )
        batcher = TableBatcher()
        seen: set[str] = set()
        for ipc, quarantined, fetched, held in ordered_map(build_user_page, tasks, workers=workers):
            counts.pages += 1
            counts.fetched += fetched
            # a user quarantined for its text still exists: keep its last good row, do not tombstone it
            for user_id in held:
                known.pop(user_id, None)
            table = changed_rows(first_sightings(from_ipc(ipc), seen), known, counts)
            if table is not None and (batch := batcher.add(table)) is not None:
                yield _users_item(batch)
            if quarantined:
                quarantine.extend(quarantined)
                counts.quarantined += len(quarantine)
                yield quarantine.item(now)
        if (batch := batcher.flush()) is not None:
            yield _users_item(batch)
        # only a complete scan proves absence; a targeted run only trusts its own 404s
        candidates = not_found if wanted else list(known)
        gone = [user_id for user_id in candidates if known.get(user_id) is not None]
        if gone:
            table = tombstones(warehouse, dataset_name, gone, now)
            counts.deleted += table.num_rows
            if table.num_rows:
                yield _users_item(table)
        log.info("b2c users: %s", counts.as_dict())

    return users
