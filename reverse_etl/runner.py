"""Runs one reverse-ETL push: marts -> records -> diff -> intent -> writes -> outcomes (no Dagster here).

``run_sync`` drives any ``Writer`` (see ``reverse_etl.state``); ``push_salesforce`` and ``push_b2c`` read the
marts, build that system's records through the field mapping, validate the mapping against the target and
call it.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import requests
import tenacity

from clients.graph import GraphClient
from clients.http import RequestLimitExceeded
from clients.salesforce import SalesforceClient
from reverse_etl.attribute_writer import SET_ATTRIBUTE
from reverse_etl.b2c_writer import B2CWriter
from reverse_etl.erasure_writer import SalesforceErasureWriter, crm_erasure_records
from reverse_etl.mapping import (
    CRM_LOGICAL_FIELDS,
    MappingError,
    TargetMapping,
    salesforce_contact_fields,
    validate_b2c_mapping,
    validate_salesforce_mapping,
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

log = logging.getLogger(__name__)

DEFAULT_MAX_WORKERS = 4
_INTENT_CHUNK = 4000  # records whose intent is written in one transaction
_FLUSH_EVERY = 2000  # outcomes buffered before they are written in one transaction
_FLUSH_INTERVAL_S = 5.0
_DRY_RUN_SAMPLE = 20


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


def run_sync(con: duckdb.DuckDBPyConnection, writer: Writer, records: Iterable[SyncRecord], run_id: str, *,
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


# -- Salesforce ------------------------------------------------------------------------------------------------

def salesforce_records(con: duckdb.DuckDBPyConnection, target: TargetMapping, external_id_field: str
                       ) -> tuple[list[SyncRecord], list[tuple[SyncRecord, str, str]]]:
    """Records for Salesforce from the marts, plus the rows that cannot be written (with a reason)."""
    return crm_records(con, "salesforce", target, external_id_field)


def crm_records(con: duckdb.DuckDBPyConnection, crm: str, target: TargetMapping, external_id_field: str
                ) -> tuple[list[SyncRecord], list[tuple[SyncRecord, str, str]]]:
    """Records for one CRM from the marts (contacts to create, ids to set or clear on its contacts), plus the
    rows that cannot be written (with a reason)."""
    records: list[SyncRecord] = []
    invalid: list[tuple[SyncRecord, str, str]] = []
    columns = {logical: CRM_LOGICAL_FIELDS[logical] for logical in target.fields}
    select = ", ".join(dict.fromkeys(["identity_provider", "identity_id", *columns.values()]))
    rows = con.execute(f"SELECT {select} FROM marts.contacts_to_create WHERE crm = ? "
                       "ORDER BY identity_provider, identity_id", [crm]).fetchall()
    names = list(dict.fromkeys(["identity_provider", "identity_id", *columns.values()]))
    for row in rows:
        values = dict(zip(names, row))
        if not values["identity_id"]:
            log.warning("contacts_to_create row without identity_id ignored (provider %s)", values["identity_provider"])
            continue
        payload = salesforce_contact_fields(target, values)
        records.append(SyncRecord(key=f"{values['identity_provider']}:{values['identity_id']}",
                                  operation=CREATE_CONTACT, payload=payload, rule=CREATE_RULE))

    resolve = _attribute_resolver(target, extra={external_id_field: external_id_field})
    for target_id, attribute, value, rule in external_id_rows(con, crm):
        field_name = resolve(attribute)
        key = f"{target_id}:{field_name or attribute}"
        operation = SET_EXTERNAL_ID if value is not None else CLEAR_EXTERNAL_ID
        record = SyncRecord(key=key, operation=operation, payload={field_name or str(attribute): value},
                            target=target_id, rule=rule)
        if not target_id:
            log.warning("external_ids_to_push row for %s without target_id ignored", crm)
        elif field_name is None:
            invalid.append((record, "UNMAPPED_ATTRIBUTE", f"attribute {attribute} is not in the field mapping"))
        else:
            records.append(record)
    records.extend(consent_field_records(con, crm, target))
    records.extend(crm_erasure_records(con, crm, target, external_id_field))
    return records, invalid


CREATE_RULE = "consented_without_contact"  # sync_log.rule of a contact created for an identity


def external_id_rows(con: duckdb.DuckDBPyConnection, target_system: str) -> list[tuple]:
    """(target_id, attribute, value, rule) of ``marts.external_ids_to_push`` for one system; the rule says why
    for the audit trail: the reason and the match rule of the link (``link:email``, ``withdrawn:carried_id``)."""
    links = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' "
                        "AND table_name = 'identity_contact_links'").fetchall()[0][0]
    match_rule = "l.match_rule" if links else "NULL"
    join = """LEFT JOIN marts.identity_contact_links AS l ON l.identity_provider = e.identity_provider
            AND l.identity_id = e.identity_id AND l.crm = e.crm""" if links else ""
    return con.execute(f"""
        SELECT e.target_id, e.attribute, e.value, e.reason || coalesce(':' || {match_rule}, '')
        FROM marts.external_ids_to_push AS e {join}
        WHERE e.target_system = ? ORDER BY e.target_id, e.attribute""", [target_system]).fetchall()


def consent_field_records(con: duckdb.DuckDBPyConnection, crm: str, target: TargetMapping) -> list[SyncRecord]:
    """Consent carried to linked contacts (``marts.consent_fields_to_push``), for the purposes this customer's
    mapping carries; a purpose it does not map is not sent."""
    present = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts' "
                          "AND table_name = 'consent_fields_to_push'").fetchone()[0]
    if not present:
        return []
    rows = con.execute("""SELECT contact_id, attribute, value, purpose FROM marts.consent_fields_to_push
                          WHERE crm = ? ORDER BY contact_id, attribute""", [crm]).fetchall()
    return [SyncRecord(key=f"{contact_id}:{target.fields[attribute]}", operation=SET_FIELD,
                       payload={target.fields[attribute]: value}, target=contact_id, rule=f"consent:{purpose}")
            for contact_id, attribute, value, purpose in rows if attribute in target.fields]


def _attribute_resolver(target: TargetMapping, extra: Mapping[str, str] | None = None):
    """Mart attributes may be logical names (crmContactId) or remote names (CrmContactId): accept both."""
    known = {k.lower(): v for k, v in target.fields.items()}
    known.update({v.lower(): v for v in target.fields.values()})
    known.update({k.lower(): v for k, v in (extra or {}).items()})
    return lambda attribute: known.get(str(attribute or "").lower())


@tenacity.retry(retry=tenacity.retry_if_exception_type(requests.RequestException), reraise=True,
                stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_random_exponential(multiplier=0.5, max=5))
def _describe(client: SalesforceClient) -> dict:
    # a read: safe to repeat when the connection dies mid-answer
    return client.describe("Contact")


def required_fields(describe: Mapping[str, Any]) -> list[str]:
    """Fields a new record must have: not nillable, createable and not filled in by the org itself."""
    return [f["name"] for f in describe.get("fields", [])
            if not f.get("nillable", True) and f.get("createable") and not f.get("defaultedOnCreate")]


def push_salesforce(warehouse_path: str | Path, settings: SalesforceSettings, mapping: Mapping[str, TargetMapping],
                    run_id: str, dry_run: bool = False, *, client: SalesforceClient | None = None,
                    max_attempts: int = DEFAULT_MAX_ATTEMPTS, max_workers: int = DEFAULT_MAX_WORKERS,
                    bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
                    validation_policy: ValidationPolicy = ValidationPolicy.DROP_FIELD,
                    actor: str = ACTOR_RUN) -> SyncResult:
    """Create missing contacts and set / clear external ids in Salesforce from the marts; a new contact the org
    refuses for a field value follows ``validation_policy``."""
    target = _target(mapping, "salesforce")
    client = client or SalesforceClient(settings)
    try:
        # fail fast on a mapping the org cannot take, before anything is written
        describe = _describe(client)
    except RequestLimitExceeded:
        log.warning("Salesforce API request limit already reached: nothing sent, pending records wait for the "
                    "next run")
        writer = SalesforceWriter(client, external_id_field=settings.external_id_field)
        with duckdb.connect(str(warehouse_path)) as con:
            store = StateStore(con, writer.system, run_id, max_attempts)
            result = SyncResult(system=writer.system, run_id=run_id, dry_run=dry_run, limit_reached=True,
                                dead_letters_before=store.dead_letter_count())
            _finish(store, result, writer)
            return result
    validate_salesforce_mapping(target, describe, settings.external_id_field)
    # erased people's contacts are deleted by the erasure writer; everything else goes through the Salesforce one
    writer = SalesforceErasureWriter(client, SalesforceWriter(
        client, external_id_field=settings.external_id_field, bulk_threshold=bulk_threshold,
        validation_policy=validation_policy, required_fields=required_fields(describe)))
    with duckdb.connect(str(warehouse_path)) as con:
        records, invalid = salesforce_records(con, target, settings.external_id_field)
        return run_sync(con, writer, records, run_id, dry_run=dry_run, max_attempts=max_attempts,
                        max_workers=max_workers, invalid=invalid, actor=actor)


# -- B2C ---------------------------------------------------------------------------------------------------------

def b2c_records(con: duckdb.DuckDBPyConnection, target: TargetMapping, settings: GraphSettings
                ) -> tuple[list[SyncRecord], list[tuple[SyncRecord, str, str]]]:
    records: list[SyncRecord] = []
    invalid: list[tuple[SyncRecord, str, str]] = []
    resolve = _attribute_resolver(target)
    for target_id, attribute, value, rule in external_id_rows(con, "b2c"):
        short_name = resolve(attribute)
        if not target_id:
            log.warning("external_ids_to_push row for b2c without target_id ignored")
            continue
        prop = settings.extension_attribute(short_name) if short_name else str(attribute)
        record = SyncRecord(key=f"{target_id}:{short_name or attribute}", operation=SET_ATTRIBUTE,
                            payload={prop: value}, target=target_id, rule=rule)
        if short_name is None:
            invalid.append((record, "UNMAPPED_ATTRIBUTE", f"attribute {attribute} is not in the field mapping"))
        else:
            records.append(record)
    return records, invalid


def push_b2c(warehouse_path: str | Path, settings: GraphSettings, mapping: Mapping[str, TargetMapping],
             run_id: str, dry_run: bool = False, *, client: GraphClient | None = None,
             max_attempts: int = DEFAULT_MAX_ATTEMPTS, max_workers: int = DEFAULT_MAX_WORKERS,
             actor: str = ACTOR_RUN) -> SyncResult:
    """Write CRM contact ids (or clear them) on B2C users from ``marts.external_ids_to_push``."""
    target = _target(mapping, "b2c")
    validate_b2c_mapping(target, settings.custom_attributes)
    writer = B2CWriter(client or GraphClient(settings))
    with duckdb.connect(str(warehouse_path)) as con:
        records, invalid = b2c_records(con, target, settings)
        return run_sync(con, writer, records, run_id, dry_run=dry_run, max_attempts=max_attempts,
                        max_workers=max_workers, invalid=invalid, actor=actor)


def _target(mapping: Mapping[str, TargetMapping], kind: str) -> TargetMapping:
    if kind not in mapping:
        raise MappingError(f"field mapping has no {kind!r} target for this customer / environment / client")
    return mapping[kind]
