"""Reverse ETL: push mart rows back to the systems they came from.

Marts read (schema ``marts``): ``contacts_to_create`` (new CRM contacts, upserted by external id = identity id),
``contact_fields_to_push`` (what linked contacts' mapped fields should hold, for the ``updated`` event) and
``external_ids_to_push`` (the CRM contact id written onto identities, the identity id written onto contacts,
or cleared when a link is withdrawn or deleted). Each identity is written through the field-mapping entry of
the client it registered through (``client_id`` of each mart), which also says which events are sent.

Every system goes through one generic framework so that diffing, retries, audit and dead letters behave the same:

* ``reverse_etl.state`` -- bookkeeping in schema ``reverse_etl`` of the warehouse
  (``sync_state``, ``sync_log``, ``dead_letters``, ``pending``; keys and hashes only, never PII),
  ``SyncRecord`` (one record to write: ``key``, ``operation``, ``payload``; ``payload_hash`` derived),
  ``Outcome`` (what the remote system answered for one record) and ``StateStore`` (plan / intent / outcomes).
* ``reverse_etl.runner`` -- ``run_sync(con, writer, records, run_id, ...)`` drives any ``Writer``:

  1. plan: drop records whose payload hash equals the last accepted one for (system, key) (``skipped``) and
     records dead-lettered with the same hash; everything else (new, changed, still pending) is sent;
  2. intent: a ``pending`` row (hash, attempt number) is written *before* each request;
  3. send: the writer's batches go through a small thread pool; bookkeeping stays on the calling thread;
  4. outcome: success -> ``sync_state`` updated, ``pending`` row removed; transient failure -> stays pending
     for the next run; permanent failure -> dead-lettered once it failed ``max_attempts`` times (default 3),
     or at once when the writer says retrying cannot help (``Outcome.give_up``);
     each attempt of each record adds one ``sync_log`` row;
  5. ``RequestLimitExceeded`` from a writer stops the run cleanly: unsent records stay pending, the result
     says ``limit_reached``, the next run resumes;
  6. pending rows whose record is no longer in the marts (e.g. linked meanwhile) are dropped.

  Records that cannot be written at all (e.g. an attribute the mapping does not know) are passed as
  ``invalid=[(record, code, reason)]`` and dead-lettered without a request.

  ``push_salesforce(...)`` and ``push_b2c(...)`` read the marts, build the records and call ``run_sync``.

Adding a system (e.g. an Akamai writer): implement the ``Writer`` protocol from ``reverse_etl.state``::

    class Writer(Protocol):
        system: str                                   # value of the ``system`` column in the bookkeeping
        def batches(self, records: Sequence[SyncRecord]) -> list[list[SyncRecord]]: ...
            # split the records into the units sent by one call of ``send`` (one request / one job)
        def send(self, batch: list[SyncRecord]) -> list[Outcome]: ...
            # write one batch; return exactly one Outcome per record (any order); thread-safe;
            # raise clients.http.RequestLimitExceeded to end the run cleanly
        @property
        def api_calls(self) -> int: ...               # requests made so far (for metrics)

then build ``SyncRecord``s from the mart rows and call ``run_sync(con, writer, records, run_id,
dry_run=..., max_attempts=..., max_workers=...)``; it returns a ``SyncResult`` with attempted, succeeded,
failed, skipped, dead_lettered, api_calls and limit_reached. Writes must be idempotent (upsert by external id,
PATCH of an attribute) because a run killed between a request and its bookkeeping resends that record.

The mapping from identity-side names to CRM fields lives in ``config/field_mapping.json``
(see ``reverse_etl.mapping``). Command line: ``python -m reverse_etl push salesforce|b2c [--dry-run]``.

The names below are the stage's public interface for the other stages (the event gateway's fast lane writes a
few records itself and reports them in the same vocabulary): the field mapping, the operations and outcomes of
``sync_log``, and ``external_write`` to describe a write made outside a run.
"""

from reverse_etl.akamai_writer import contact_id_attribute
from reverse_etl.attribute_writer import SET_ATTRIBUTE
from reverse_etl.mapping import (
    CRM_LOGICAL_FIELDS,
    CheckedOnce,
    FieldMapping,
    MappingError,
    TargetMapping,
    contact_fields,
    load_field_mapping,
    load_mapping,
    mapping_for,
    validate_salesforce_targets,
)
from reverse_etl.salesforce_writer import CREATE_CONTACT, SET_EXTERNAL_ID
from reverse_etl.state import FAILED, SUCCEEDED, external_write

__all__ = [
    "CREATE_CONTACT",
    "CRM_LOGICAL_FIELDS",
    "FAILED",
    "SET_ATTRIBUTE",
    "SET_EXTERNAL_ID",
    "SUCCEEDED",
    "CheckedOnce",
    "FieldMapping",
    "MappingError",
    "TargetMapping",
    "contact_fields",
    "contact_id_attribute",
    "external_write",
    "load_field_mapping",
    "load_mapping",
    "mapping_for",
    "validate_salesforce_targets",
]
