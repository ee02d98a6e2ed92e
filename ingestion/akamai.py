"""dlt source of Akamai Identity Cloud users, landing in ``raw_akamai.users`` with the identity columns of
``raw_b2c.users`` so the linking models treat both identity providers alike.

Every run scans the entity type in keyset pages (``id > last``) and emits only users whose normalised content
changed since the last load, plus one tombstone for each user that disappeared. A targeted run
(``identity_ids`` = uuids, e.g. from a webhook) fetches just those entities; one that no longer exists becomes
a tombstone.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
import orjson

from clients.akamai import AkamaiClient
from clients.http import ApiError
from ingestion import normalize as n
from ingestion.b2c import SCHEMA, TABLE, changed_only, tombstones
from ingestion.columns import B2C_USERS, dlt_columns, payload_columns
from ingestion.paging import PageFetchError, numbered_pages
from ingestion.prefetch import prefetch
from ingestion.quality import LoadCounts, Quarantine, keyed_records
from ingestion.warehouse_state import known_hashes
from settings import AkamaiSettings
from warehouse import Warehouse

log = logging.getLogger(__name__)

DATASET = "raw_akamai"
CONSENT_KEY = "CrmSyncConsent"
CONTACT_ID_KEY = "CrmContactId"
# further consent attributes (dbt var consent_purposes) -> where an entity holds them: Identity Cloud records
# each consent as consents.<name>.granted with the time it was last updated
CONSENT_PATHS = {
    "CrmSyncConsentAt": "consents.crmSync.updated",
    "MarketingConsent": "consents.marketing.granted",
    "MarketingConsentAt": "consents.marketing.updated",
}
PAGE_SIZE = 1000
TARGETED_PAGE = 50  # uuids fetched per yielded page in a targeted run
_PAYLOAD_COLUMNS = payload_columns(B2C_USERS)  # id … email_valid, as in raw_b2c.users


def entity_attributes(settings: AkamaiSettings) -> list[str]:
    """Attributes read from every entity (``primaryAddress`` whole: its sub-attributes vary by schema)."""
    return list(dict.fromkeys([
        "uuid", "displayName", "givenName", "familyName", "email", "mobileNumber", "primaryAddress",
        "created", "emailVerified", "lastLogin", "lastUpdated", "clients", settings.consent_attribute_path,
        *CONSENT_PATHS.values(), settings.contact_id_attribute,
    ]))


class UnrepresentableRecord(ValueError):
    """A record ingestion would quarantine; the message is the quarantine reason (no values)."""


class AkamaiIdentityReader:
    """One Akamai entity read the way ingestion loads it into ``raw_akamai.users``: the normalised identity row
    (column name -> value), with the custom attributes (``CONSENT_KEY``, ``CONTACT_ID_KEY``) as keys of their own
    and ``email`` set to the address the linking rules compare. For callers outside a load (the fast lane)."""

    def __init__(self, settings: AkamaiSettings) -> None:
        self.attributes = entity_attributes(settings)  # what to request from the Entity API
        self._builder = EntityPageBuilder(settings)

    def row(self, entity: dict) -> dict[str, Any]:
        quarantine = Quarantine(source="akamai")
        columns = self._builder.build([entity], page_key=f"entity:{entity.get('uuid')}", quarantine=quarantine,
                                      now=datetime.now(UTC))
        if not columns["id"]:
            raise UnrepresentableRecord(quarantine.rows[0][1] if quarantine.rows else "unreadable")
        row = {name: values[0] for name, values in columns.items()}
        row.update(orjson.loads(row["custom_attributes"]))
        row["email"] = row["sign_in_email"] or row["mail"]  # as the staging models read it
        return row


def path_value(entity: dict, path: str) -> Any:
    value: Any = entity
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def capture_timestamp(value: Any, flags: set[str]) -> datetime | None:
    """Identity Cloud's ``2024-01-02 03:04:05.678901 +0000`` (or ISO 8601) as an aware UTC datetime."""
    if isinstance(value, str):
        text = value.strip()
        # the space before the offset is the only departure from ISO 8601 (fromisoformat is ~50x strptime)
        if len(text) > 6 and text[-6] == " " and text[-5] in "+-":
            text = text[:-6] + text[-5:]
        return n.parse_timestamp(text, flags)
    return n.parse_timestamp(value, flags)


def registration_client(clients: Any, flags: set[str]) -> str | None:
    """The client id the identity registered through: of the ``clients`` plural (one entry per client the user
    signed in to, with ``clientId``, ``firstLogin`` and ``lastLogin``), the entry first logged in to."""
    if clients is None:
        return None
    if not isinstance(clients, list):
        flags.add(n.INVALID_VALUE)
        return None
    first: tuple[datetime, str] | None = None
    for entry in clients:
        client_id = n.clean_text(entry.get("clientId"), flags) if isinstance(entry, dict) else None
        if not client_id:
            continue
        since = capture_timestamp(entry.get("firstLogin"), flags) or datetime.max.replace(tzinfo=UTC)
        if first is None or (since, client_id) < first:
            first = (since, client_id)
    return first[1] if first else None


def _numeric_id_location(position: int, record: dict) -> str:
    """A record without a uuid is located by its numeric id, which is not personal data."""
    return f"id-{record.get('id', position)}"


class EntityPageBuilder:
    """Turns pages of Identity Cloud user entities into column lists of ``raw_akamai.users``."""

    def __init__(self, settings: AkamaiSettings) -> None:
        self.consent_path = settings.consent_attribute_path
        self.contact_id_attribute = settings.contact_id_attribute

    def build(self, records: list[Any], page_key: str, quarantine: Quarantine,
              now: datetime) -> dict[str, list]:
        cols: dict[str, list] = {f.name: [] for f in SCHEMA}
        for uuid, record in keyed_records(records, "uuid", page_key, quarantine,
                                             missing_key_location=_numeric_id_location):
            self._append(cols, uuid, record, now)
        return cols

    def _append(self, cols: dict[str, list], uuid: str, r: dict, now: datetime) -> None:
        flags: set[str] = set()
        text = n.clean_text
        display_name = text(r.get("displayName"), flags)
        given_name = text(r.get("givenName"), flags)
        surname = text(r.get("familyName"), flags)
        # the Identity Cloud email is the sign-in address; it fills both email columns of the identity shape
        email, email_valid = n.normalize_email(text(r.get("email"), flags))
        if email_valid is None:
            flags.add(n.MISSING_EMAIL)
        elif email_valid is False:
            flags.add(n.MALFORMED_EMAIL)
        if not (given_name or surname or display_name):
            flags.add(n.MISSING_NAME)

        address = r.get("primaryAddress")
        if address is not None and not isinstance(address, dict):
            flags.add(n.INVALID_VALUE)
            address = None
        address = address or {}
        lines = [text(address.get(key), flags, multiline=True) for key in ("address1", "address2")]
        street_address = "\n".join(line for line in lines if line) or None
        city = text(address.get("city"), flags)
        postal_code = text(address.get("zip"), flags)
        state = text(address.get("stateAbbreviation"), flags)
        country = text(address.get("country"), flags)
        country_code = n.country_iso2(country)
        mobile_phone = text(r.get("mobileNumber"), flags) or text(address.get("mobile"), flags)
        business_phone = text(address.get("phone"), flags)
        phone_e164 = n.first_e164((mobile_phone, business_phone), country_code, flags)
        created = capture_timestamp(r.get("created"), flags)
        # emailVerified is the time the address was verified: set means verified
        verified_at = capture_timestamp(r.get("emailVerified"), flags)
        email_verified = None if email is None else verified_at is not None
        custom_attributes = {CONSENT_KEY: path_value(r, self.consent_path),
                             CONTACT_ID_KEY: r.get(self.contact_id_attribute)}
        for name, path in CONSENT_PATHS.items():
            value = path_value(r, path)
            if name.endswith("At"):  # Identity Cloud's time format, as ISO 8601 for staging
                moment = capture_timestamp(value, set())
                value = moment.isoformat() if moment else None
            custom_attributes[name] = value

        values = (uuid, display_name, given_name, surname, email, None, email, None, mobile_phone,
                  business_phone, phone_e164, street_address, city, postal_code, state, country, country_code,
                  None,  # Identity Cloud has no enabled flag: an entity that exists can sign in
                  created, n.json_text(custom_attributes), registration_client(r.get("clients"), flags),
                  email_verified, capture_timestamp(r.get("lastLogin"), flags),
                  capture_timestamp(r.get("lastUpdated"), flags), email_valid)
        flag_text = n.flags_text(flags)
        digest = n.content_hash(values + (flag_text,))
        for name, value in zip(_PAYLOAD_COLUMNS, values):
            cols[name].append(value)
        cols["content_hash"].append(digest)
        cols["quality_flags"].append(flag_text)
        cols["is_deleted"].append(False)
        cols["deleted_at"].append(None)
        cols["ingested_at"].append(now)


def _scan_pages(client: AkamaiClient, attributes: list[str]) -> Iterator[list[Any]]:
    """Every page of the entity type; a page that fails past its retries names itself in the error."""
    return numbered_pages(client.find_pages(attributes, page_size=PAGE_SIZE), "Akamai users", "POST /entity.find")


def _targeted_pages(client: AkamaiClient, uuids: list[str], attributes: list[str],
                    not_found: list[str]) -> Iterator[list[Any]]:
    """The entities ``uuids`` (one ``entity`` call each, retried by the client); absent ones land in ``not_found``."""
    for start in range(0, len(uuids), TARGETED_PAGE):
        found: list[Any] = []
        for uuid in uuids[start:start + TARGETED_PAGE]:
            try:
                entity = client.get_entity(uuid, attributes)
            except ApiError as exc:
                raise PageFetchError(f"Akamai user {uuid} (POST /entity) could not be fetched: {exc}") from None
            if entity is None:
                not_found.append(uuid)
            else:
                found.append(entity)
        yield found


@dlt.source(name="akamai", max_table_nesting=0)
def akamai_source(settings: AkamaiSettings | None = None, warehouse: Warehouse | None = None,
                  identity_ids: Sequence[str] = (), dataset_name: str = DATASET) -> Any:
    """Users of the Identity Cloud entity type as ``users`` (merge on ``id`` = uuid); unrepresentable
    records go to ``quarantine``. Declaring the source needs no settings; loading it needs settings and the
    warehouse."""
    wanted = [i for i in dict.fromkeys(str(x).strip() for x in identity_ids) if i]

    @dlt.resource(name="users", table_name=TABLE, write_disposition="merge", primary_key="id",
                  columns=dlt_columns(B2C_USERS))
    def users() -> Iterator[Any]:
        if settings is None or warehouse is None:
            raise ValueError("Akamai is not configured (AKAMAI_BASE_URL, AKAMAI_CLIENT_ID, AKAMAI_CLIENT_SECRET) "
                             "or no warehouse was given")
        active = settings
        counts = LoadCounts()
        builder = EntityPageBuilder(active)
        quarantine = Quarantine("akamai")
        known = known_hashes(warehouse, dataset_name, TABLE)
        now = datetime.now(UTC)
        not_found: list[str] = []
        attributes = entity_attributes(active)
        with AkamaiClient(active) as client:
            pages = (_targeted_pages(client, wanted, attributes, not_found) if wanted
                     else _scan_pages(client, attributes))
            for page_no, records in enumerate(prefetch(pages), start=1):
                counts.pages += 1
                counts.fetched += len(records)
                cols = builder.build(records, f"users/page-{page_no}", quarantine, now)
                table = changed_only(cols, known, counts)
                if table is not None:
                    yield table
                if len(quarantine):
                    counts.quarantined += len(quarantine)
                    yield quarantine.item(now)
        # only a complete scan proves absence; a targeted run only trusts its own record_not_found answers
        candidates = not_found if wanted else list(known)
        gone = [uuid for uuid in candidates if known.get(uuid) is not None]
        if gone:
            table = tombstones(warehouse, dataset_name, gone, now)
            counts.deleted += table.num_rows
            if table.num_rows:
                yield table
        log.info("akamai users: %s", counts.as_dict())

    return users

