"""Runs one reverse-ETL push: marts -> records -> diff -> intent -> writes -> outcomes (no Dagster here).

``run_sync`` drives any ``Writer`` (see ``reverse_etl.state``); ``push_salesforce`` and ``push_b2c`` read the
marts, build that system's records through the field mapping, validate the mapping against the target and
call it.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import requests
import tenacity

from clients.graph import GraphClient
from clients.http import RequestLimitExceeded
from clients.salesforce import SalesforceClient
from reverse_etl.attribute_writer import SET_ATTRIBUTE
from reverse_etl.b2c_writer import B2CWriter
from reverse_etl.erasure_writer import SalesforceErasureWriter, crm_erasure_records
from reverse_etl.mapping import (
    ANY_CLIENT,
    CONTACT_ID_LOGICAL,
    CRM_LOGICAL_FIELDS,
    DeletedAction,
    FieldMapping,
    MappingError,
    TargetMapping,
    contact_fields,
    validate_b2c_mapping,
    validate_salesforce_targets,
)
from reverse_etl.salesforce_writer import (
    CLEAR_EXTERNAL_ID,
    CREATE_CONTACT,
    DEFAULT_BULK_THRESHOLD,
    SET_EXTERNAL_ID,
    SET_FIELD,
    SalesforceWriter,
    ValidationPolicy,
)
from reverse_etl.state import ACTOR_RUN, DEFAULT_MAX_ATTEMPTS, Outcome, StateStore, SyncRecord, Writer
from settings import GraphSettings, SalesforceSettings
from warehouse import Connection, Warehouse

log = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 4
_INTENT_CHUNK = 4000  # records whose intent is written in one transaction
_FLUSH_EVERY = 2000  # outcomes buffered before they are written in one transaction
_FLUSH_INTERVAL_S = 5.0
_DRY_RUN_SAMPLE = 20
IDENTITY_DELETED = "deleted"  # external_ids_to_push.reason of a contact whose identity was deleted


@dataclass
class SyncResult:
    system: str
    run_id: str
    dry_run: bool = False
    attempted: int = 0  # records sent this run
    succeeded: int = 0
    failed: int = 0  # still pending, retried next run
    skipped: int = 0  # unchanged since last accepted
    dead_lettered: int = 0  # moved to dead letters this run
    parked: int = 0  # already dead-lettered with this payload: not sent
    invalid: int = 0  # mart rows that cannot be written at all (dead-lettered with a reason)
    api_calls: int = 0
    limit_reached: bool = False
    would_send: int = 0  # dry run: records a real run would send
    sample_keys: list[str] = field(default_factory=list)  # dry run: a few of those keys
    dead_letters_before: int = 0
    pending_after: int = 0
    dead_letters_after: int = 0

    @property
    def success_rate(self) -> float:
        return 1.0 if self.attempted == 0 else self.succeeded / self.attempted

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success_rate": self.success_rate}


def run_sync(con: Connection, writer: Writer, records: Iterable[SyncRecord], run_id: str, *,
             dry_run: bool = False, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
             max_workers: int = DEFAULT_MAX_WORKERS, invalid: Sequence[tuple[SyncRecord, str, str]] = (),
             actor: str = ACTOR_RUN) -> SyncResult:
    """Push ``records`` through ``writer``; ``invalid`` records (with code and reason) go to dead letters unsent.
    ``actor`` says who pushes, in the sync log (a run; a command)."""
    store = StateStore(con, writer.system, run_id, max_attempts, actor)
    records = list(records)
    plan = store.plan(records)
    if plan.duplicates:
        log.warning("%s: %d records repeat a key already seen in this run; only the first is sent",
                    writer.system, plan.duplicates)
    result = SyncResult(system=writer.system, run_id=run_id, dry_run=dry_run, skipped=plan.skipped,
                        parked=plan.parked, dead_letters_before=store.dead_letter_count())
    rejected_plan = store.plan(record for record, _, _ in invalid)
    reasons = {record.key: (code, reason) for record, code, reason in invalid}
    if dry_run:
        result.would_send = len(plan.to_send)
        result.sample_keys = [r.key for r in plan.to_send[:_DRY_RUN_SAMPLE]]
        result.invalid = len(rejected_plan.to_send)
        log.info("dry run %s: would send %d records (skipped %d unchanged, %d parked, %d invalid); e.g. %s",
                 writer.system, result.would_send, result.skipped, result.parked, result.invalid, result.sample_keys)
        _finish(store, result, writer)
        return result

    dropped = store.forget_obsolete([r.key for r in records] + [r.key for r, _, _ in invalid])
    if dropped:
        log.info("%s: %d pending records are no longer in the marts and were dropped", writer.system, dropped)
    if rejected_plan.to_send:
        # never sent, never retried while unchanged: the reason is all there is to learn
        triples = [(r, Outcome.failure(r.key, *reasons[r.key], give_up=True), 0) for r in rejected_plan.to_send]
        result.invalid = len(triples)
        result.dead_lettered += store.record_outcomes(triples).dead_lettered

    batches = deque(writer.batches(plan.to_send))
    primed: deque[tuple[list[SyncRecord], dict[str, int]]] = deque()
    in_flight: dict[Future, tuple[list[SyncRecord], dict[str, int]]] = {}
    buffer: list[tuple[SyncRecord, Outcome, int]] = []

    last_flush = [time.monotonic()]

    def flush() -> None:
        last_flush[0] = time.monotonic()
        counts = store.record_outcomes(buffer)
        result.succeeded += counts.succeeded
        result.failed += counts.failed
        result.dead_lettered += counts.dead_lettered
        buffer.clear()

    def prime() -> None:
        # intent for a chunk of batches in one transaction, written before any of them is sent
        chunk: list[list[SyncRecord]] = []
        size = 0
        while batches and (not chunk or size + len(batches[0]) <= _INTENT_CHUNK):
            chunk.append(batches.popleft())
            size += len(chunk[-1])
        attempts = store.record_intent([r for batch in chunk for r in batch])
        primed.extend((batch, attempts) for batch in chunk)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"reverse-etl-{writer.system}") as pool:
        while True:
            while not result.limit_reached and len(in_flight) < 2 * max_workers and (primed or batches):
                if not primed:
                    prime()
                batch, attempts = primed.popleft()
                result.attempted += len(batch)
                in_flight[pool.submit(writer.send, batch)] = (batch, attempts)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                batch, attempts = in_flight.pop(future)
                try:
                    outcomes = {o.key: o for o in future.result()}
                except RequestLimitExceeded:
                    # the limit is an org-wide daily budget: stop cleanly, everything unsent stays pending
                    result.limit_reached = True
                    result.attempted -= len(batch)
                    store.release_unsent(batch, "REQUEST_LIMIT_EXCEEDED")
                    continue
                except Exception as exc:  # a writer bug must not lose records: they stay pending
                    log.exception("%s writer failed on a batch of %d records", writer.system, len(batch))
                    outcomes = {r.key: Outcome.failure(r.key, type(exc).__name__, "the writer failed on this batch")
                                for r in batch}
                for record in batch:
                    outcome = outcomes.get(record.key) or Outcome.failure(record.key, "NO_RESULT",
                                                                          "writer reported no outcome")
                    buffer.append((record, outcome, attempts[record.key]))
            # outcomes are written in chunks (pending intent already covers a crash in between), and at least
            # every few seconds so a long run's progress is visible
            if len(buffer) >= _FLUSH_EVERY or (buffer and time.monotonic() - last_flush[0] > _FLUSH_INTERVAL_S):
                flush()
    flush()
    if result.limit_reached and primed:
        store.release_unsent([r for batch, _ in primed for r in batch], "REQUEST_LIMIT_EXCEEDED")
    _finish(store, result, writer)
    log.info("%s push %s: attempted %d, succeeded %d, failed %d, skipped %d, dead-lettered %d, api calls %d%s",
             writer.system, run_id, result.attempted, result.succeeded, result.failed, result.skipped,
             result.dead_lettered, result.api_calls, ", API limit reached" if result.limit_reached else "")
    return result


def _finish(store: StateStore, result: SyncResult, writer: Writer) -> None:
    result.api_calls = writer.api_calls
    result.pending_after = store.pending_count()
    result.dead_letters_after = store.dead_letter_count()


# -- CRMs ------------------------------------------------------------------------------------------------------

@dataclass
class CrmRecords:
    """What one CRM is sent from the marts: records to write, rows that cannot be written (with a reason), and
    the identities left out because their client's mapping entry does not send that event to this CRM."""

    records: list[SyncRecord] = field(default_factory=list)
    invalid: list[tuple[SyncRecord, str, str]] = field(default_factory=list)
    not_sent: dict[str, int] = field(default_factory=dict)  # reason -> identities

    def skip(self, reason: str) -> None:
        self.not_sent[reason] = self.not_sent.get(reason, 0) + 1


def crm_records(con: Connection, crm: str, mapping: FieldMapping, external_id_field: str
                ) -> CrmRecords:
    """Records for one CRM from the marts, each identity through its client's entry of the field mapping:
    contacts to create (event created), linked contacts' fields that follow their identity (event updated), ids
    to set or clear on its contacts, a deleted identity's contact cleared or flagged (event deleted)."""
    out = CrmRecords()
    _created(con, crm, mapping, out)
    _updated(con, crm, mapping, out)
    _external_ids(con, crm, mapping, external_id_field, out)
    out.records.extend(consent_field_records(con, crm, mapping))
    out.records.extend(crm_erasure_records(con, crm, mapping.targets(crm), external_id_field))
    for reason, count in sorted(out.not_sent.items()):
        log.info("%s: %d identities not sent (%s)", crm, count, reason)
    return out


def _mart_rows(con: Connection, mart: str, columns: Sequence[str], crm: str
               ) -> Iterable[dict[str, Any]]:
    names = list(dict.fromkeys(columns))
    for row in con.execute(f"SELECT {', '.join(names)} FROM marts.{mart} WHERE crm = ? "
                           f"ORDER BY {', '.join(names[:2])}", [crm]):
        yield dict(zip(names, row))


def _value_columns(targets: Iterable[TargetMapping]) -> list[str]:
    return [CRM_LOGICAL_FIELDS[logical] for target in targets for logical in target.fields]


def _created(con: Connection, crm: str, mapping: FieldMapping, out: CrmRecords) -> None:
    columns = ["identity_provider", "identity_id", "client_id", *_value_columns(mapping.targets(crm))]
    for values in _mart_rows(con, "contacts_to_create", columns, crm):
        if not values["identity_id"]:
            log.warning("contacts_to_create row without identity_id ignored (provider %s)", values["identity_provider"])
            continue
        target = mapping.target(crm, values["client_id"])
        if target is None:
            out.skip("client without a mapping entry")
        elif not target.events.created:
            out.skip("event created not sent")
        else:
            out.records.append(SyncRecord(key=f"{values['identity_provider']}:{values['identity_id']}",
                                          operation=CREATE_CONTACT, payload=contact_fields(target, values),
                                          rule=CREATE_RULE))


def _updated(con: Connection, crm: str, mapping: FieldMapping, out: CrmRecords) -> None:
    senders = [target for target in mapping.targets(crm) if target.events.updated]
    if not senders:
        return  # no entry sends updates: the mart is not read at all
    columns = ["contact_id", "identity_provider", "identity_id", "client_id", *_value_columns(senders)]
    for values in _mart_rows(con, "contact_fields_to_push", columns, crm):
        target = mapping.target(crm, values["client_id"])
        if target is None or not target.events.updated or not values["contact_id"]:
            continue
        # one record per contact: its payload hash changes when any followed value does, and only then is it sent
        out.records.append(SyncRecord(key=f"{values['contact_id']}:fields", operation=SET_FIELD,
                                      payload=contact_fields(target, values, target.events.updated),
                                      target=values["contact_id"], rule=UPDATED_RULE))


def _external_ids(con: Connection, crm: str, mapping: FieldMapping, external_id_field: str,
                  out: CrmRecords) -> None:
    for row in external_id_rows(con, crm):
        if not row.target_id:
            log.warning("external_ids_to_push row for %s without target_id ignored", crm)
            continue
        if str(row.attribute or "").lower() not in (external_id_field.lower(), "uuid"):
            record = SyncRecord(key=f"{row.target_id}:{row.attribute}", operation=SET_EXTERNAL_ID,
                                payload={str(row.attribute): row.value}, target=row.target_id, rule=row.rule)
            out.invalid.append((record, "UNMAPPED_ATTRIBUTE",
                                f"attribute {row.attribute} is not the external-id field {external_id_field}"))
            continue
        if row.reason == IDENTITY_DELETED:
            target = mapping.target(crm, row.client_id)
            action = target.events.deleted if target is not None else DeletedAction.CLEAR_EXTERNAL_ID
            if action is DeletedAction.KEEP:
                out.skip("event deleted not sent")
                continue
            if action is DeletedAction.FLAG:
                flag = str(target.events.deleted_flag)
                out.records.append(SyncRecord(key=f"{row.target_id}:{flag}", operation=SET_FIELD,
                                              payload={flag: True}, target=row.target_id, rule=row.rule))
                continue
        operation = SET_EXTERNAL_ID if row.value is not None else CLEAR_EXTERNAL_ID
        out.records.append(SyncRecord(key=f"{row.target_id}:{external_id_field}", operation=operation,
                                      payload={external_id_field: row.value}, target=row.target_id, rule=row.rule))


CREATE_RULE = "consented_without_contact"  # sync_log.rule of a contact created for an identity
UPDATED_RULE = "updated"  # sync_log.rule of a linked contact's fields following its identity (event updated)


class ExternalIdRow(NamedTuple):
    target_id: str | None
    attribute: str | None
    value: str | None
    rule: str  # why, for the audit trail: the reason and the link's match rule (link:email, withdrawn:carried_id)
    reason: str | None
    client_id: str | None


def external_id_rows(con: Connection, target_system: str) -> list[ExternalIdRow]:
    """The rows of ``marts.external_ids_to_push`` for one system, clears first: an id a merged-away contact gives
    up is then free before its survivor is given it (Dataverse's alternate key is unique over deactivated rows
    too; what still collides is sent again next run)."""
    links = con.table_exists("marts", "identity_contact_links")
    match_rule = "l.match_rule" if links else "NULL"
    join = """LEFT JOIN marts.identity_contact_links AS l ON l.identity_provider = e.identity_provider
            AND l.identity_id = e.identity_id AND l.crm = e.crm""" if links else ""
    return [ExternalIdRow(*row) for row in con.execute(f"""
        SELECT e.target_id, e.attribute, e.value, e.reason || coalesce(':' || {match_rule}, ''), e.reason,
               e.client_id
        FROM marts.external_ids_to_push AS e {join}
        WHERE e.target_system = ? ORDER BY e.value IS NOT NULL, e.target_id, e.attribute""",
        [target_system])]


def consent_field_records(con: Connection, crm: str, mapping: FieldMapping) -> list[SyncRecord]:
    """Consent carried to linked contacts (``marts.consent_fields_to_push``), for the purposes the identity's
    client entry carries; a purpose it does not map is not sent."""
    present = con.table_exists("marts", "consent_fields_to_push")
    if not present:
        return []
    rows = con.execute("""SELECT contact_id, attribute, value, purpose, client_id FROM marts.consent_fields_to_push
                          WHERE crm = ? ORDER BY contact_id, attribute""", [crm])
    records = []
    for contact_id, attribute, value, purpose, client_id in rows:
        target = mapping.target(crm, client_id)
        if target is not None and attribute in target.fields:
            records.append(SyncRecord(key=f"{contact_id}:{target.fields[attribute]}", operation=SET_FIELD,
                                      payload={target.fields[attribute]: value}, target=contact_id,
                                      rule=f"consent:{purpose}"))
    return records


@tenacity.retry(retry=tenacity.retry_if_exception_type(requests.RequestException), reraise=True,
                stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_random_exponential(multiplier=0.5, max=5))
def _describe(client: SalesforceClient) -> dict:
    # a read: safe to repeat when the connection dies mid-answer
    return client.describe("Contact")


def required_fields(describe: Mapping[str, Any]) -> list[str]:
    """Fields a new record must have: not nillable, createable and not filled in by the org itself."""
    return [f["name"] for f in describe.get("fields", [])
            if not f.get("nillable", True) and f.get("createable") and not f.get("defaultedOnCreate")]


def push_salesforce(warehouse: Warehouse | str | Path, settings: SalesforceSettings, mapping: FieldMapping,
                    run_id: str, dry_run: bool = False, *, client: SalesforceClient | None = None,
                    max_attempts: int = DEFAULT_MAX_ATTEMPTS, max_workers: int = DEFAULT_MAX_WORKERS,
                    bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
                    validation_policy: ValidationPolicy = ValidationPolicy.DROP_FIELD,
                    actor: str = ACTOR_RUN) -> SyncResult:
    """Create missing contacts, update followed fields and set / clear external ids in Salesforce from the
    marts, each identity through its client's mapping entry; a new contact the org refuses for a field value
    follows ``validation_policy``. A mapping without a ``salesforce`` target sends nothing."""
    if not mapping.targets("salesforce"):
        log.info("the field mapping has no salesforce target: nothing is sent to Salesforce")
        return SyncResult(system="salesforce", run_id=run_id, dry_run=dry_run)
    client = client or SalesforceClient(settings)
    try:
        # fail fast on a mapping the org cannot take, before anything is written
        describe = _describe(client)
    except RequestLimitExceeded:
        log.warning("Salesforce API request limit already reached: nothing sent, pending records wait for the "
                    "next run")
        writer = SalesforceWriter(client, external_id_field=settings.external_id_field)
        with Warehouse.of(warehouse).connect() as con:
            store = StateStore(con, writer.system, run_id, max_attempts)
            result = SyncResult(system=writer.system, run_id=run_id, dry_run=dry_run, limit_reached=True,
                                dead_letters_before=store.dead_letter_count())
            _finish(store, result, writer)
            return result
    validate_salesforce_targets(mapping, describe, settings.external_id_field)
    # erased people's contacts are deleted by the erasure writer; everything else goes through the Salesforce one
    writer = SalesforceErasureWriter(client, SalesforceWriter(
        client, external_id_field=settings.external_id_field, bulk_threshold=bulk_threshold,
        validation_policy=validation_policy, required_fields=required_fields(describe)))
    with Warehouse.of(warehouse).connect() as con:
        crm = crm_records(con, "salesforce", mapping, settings.external_id_field)
        return run_sync(con, writer, crm.records, run_id, dry_run=dry_run, max_attempts=max_attempts,
                        max_workers=max_workers, invalid=crm.invalid, actor=actor)


# -- B2C ---------------------------------------------------------------------------------------------------------

def identity_records(con: Connection, system: str, attribute_for: Callable[[str | None], str],
                     payload_name: Callable[[str], str] = str
                     ) -> tuple[list[SyncRecord], list[tuple[SyncRecord, str, str]]]:
    """Records that write (or clear) the CRM contact id on one identity system's users, from
    ``marts.external_ids_to_push``: ``attribute_for(client_id)`` names the attribute of the identity's client
    entry; a row naming another attribute is dead-lettered with the reason; ``payload_name`` spells the
    attribute on the wire."""
    records: list[SyncRecord] = []
    invalid: list[tuple[SyncRecord, str, str]] = []
    for row in external_id_rows(con, system):
        target_id, mart_attribute, value, client_id = row.target_id, row.attribute, row.value, row.client_id
        if not target_id:
            log.warning("external_ids_to_push row for %s without target_id ignored", system)
            continue
        name = attribute_for(client_id)
        if str(mart_attribute or "").lower() not in (CONTACT_ID_LOGICAL.lower(), str(name).lower()):
            name = None  # the mart names an attribute the mapping does not write
        record = SyncRecord(key=f"{target_id}:{name or mart_attribute}", operation=SET_ATTRIBUTE,
                            payload={payload_name(name) if name else str(mart_attribute): value},
                            target=str(target_id), rule=row.rule)
        if name is None:
            invalid.append((record, "UNMAPPED_ATTRIBUTE", f"attribute {mart_attribute} is not in the field mapping"))
        else:
            records.append(record)
    return records, invalid


def push_b2c(warehouse: Warehouse | str | Path, settings: GraphSettings, mapping: FieldMapping,
             run_id: str, dry_run: bool = False, *, client: GraphClient | None = None,
             max_attempts: int = DEFAULT_MAX_ATTEMPTS, max_workers: int = DEFAULT_MAX_WORKERS,
             actor: str = ACTOR_RUN) -> SyncResult:
    """Write CRM contact ids (or clear them) on B2C users from ``marts.external_ids_to_push``; the custom
    attribute is the identity's client entry's ``crmContactId`` (else ``B2C_CONTACT_ID_ATTRIBUTE``)."""
    for target in mapping.targets("b2c"):
        validate_b2c_mapping(target, settings.custom_attributes)
    falls_back = ANY_CLIENT not in mapping.clients or any("b2c" not in t for t in mapping.clients.values())
    if falls_back and settings.contact_id_attribute.lower() not in {a.lower() for a in settings.custom_attributes}:
        raise MappingError(f"B2C_CONTACT_ID_ATTRIBUTE {settings.contact_id_attribute} is not one of the configured "
                           f"custom attributes {list(settings.custom_attributes)}")

    def attribute_for(client_id: str | None) -> str:
        target = mapping.target("b2c", client_id)
        return (target.remote(CONTACT_ID_LOGICAL) if target else None) or settings.contact_id_attribute

    writer = B2CWriter(client or GraphClient(settings))
    with Warehouse.of(warehouse).connect() as con:
        records, invalid = identity_records(con, "b2c", attribute_for, settings.extension_attribute)
        return run_sync(con, writer, records, run_id, dry_run=dry_run, max_attempts=max_attempts,
                        max_workers=max_workers, invalid=invalid, actor=actor)
