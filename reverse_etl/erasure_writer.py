"""The CRM side of an erasure: what the configured policy does to an erased person's contacts.

``privacy.crm_erasure_actions`` (written by the erasure step, keys only) lists each contact and its action:

* ``delete``: the contact is deleted (sObject Collections delete; a contact already gone counts as deleted);
* ``anonymise``: every mapped personal field is cleared, the required last name becomes ``erased``, the external
  id is cleared and every consent carried to the CRM is set to opted out;
* ``clear_external_id``: only the identity's id leaves the contact.

Each contact is one record (key ``<contact id>:erasure``) of its CRM's push (``crm_records``; Salesforce deletes
through ``SalesforceErasureWriter``, Dynamics through its own writer): audited in ``sync_log`` under the run,
retried when a call fails, and never sent again once the CRM accepted it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from clients.http import ApiError, RequestLimitExceeded
from clients.salesforce import SalesforceClient
from reverse_etl.mapping import CRM_LOGICAL_FIELDS, TargetMapping
from reverse_etl.salesforce_writer import (
    ANONYMISE_CONTACT,
    CLEAR_EXTERNAL_ID,
    COLLECTION_LIMIT,
    DELETE_CONTACT,
    GONE_ERRORS,
    SalesforceWriter,
    classify,
    error_code_and_message,
)
from reverse_etl.state import Outcome, SyncRecord
from warehouse import Connection

ANONYMOUS_LAST_NAME = "erased"  # Salesforce requires a last name; this one says why the contact has no other
_OPT_OUTS = {"marketingOptOut"}  # consent carried as an opt-out: an erased person is opted out of everything


def anonymised_fields(targets: Iterable[TargetMapping], external_id_field: str) -> dict[str, Any]:
    """What an anonymised contact is written: every field any client's entry maps of the person cleared (whose
    entry applied is not known once the person is erased), opt-outs set."""
    targets = list(targets)
    fields: dict[str, Any] = {}
    for target in targets:
        for logical, remote in target.fields.items():
            if logical in _OPT_OUTS:
                fields[remote] = True
            elif logical in CRM_LOGICAL_FIELDS:
                fields[remote] = None
    last_name = next((t.fields["familyName"] for t in targets if "familyName" in t.fields), "LastName")
    fields[last_name] = ANONYMOUS_LAST_NAME
    fields[external_id_field] = None
    return fields


def crm_erasure_records(con: Connection, crm: str, targets: Iterable[TargetMapping],
                        external_id_field: str) -> list[SyncRecord]:
    if not con.table_exists("privacy", "crm_erasure_actions"):
        return []
    rows = con.execute("select contact_id, action from privacy.crm_erasure_actions where crm = ? "
                       "order by contact_id", [crm])
    anonymised = anonymised_fields(targets, external_id_field)
    records = []
    for contact_id, action in rows:
        key, rule = f"{contact_id}:erasure", f"erasure:{action}"
        if action == "delete":
            records.append(SyncRecord(key=key, operation=DELETE_CONTACT, payload={"Id": contact_id},
                                      target=contact_id, rule=rule))
        elif action == "anonymise":
            records.append(SyncRecord(key=key, operation=ANONYMISE_CONTACT, payload=anonymised, target=contact_id,
                                      rule=rule))
        else:
            records.append(SyncRecord(key=key, operation=CLEAR_EXTERNAL_ID, payload={external_id_field: None},
                                      target=contact_id, rule=rule))
    return records


class SalesforceErasureWriter:
    """Deletes contacts itself (sObject Collections) and leaves updates to the Salesforce writer."""

    system = "salesforce"

    def __init__(self, client: SalesforceClient, updates: SalesforceWriter) -> None:
        self.client = client
        self.updates = updates
        self._calls = 0

    @property
    def api_calls(self) -> int:
        return self._calls + self.updates.api_calls

    def batches(self, records: Sequence[SyncRecord]) -> list[list[SyncRecord]]:
        deletes = [r for r in records if r.operation == DELETE_CONTACT]
        others = [r for r in records if r.operation != DELETE_CONTACT]
        return ([deletes[i:i + COLLECTION_LIMIT] for i in range(0, len(deletes), COLLECTION_LIMIT)]
                + self.updates.batches(others))

    def send(self, batch: list[SyncRecord]) -> list[Outcome]:
        if not batch or batch[0].operation != DELETE_CONTACT:
            return self.updates.send(batch)
        self._calls += 1
        ids = ",".join(r.target or "" for r in batch)
        try:
            response = self.client.request("DELETE", f"composite/sobjects?ids={ids}&allOrNone=false")
        except RequestLimitExceeded:
            raise
        except ApiError as exc:
            return [Outcome.failure(r.key, exc.code or f"HTTP_{exc.status}", "delete failed") for r in batch]
        if response.status_code >= 300:
            code, _ = error_code_and_message(response)
            return [Outcome.failure(r.key, code or f"HTTP_{response.status_code}", "delete refused") for r in batch]
        results = orjson.loads(response.content)
        if not isinstance(results, list) or len(results) != len(batch):
            return [Outcome.failure(r.key, "UNMATCHED_RESULTS", "delete answer does not match the request")
                    for r in batch]
        outcomes = []
        for record, result in zip(batch, results):
            code = ((result.get("errors") or [{}])[0]).get("statusCode")
            if result.get("success") or code in GONE_ERRORS:  # already deleted: what the erasure wants
                outcomes.append(Outcome.success(record.key, record.target))
            else:
                outcomes.append(classify(record.key, code, "delete refused"))
        return outcomes
