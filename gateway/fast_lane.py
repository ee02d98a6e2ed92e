"""The fast lane: a consenting Akamai identity gets its CRM contact within seconds of the webhook.

The gateway stores each verified webhook event; this worker (``python -m gateway fast-lane``) follows the inbox
with its own cursor and, for every Akamai entity created or updated:

1. reads the entity through the Entity API (consent, the contact id it may already carry, email, names);
2. finds its Salesforce contact: the one already carrying the identity's uuid, else the only contact with the
   same email that carries no other identity and whose first name does not clearly differ (the dbt email
   rule and its family-mailbox veto); sets the uuid on it.
   When the CRM has no contact with that email it creates one (upsert by the external ID, fields from the
   field mapping), so a repeated attempt or the batch sync updates the same record. The mapping entry is the
   one of the client the identity registered through (the entity's first sign-in in its ``clients``): a
   client without an entry is left alone, one whose entry does not send ``created`` is linked but never gets a
   new contact; the mapping of every client is checked against the org's describe before the first write;
   and unless the CRM deleted or merged away a contact carrying the identity's id (queryAll): whether to create
   again is the batch path's policy (``recreate_deleted_contacts``), so the fast lane leaves it to it;
3. writes the contact id onto the entity;
4. records every write in the inbox's audit log and stores an event naming the identity and the contact, so the
   next targeted Dagster run fetches both, links them through the dbt rules (the uuid on the contact is the
   strongest rule) and copies the audit rows into the warehouse's ``sync_log``.

Only evidence the dbt rules also accept is acted on. Everything else — several contacts with the email, names
that differ (a family mailbox), a contact held by another identity, a missing family name, any API failure — is
left to the targeted run that the original event triggers anyway: the fast lane never blocks or replaces the
batch path, it only gets there first.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from clients.akamai import AkamaiClient
from clients.http import ApiError, path_segment
from clients.salesforce import SalesforceClient
from gateway.crm_contacts import (
    candidate_contacts,
    choose_by_email,
    deleted_contact_holding,
    refused,
    upsert_by_external_id,
)
from gateway.identity_ids import canonical_uuid
from inbox import Inbox, InboxEvent
from ingestion import CONSENT_KEY, CONTACT_ID_KEY, AkamaiIdentityReader, UnrepresentableRecord
from reverse_etl import (
    CREATE_CONTACT,
    FAILED,
    SET_ATTRIBUTE,
    SET_EXTERNAL_ID,
    SUCCEEDED,
    CheckedOnce,
    FieldMapping,
    MappingError,
    TargetMapping,
    contact_fields,
    contact_id_attribute,
    external_write,
    mapping_for,
    validate_salesforce_targets,
)
from settings import FastLaneSettings, Settings

log = logging.getLogger(__name__)

CONSUMER = "fast_lane"
SOURCE = "fast_lane"  # the source of the events this worker stores for the sensors
PROVIDER = "akamai"
CRM = "salesforce"
HANDLED_KINDS = frozenset({"entityCreated", "entityUpdated"})
CONTACT_GONE = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"})
CREATE_RULE = "consented_without_contact"  # the audit trail's rule of a contact created for an identity
DEFAULT_SETTINGS = FastLaneSettings()


# ---- one identity --------------------------------------------------------------------------------------------

@dataclass
class FastLaneResult:
    uuid: str
    action: str  # created | linked | found | skipped | deferred | failed
    reason: str = ""
    contact_id: str | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def wrote(self) -> bool:
        return any(row["outcome"] == SUCCEEDED for row in self.audit)


class _Deferred(Exception):
    """Not clear enough to act on: the batch linking decides."""


class FastLane:
    """Links one Akamai identity to its Salesforce contact (see the module docstring)."""

    def __init__(self, akamai: AkamaiClient, salesforce: SalesforceClient, mapping: FieldMapping,
                 settings: FastLaneSettings = DEFAULT_SETTINGS) -> None:
        if not mapping.targets(CRM):
            raise ValueError(f"the field mapping has no {CRM} target for the fast lane")
        self.akamai = akamai
        self.salesforce = salesforce
        self.mapping = mapping
        self.settings = settings
        self.external_id_field = salesforce.settings.external_id_field
        self._reader = AkamaiIdentityReader(akamai.settings)
        # the mapping of every client is checked against the org's describe before the first write
        self.mapping_check = CheckedOnce(lambda: validate_salesforce_targets(
            mapping, salesforce.describe("Contact"), self.external_id_field))

    def link(self, uuid: str) -> FastLaneResult:
        result = FastLaneResult(uuid=uuid, action="skipped")
        try:
            self.mapping_check.ensure()
            self._link(result)
        except _Deferred as reason:
            result.action, result.reason = "deferred", str(reason)
        except MappingError as exc:  # names fields, never values: the operator must fix the mapping
            log.error("fast lane: %s", exc)
            result.action, result.reason = "failed", "mapping_invalid"
        except (ApiError, OSError) as exc:  # transport errors included: the batch path retries
            result.action = "failed"
            result.reason = getattr(exc, "code", None) or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - one odd record must not stop the lane for everyone after it
            # the type only: a message could quote a record's values
            log.error("fast lane: identity %s failed unexpectedly (%s)", uuid, type(exc).__name__)
            result.action, result.reason = "failed", f"unexpected {type(exc).__name__}"
        return result

    def _identity(self, uuid: str) -> dict[str, Any] | None:
        entity = self.akamai.get_entity(uuid, self._reader.attributes)
        if entity is None:
            return None
        try:
            return self._reader.row(entity)
        except UnrepresentableRecord as reason:  # ingestion quarantines it with this reason
            raise _Deferred(f"quarantined: {reason}") from None

    def _link(self, result: FastLaneResult) -> None:
        identity = self._identity(result.uuid)
        if identity is None:
            result.reason = "identity_gone"
            return
        if identity.get(CONSENT_KEY) is not True:
            result.reason = "no_consent"
            return
        if identity.get(CONTACT_ID_KEY):
            result.action, result.reason, result.contact_id = "found", "identity_carries_contact", identity[CONTACT_ID_KEY]
            return
        # the client the identity registered through (the entity's first sign-in) chooses the mapping entry
        target = self.mapping.target(CRM, identity.get("client_id"))
        if target is None:
            result.reason = "client_not_mapped"
            return
        if not identity.get("email") or not identity.get("email_valid"):
            raise _Deferred("no_valid_email")

        held, same_email = candidate_contacts(self.salesforce, result.uuid, identity["email"])
        if held:
            result.action, result.contact_id = "found", held[0]["Id"]
        else:
            self._find_by_email_or_create(identity, same_email, target, result)
        self._write_contact_id(identity.get("client_id"), result)

    def _find_by_email_or_create(self, identity: dict[str, Any], same_email: list[dict], target: TargetMapping,
                                 result: FastLaneResult) -> None:
        if same_email:
            contact, reason = choose_by_email(same_email, result.uuid, identity.get("given_name"),
                                              self.external_id_field)
            if contact is None:
                raise _Deferred(reason)
            self._set_external_id(contact["Id"], result)
            result.action, result.contact_id = "linked", contact["Id"]
            return
        if not self.settings.create_contacts:
            raise _Deferred("no_contact_and_creation_off")
        if not target.events.created:
            raise _Deferred("event_created_not_sent")
        if not identity.get("surname"):
            raise _Deferred("no_family_name")  # Salesforce requires LastName; the batch sync knows the fallback
        result.contact_id = self._create(identity, target, result)
        result.action = "created"

    def _call(self, result: FastLaneResult, system: str, operation: str, key: str, payload: dict, rule: str,
              send: Callable[[], str | None]) -> str | None:
        """Make one write and record it for the audit trail, with the rule that decided it."""
        try:
            remote_id = send()
        except ApiError as exc:
            result.audit.append(external_write(system, operation, key, payload, FAILED,
                                               exc.code or f"HTTP_{exc.status}", rule=rule))
            raise
        result.audit.append(external_write(system, operation, key, payload, SUCCEEDED, remote_id=remote_id,
                                           rule=rule))
        return remote_id

    def _set_external_id(self, contact_id: str, result: FastLaneResult) -> None:
        payload = {self.external_id_field: result.uuid}

        def send() -> str:
            response = self.salesforce.request("PATCH", f"sobjects/Contact/{path_segment(contact_id)}",
                                               data=orjson.dumps(payload), headers={"Content-Type": "application/json"})
            if not 200 <= response.status_code < 300:  # e.g. 404 ENTITY_IS_DELETED: the contact is gone
                raise refused("Contact update", response)
            return contact_id

        try:
            self._call(result, CRM, SET_EXTERNAL_ID, f"{contact_id}:{self.external_id_field}", payload, "email", send)
        except ApiError as exc:
            if exc.code in CONTACT_GONE:  # deleted or merged away meanwhile: the batch linking decides
                raise _Deferred(f"contact_gone ({exc.code})") from None
            raise

    def _create(self, identity: dict[str, Any], target: TargetMapping, result: FastLaneResult) -> str | None:
        if deleted_contact_holding(self.salesforce, result.uuid):  # never undo what the CRM team did
            raise _Deferred("contact_deleted_in_crm")
        values = {**identity, "identity_id": result.uuid, "family_name": identity.get("surname"),
                  "created_at": identity.get("created_date_time")}
        fields = contact_fields(target, values)
        body = {name: value for name, value in fields.items()
                if value not in (None, "") and name != self.external_id_field}

        contact_id = self._call(result, CRM, CREATE_CONTACT, f"{PROVIDER}:{result.uuid}", fields, CREATE_RULE,
                                lambda: upsert_by_external_id(self.salesforce, result.uuid, body))
        if not contact_id:
            raise _Deferred("created_contact_not_found")
        return contact_id

    def _write_contact_id(self, client_id: str | None, result: FastLaneResult) -> None:
        attribute = contact_id_attribute(self.akamai.settings, self.mapping.target(PROVIDER, client_id))
        payload = {attribute: result.contact_id}

        def send() -> str:
            self.akamai.update_entity(result.uuid, payload)
            return result.uuid

        rule = {"found": "carried_id", "linked": "email"}.get(result.action, CREATE_RULE)
        self._call(result, PROVIDER, SET_ATTRIBUTE, f"{result.uuid}:{attribute}", payload, rule, send)


# ---- the worker ----------------------------------------------------------------------------------------------

def uuids_to_link(events: Iterable[InboxEvent]) -> list[str]:
    """Akamai identities created or updated, each once, in order of first appearance; a subject that is not an
    Akamai uuid (the listener refuses those; an older inbox may hold one) is never acted on."""
    uuids = (canonical_uuid(e.subject) for e in events if e.source == PROVIDER and e.kind in HANDLED_KINDS)
    return list(dict.fromkeys(uuid for uuid in uuids if uuid))


def outcome_event(result: FastLaneResult) -> InboxEvent:
    """What the sensors see: identity and contact to fetch in the next targeted run (identifiers only)."""
    return InboxEvent(id=f"{SOURCE}:{result.uuid}:{result.contact_id}:{result.action}", source=SOURCE,
                      kind=result.action, subject=result.uuid,
                      payload={"provider": PROVIDER, "crm": CRM, "contact_id": result.contact_id,
                               "action": result.action})


class FastLaneWorker:
    """Follows the inbox from its own cursor; new events only (a first start begins at the end)."""

    def __init__(self, inbox: Inbox, lane: FastLane, settings: FastLaneSettings = DEFAULT_SETTINGS) -> None:
        self.inbox = inbox
        self.lane = lane
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="fast-lane")
        self.counts: dict[str, int] = {}

    def step(self) -> int:
        """Handle the events after the cursor once; returns how many events were read."""
        cursor = self.inbox.consumer_seq(CONSUMER)
        if cursor is None:  # history belongs to the batch path
            self.inbox.set_consumer_seq(CONSUMER, self.inbox.last_seq())
            return 0
        events = self.inbox.after(cursor, limit=self.settings.batch_limit, sources=[PROVIDER])
        if not events:
            return 0
        results = list(self._pool.map(self.lane.link, uuids_to_link(events)))
        for result in results:
            self.counts[result.action] = self.counts.get(result.action, 0) + 1
            if result.audit:
                self.inbox.record_audit(result.audit)
            if result.wrote and result.contact_id:
                self.inbox.put(outcome_event(result))
            log.info("fast lane: identity %s %s%s", result.uuid, result.action,
                     f" ({result.reason})" if result.reason else "")
        # after the writes are recorded: a crash before this line repeats them, and they are idempotent
        self.inbox.set_consumer_seq(CONSUMER, max(e.seq or 0 for e in events))
        return len(events)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("fast lane step failed")
                busy = 0
            if not busy:
                stop.wait(self.settings.poll_interval_s)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def build_worker(inbox: Inbox, settings: Settings) -> FastLaneWorker:
    """A worker from the Akamai, Salesforce, field-mapping and fast-lane settings."""
    if settings.akamai is None or settings.salesforce is None:
        raise ValueError("the fast lane needs Akamai (AKAMAI_BASE_URL, AKAMAI_CLIENT_ID, AKAMAI_CLIENT_SECRET) and "
                         "Salesforce (SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET) configured")
    lane = settings.fast_lane
    budget = {"timeout_s": lane.call_budget_s, "retry_max_s": lane.call_budget_s}
    akamai = AkamaiClient(dataclasses.replace(settings.akamai, **budget))
    salesforce = SalesforceClient(dataclasses.replace(settings.salesforce, **budget))
    mapping = mapping_for(settings.field_mapping)
    return FastLaneWorker(inbox, FastLane(akamai, salesforce, mapping, lane), lane)
