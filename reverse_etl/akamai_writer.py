"""Writes the CRM contact id onto Akamai Identity Cloud users (rows of ``marts.external_ids_to_push`` with
``target_system = 'akamai'``), through the shared reverse-ETL framework (``reverse_etl.runner.run_sync``).

Identity Cloud has no batch update, so each record is one ``entity.update`` of one attribute (merge: nothing
else on the entity changes; idempotent, so a resend after a crash is harmless). Answers are judged per record:
written; ``record_not_found`` dead-lettered at once (the identity is gone); throttling, 5xx and refused
credentials stay pending for the next run; any other refusal is permanent.

The attribute written comes from the ``akamai`` target of the identity's client entry in the field mapping
(``{"type": "akamai", "mapping": {"crmContactId": "<attribute>"}}``) when there is one, else from
``AkamaiSettings.contact_id_attribute``; every attribute that may be written is checked before any write.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from clients.akamai import AkamaiClient
from clients.http import ApiError, RequestLimitExceeded
from reverse_etl.attribute_writer import AttributeWriter
from reverse_etl.mapping import CONTACT_ID_LOGICAL, FieldMapping, MappingError, TargetMapping
from reverse_etl.runner import DEFAULT_MAX_WORKERS, SyncResult, identity_records, run_sync
from reverse_etl.state import DEFAULT_MAX_ATTEMPTS, Outcome, SyncRecord
from settings import AkamaiSettings
from warehouse import Warehouse

log = logging.getLogger(__name__)

SYSTEM = "akamai"
DEFAULT_BATCH_SIZE = 10
# errors that say nothing about the record: it stays pending and is sent again next run
_TRANSIENT_CODES = frozenset({"invalid_client_credentials", "access_token_expired", "rate_limit_exceeded"})


def contact_id_attribute(settings: AkamaiSettings, target: TargetMapping | None) -> str:
    """The entity attribute that holds the CRM contact id."""
    if target is not None and target.remote(CONTACT_ID_LOGICAL):
        return str(target.remote(CONTACT_ID_LOGICAL))
    return settings.contact_id_attribute


class AkamaiWriter(AttributeWriter):
    system = SYSTEM
    target_label = "uuid"

    def __init__(self, client: AkamaiClient, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        super().__init__(batch_size)
        self.client = client

    def send(self, batch: list[SyncRecord]) -> list[Outcome]:
        return [self._write(record) for record in batch]

    def _write(self, record: SyncRecord) -> Outcome:
        self._count_call()
        try:
            self.client.update_entity(str(record.target), dict(record.payload))
        except RequestLimitExceeded:
            raise
        except ApiError as exc:
            code = exc.code or (f"HTTP_{exc.status}" if exc.status else "UNREACHABLE")
            if exc.code == "record_not_found":
                return Outcome.failure(record.key, code, "identity no longer exists", give_up=True)
            transient = exc.retryable or exc.code in _TRANSIENT_CODES or exc.status in (401, 403)
            return Outcome.failure(record.key, code, permanent=not transient)
        return Outcome.success(record.key, str(record.target))


def validate_attribute(client: AkamaiClient, attribute: str) -> None:
    """Fail before any write when the entity type has no such attribute (one read of at most one entity)."""
    try:
        client.call("entity.find", {"attributes": json.dumps([attribute]), "max_results": "1"})
    except ApiError as exc:
        if exc.code == "attribute_does_not_exist":
            raise MappingError(f"Akamai entity type {client.settings.entity_type!r} has no attribute "
                               f"{attribute!r} to hold the CRM contact id") from None
        raise


def push_akamai(warehouse: Warehouse | str | Path, settings: AkamaiSettings, mapping: FieldMapping,
                run_id: str, dry_run: bool = False, *, client: AkamaiClient | None = None,
                max_attempts: int = DEFAULT_MAX_ATTEMPTS, max_workers: int = DEFAULT_MAX_WORKERS) -> SyncResult:
    """Write (or clear) CRM contact ids on Akamai users from ``marts.external_ids_to_push``; the attribute is the
    identity's client entry's ``crmContactId`` (else the configured one)."""

    def attribute_for(client_id: str | None) -> str:
        return contact_id_attribute(settings, mapping.target(SYSTEM, client_id))

    attributes = {contact_id_attribute(settings, target) for target in mapping.targets(SYSTEM)}
    attributes.add(settings.contact_id_attribute)
    owned = client is None
    client = client or AkamaiClient(settings)
    try:
        for attribute in sorted(attributes):
            validate_attribute(client, attribute)
        with Warehouse.of(warehouse).connect() as con:
            records, invalid = identity_records(con, SYSTEM, attribute_for)
            return run_sync(con, AkamaiWriter(client), records, run_id, dry_run=dry_run,
                            max_attempts=max_attempts, max_workers=max_workers, invalid=invalid)
    finally:
        if owned:
            client.close()
