"""Finding or creating the CRM contact of a consenting sign-up, for the B2C API connector and the fast lane.

Lookups go to the golden link table first (when enabled), then to the contact already carrying the identity's
id, then to the CRM by email — accepted only when the dbt email rule would accept it (see
``choose_by_email``). A new contact is never created by a plain POST: it is upserted by the external-ID field,
keyed by the identity's id or, for a sign-up B2C calls before the user exists (no objectId), by a provisional
key derived from the normalised email (``signup_key``). A retried request, B2C's own retries and concurrent
identical sign-ups all upsert the same key, so they find the first contact instead of creating another; the
batch linking later links the identity to that contact by email and replaces the provisional key with the
identity's id. Contact fields come from the field mapping, and each write is audited like every other writer's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from clients.http import ApiError, error_code_and_message, path_segment
from clients.salesforce import SalesforceClient
from gateway.name_rules import first_names_differ
from reverse_etl import (
    CREATE_CONTACT,
    FAILED,
    SUCCEEDED,
    CheckedOnce,
    FieldMapping,
    TargetMapping,
    contact_fields,
    external_write,
    validate_salesforce_targets,
)
from settings import SalesforceSettings
from warehouse import ERRORS as WAREHOUSE_ERRORS
from warehouse import Warehouse

PROVIDER = "b2c"
CRM = "salesforce"
# the audit trail says who wrote and why: the sign-up connector, for a consenting sign-up
ACTOR = "connector"
RULE = "signup_with_consent"
SIGNUP_KEY_PREFIX = "signup-"
# a concurrent upsert of the same key lost the race: the contact exists, read it back
_KEY_TAKEN = frozenset({"DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignUpIdentity:
    email: str  # normalised
    given_name: str | None
    surname: str | None
    object_id: str | None
    client_id: str | None = None  # the application signed up through: which field-mapping entry applies


class ContactDirectory(Protocol):
    def find_or_create(self, identity: SignUpIdentity) -> str | None:
        """The CRM contact id for this identity, creating the contact if needed; None if it cannot be made."""


def soql_string(value: str) -> str:
    """A SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def contacts_where(client: SalesforceClient, condition: str, limit: int = 3) -> list[dict]:
    """Contacts (Id, Email, names, the external-ID field) matching a SOQL condition, oldest first."""
    field_name = client.settings.external_id_field
    soql = (f"SELECT Id, Email, FirstName, LastName, {field_name} FROM Contact WHERE {condition} "
            f"ORDER BY CreatedDate LIMIT {limit}")
    return [record for page in client.query_pages(soql) for record in page]


def candidate_contacts(client: SalesforceClient, identity_id: str | None, email: str
                       ) -> tuple[list[dict], list[dict]]:
    """(contacts carrying the identity's id, contacts with its email), from one query: each CRM round trip
    counts inside a sign-up's budget. Email comparison is case-insensitive, as Salesforce's."""
    field_name = client.settings.external_id_field
    condition = f"Email = {soql_string(email)}"
    if identity_id:
        condition = f"{field_name} = {soql_string(identity_id)} OR {condition}"
    found = contacts_where(client, condition, limit=6)
    held = [c for c in found if identity_id and c.get(field_name) == identity_id]
    same_email = [c for c in found if (c.get("Email") or "").lower() == email.lower()]
    return held, same_email


def deleted_contact_holding(client: SalesforceClient, identity_id: str) -> dict | None:
    """A contact the CRM deleted or merged away (queryAll, IsDeleted) that carries the identity's id, if any: an
    upsert by that id would create the contact again, which only the batch path may decide (its policy
    recreate_deleted_contacts; a merge is followed to the survivor)."""
    field_name = client.settings.external_id_field
    soql = (f"SELECT Id, MasterRecordId FROM Contact WHERE {field_name} = {soql_string(identity_id)} "
            "AND IsDeleted = true LIMIT 1")
    return next((record for page in client.query_pages(soql, include_deleted=True) for record in page), None)


def upsert_by_external_id(client: SalesforceClient, identity_id: str, fields: dict) -> str | None:
    """Create or update the contact keyed by the identity's id; its Id (looked up when the answer has none)."""
    field_name = client.settings.external_id_field
    response = client.request("PATCH", f"sobjects/Contact/{path_segment(field_name)}/{path_segment(identity_id)}",
                              data=orjson.dumps(fields), headers={"Content-Type": "application/json"})
    if response.status_code in (200, 201) and response.content:
        created = orjson.loads(response.content).get("id")
        if created:
            return created
    if response.status_code in (200, 201, 204):
        held = contacts_where(client, f"{field_name} = {soql_string(identity_id)}")
        return held[0]["Id"] if held else None
    raise refused("Contact upsert", response)


def refused(what: str, response) -> ApiError:
    """The CRM's refusal as an ApiError carrying its code (e.g. ENTITY_IS_DELETED), never its message."""
    code, _ = error_code_and_message(response)
    return ApiError(f"{what} refused with HTTP {response.status_code} ({code or 'no code'})",
                    status=response.status_code, code=code or f"HTTP_{response.status_code}")


def choose_by_email(same_email: list[dict], identity_id: str | None, given_name: str | None,
                    external_id_field: str) -> tuple[dict | None, str]:
    """The contact a fast path may link by email, or None with the reason the batch linking must decide:
    the only contact with that address (several are CRM duplicates), held by no other identity, whose first
    name does not clearly differ from the identity's (a shared family mailbox goes to review)."""
    if not same_email:
        return None, "no_contact_with_email"
    if len(same_email) > 1:
        return None, "several_contacts_with_email"
    contact = same_email[0]
    if contact.get(external_id_field) not in (None, "", identity_id):
        return None, "contact_holds_another_identity"
    if first_names_differ(given_name, contact.get("FirstName")):
        return None, "first_names_differ"
    return contact, ""


class LinkTableLookup:
    """Read-only lookup in ``marts.identity_contact_links``.

    Off by default: DuckDB lets no process open the file for writing while another holds it, even read-only,
    so a sign-up arriving mid-run could make a pipeline step fail. Enable with CONNECTOR_WAREHOUSE_LOOKUP=1
    on a Postgres warehouse (readers and runs never block each other there), or where runs retry their
    warehouse connections.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def contact_id(self, object_id: str) -> str | None:
        if not self.warehouse.exists():
            return None
        try:
            with self.warehouse.connect(read_only=True) as conn:
                row = conn.fetchone(
                    "SELECT contact_id FROM marts.identity_contact_links WHERE identity_provider = 'b2c'"
                    " AND identity_id = ? AND crm = 'salesforce' AND status = 'active' LIMIT 1",
                    [object_id],
                )
        except WAREHOUSE_ERRORS as exc:  # locked by a run, or not built yet: fall through to the CRM
            log.info("link table lookup skipped: %s", type(exc).__name__)
            return None
        return row[0] if row else None


def signup_key(email: str, secret: bytes) -> str:
    """The provisional external id of a sign-up without objectId: the same for every request of one normalised
    address, keyed by a secret so it reveals nothing about the address to whoever reads it."""
    digest = hmac.new(secret, email.strip().lower().encode(), hashlib.sha256).hexdigest()
    return SIGNUP_KEY_PREFIX + digest[:32]


Audit = Callable[[Iterable[dict[str, Any]]], Any]


class SalesforceContactDirectory:
    def __init__(self, client: SalesforceClient, mapping: FieldMapping, key_secret: bytes,
                 links: LinkTableLookup | None = None, audit: Audit | None = None) -> None:
        self.client = client
        self.mapping = mapping
        # every client's mapping is checked against the org's describe before the first write
        self.mapping_check = CheckedOnce(lambda: validate_salesforce_targets(
            mapping, client.describe("Contact"), client.settings.external_id_field))
        self.key_secret = key_secret
        self.links = links
        self.audit = audit
        self.external_id_field = client.settings.external_id_field

    @classmethod
    def within_budget(cls, settings: SalesforceSettings, budget_s: float, mapping: FieldMapping, key_secret: bytes,
                      links: LinkTableLookup | None = None, audit: Audit | None = None) -> SalesforceContactDirectory:
        # Retries must end inside the sign-up budget, or stuck calls would pile up behind it.
        settings = dataclasses.replace(settings, timeout_s=budget_s, retry_max_s=budget_s)
        return cls(SalesforceClient(settings), mapping, key_secret, links, audit)

    def find_or_create(self, identity: SignUpIdentity) -> str | None:
        if identity.object_id and self.links is not None:
            linked = self.links.contact_id(identity.object_id)
            if linked:
                return linked
        key = identity.object_id or signup_key(identity.email, self.key_secret)
        held, same_email = candidate_contacts(self.client, key, identity.email)
        if held:
            return held[0]["Id"]
        if same_email:
            contact, reason = choose_by_email(same_email, key, identity.given_name, self.external_id_field)
            if contact is None:
                log.info("connector: no contact claimed (%s); the batch linking decides", reason)
            return contact["Id"] if contact else None
        target = self.mapping.target(CRM, identity.client_id)
        if target is None or not target.events.created:
            return None  # the client's entry sends no new contacts to this CRM
        if not identity.surname:
            return None  # Salesforce requires LastName; the batch sync creates it with the mapped fallback
        if identity.object_id and deleted_contact_holding(self.client, identity.object_id):
            log.info("connector: the CRM deleted this identity's contact; the batch linking decides")
            return None
        self.mapping_check.ensure()
        return self._upsert(key, identity, target)

    def _upsert(self, key: str, identity: SignUpIdentity, target: TargetMapping) -> str | None:
        fields = contact_fields(target, {
            "identity_id": key, "email": identity.email, "given_name": identity.given_name,
            "family_name": identity.surname})
        body = {name: value for name, value in fields.items()
                if value not in (None, "") and name != self.external_id_field}
        record_key = f"{PROVIDER}:{key}"
        try:
            contact_id = upsert_by_external_id(self.client, key, body)
        except ApiError as exc:
            self._record(record_key, fields, FAILED, exc.code or f"HTTP_{exc.status}")
            if exc.code not in _KEY_TAKEN:
                raise
            held = contacts_where(self.client, f"{self.external_id_field} = {soql_string(key)}")
            return held[0]["Id"] if held else None
        self._record(record_key, fields, SUCCEEDED, remote_id=contact_id)
        return contact_id

    def _record(self, record_key: str, fields: dict, outcome: str, error_code: str | None = None,
                remote_id: str | None = None) -> None:
        if self.audit is not None:
            self.audit([external_write(CRM, CREATE_CONTACT, record_key, fields, outcome, error_code, remote_id,
                                       actor=ACTOR, rule=RULE)])
