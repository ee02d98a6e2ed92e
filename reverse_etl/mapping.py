"""Which remote field each identity-side value is written to, and which events are sent, per customer,
environment and client.

The mapping file (``IDLINK_FIELD_MAPPING``, default ``config/field_mapping.json``) is nested
customer > environment > client id; each client id holds a list of targets, one per system::

    {"<customer>": {"<environment>": {"<client id or *>": [
        {"type": "salesforce", "instance": "<label>",
         "events": ["created", "updated", "deleted"],
         "mapping": {"uuid": "External_User_Id__c", "email": "Email", "lastLogin": "Last_Login__c"}},
        {"type": "b2c", "mapping": {"crmContactId": "CrmContactId"}}
    ]}}}

The client is the application the identity registered through (``client_id`` of ``int_identities``: the B2C
sign-up connector's ``client_id`` claim, the Akamai capture client, a SCIM attribute). An identity whose client
has no entry of its own uses ``*``; one whose client has neither is sent nowhere (and counted as unmapped).

Logical names on the left are the identity-side names (``CRM_LOGICAL_FIELDS``, ``IDENTITY_LOGICAL_FIELDS``);
the right side is a Salesforce Contact field (checked against the org's describe before anything is written), a
Dataverse contact column (checked against the table's metadata), a B2C custom attribute's short name, an Akamai
entity attribute or a SCIM attribute path.

``events`` (CRM targets only) says what the entry sends: ``created`` (a contact is created for a consented
identity without one), ``updated`` (a linked identity's mapped attributes changed: the contact's fields follow,
each field sent once per value) and ``deleted`` (the identity was deleted: the contact's external id is cleared,
or a flag field set, or nothing). Without ``events`` an entry sends ``created`` and ``deleted`` (clear), which is
what idlink always did.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from clients.dataverse import EntityMetadata
from settings import FieldMappingSettings

ANY_CLIENT = "*"

# logical name -> column of the marts that carry identity attributes (contacts_to_create, contact_fields_to_push)
CRM_LOGICAL_FIELDS: Mapping[str, str] = MappingProxyType({
    "uuid": "identity_id",
    "email": "email",
    "givenName": "given_name",
    "familyName": "family_name",
    "phone": "phone_e164",
    "streetAddress": "street_address",
    "city": "city",
    "postalCode": "postal_code",
    "countryCode": "country_code",
    "created": "created_at",
    "emailVerified": "email_verified",
    "lastLogin": "last_login_at",
    "lastUpdated": "last_updated_at",
    # consent carried to the CRM (dbt var consent_purposes): true unless the identity consents to marketing
    "marketingOptOut": "marketing_opt_out",
})
# logical name -> what is written on an identity (the CRM contact id)
CONTACT_ID_LOGICAL = "crmContactId"
IDENTITY_LOGICAL_FIELDS: Mapping[str, str] = MappingProxyType({CONTACT_ID_LOGICAL: "contact_id"})
CRM_TYPES = ("salesforce", "dynamics")
IDENTITY_TYPES = ("b2c", "akamai", "scim")
_LOGICAL_FIELDS = {**{kind: CRM_LOGICAL_FIELDS for kind in CRM_TYPES},
                   **{kind: IDENTITY_LOGICAL_FIELDS for kind in IDENTITY_TYPES}}

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
EVENTS = (CREATED, UPDATED, DELETED)


class DeletedAction(StrEnum):
    """What a deleted identity does to its contact (the ``deleted`` event)."""

    CLEAR_EXTERNAL_ID = "clear_external_id"  # the contact stops carrying the identity's id
    FLAG = "flag"  # a boolean field of the contact is set to true; the id stays
    KEEP = "keep"  # nothing is sent: the contact keeps the id


class MappingError(ValueError):
    """The mapping file is missing, malformed, or names a field the target system does not have."""


@dataclass(frozen=True)
class Events:
    """The events a CRM target sends. ``updated`` lists the logical fields that follow the identity."""

    created: bool = True
    updated: tuple[str, ...] = ()
    deleted: DeletedAction = DeletedAction.CLEAR_EXTERNAL_ID
    deleted_flag: str | None = None  # the remote boolean field set by DeletedAction.FLAG


@dataclass(frozen=True)
class TargetMapping:
    type: str
    fields: Mapping[str, str]  # logical name -> remote field / attribute
    instance: str | None = None
    events: Events = Events()
    where: str = ""  # "<customer> > <environment> > <client>" of the entry, for messages

    def remote(self, logical: str) -> str | None:
        return self.fields.get(logical)

    def updated_fields(self) -> dict[str, str]:
        """Logical -> remote field of what the ``updated`` event sends."""
        return {logical: self.fields[logical] for logical in self.events.updated}

    def error(self, message: str) -> MappingError:
        return MappingError(f"field mapping {self.where}: {message}" if self.where else f"field mapping: {message}")


@dataclass(frozen=True)
class FieldMapping:
    """The entries of one customer and environment, keyed by client id (``*`` = every other client)."""

    # no entries: nothing is sent anywhere
    clients: Mapping[str, Mapping[str, TargetMapping]] = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""

    @classmethod
    def for_every_client(cls, targets: Mapping[str, TargetMapping]) -> FieldMapping:
        """One entry used for every client (what a deployment with a single mapping has)."""
        return cls(MappingProxyType({ANY_CLIENT: MappingProxyType(dict(targets))}))

    def entry_for(self, client_id: str | None) -> str | None:
        """The client id whose entry applies: the client's own, else ``*``, else None (no entry)."""
        if client_id and client_id in self.clients:
            return client_id
        return ANY_CLIENT if ANY_CLIENT in self.clients else None

    def for_client(self, client_id: str | None) -> Mapping[str, TargetMapping]:
        """The targets, keyed by system type, of the entry that applies to ``client_id`` (none: empty)."""
        entry = self.entry_for(client_id)
        return self.clients[entry] if entry is not None else MappingProxyType({})

    def target(self, kind: str, client_id: str | None) -> TargetMapping | None:
        return self.for_client(client_id).get(kind)

    def targets(self, kind: str) -> list[TargetMapping]:
        """Every entry's target of one system (what is validated before writing to it)."""
        return [targets[kind] for targets in self.clients.values() if kind in targets]


def contact_fields(target: TargetMapping, values: Mapping[str, Any], logical_names=None) -> dict[str, Any]:
    """A contact's fields through the mapping: each mapped logical field's value (of ``logical_names``, default
    all), read from ``values`` by its marts column name (identity_id, email, given_name, ...). Every writer that
    creates or updates a contact (the batch push, the fast lane, the sign-up connector) builds it here."""
    names = target.fields if logical_names is None else logical_names
    return {target.fields[logical]: wire_value(values.get(CRM_LOGICAL_FIELDS[logical])) for logical in names
            if logical in CRM_LOGICAL_FIELDS and logical in target.fields}



def wire_value(value: Any) -> Any:
    """A value as the CRMs' JSON takes it: a timestamp as ISO 8601 in UTC (``2024-01-02T03:04:05Z``)."""
    if isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
        return text.replace("+00:00", "Z") if value.tzinfo else text + "Z"
    return value


def mapping_for(settings: FieldMappingSettings) -> FieldMapping:
    """The configured file's entries for the configured customer and environment."""
    return load_field_mapping(settings.path, settings.customer, settings.environment)


def load_mapping(path: str | os.PathLike, customer: str, environment: str,
                 client_id: str | None) -> Mapping[str, TargetMapping]:
    """The targets configured for (customer, environment, client id), keyed by system type."""
    return load_field_mapping(path, customer, environment).for_client(client_id)


def load_field_mapping(path: str | os.PathLike, customer: str, environment: str) -> FieldMapping:
    """Every client's entry of (customer, environment), each checked; errors name the entry's path."""
    path = Path(path)
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise MappingError(f"field mapping file {path} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise MappingError(f"field mapping file {path} is not valid JSON: {exc}") from None
    where = f"field mapping {path}"
    customers = _object(document, where)
    if customer not in customers:
        raise MappingError(f"{where} has no customer {customer!r} (known: {sorted(customers)})")
    environments = _object(customers[customer], f"{where} > {customer}")
    if environment not in environments:
        raise MappingError(f"{where} > {customer} has no environment {environment!r} (known: {sorted(environments)})")
    clients = _object(environments[environment], f"{where} > {customer} > {environment}")
    entries = {client: _entry(entries, f"{customer} > {environment} > {client}", f"{where} > {customer} > "
                              f"{environment} > {client}")
               for client, entries in clients.items()}
    return FieldMapping(MappingProxyType(entries), f"{customer} > {environment}")


def _entry(entries: Any, label: str, where: str) -> Mapping[str, TargetMapping]:
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise MappingError(f"{where} must be a list of targets")
    targets: dict[str, TargetMapping] = {}
    for position, entry in enumerate(entries):
        target = _target(entry, label, f"{where}[{position}]")
        if target.type in targets:
            raise MappingError(f"{where} configures {target.type!r} twice")
        targets[target.type] = target
    return MappingProxyType(targets)


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise MappingError(f"{where} must be a JSON object")
    return value


def _target(entry: Any, label: str, where: str) -> TargetMapping:
    entry = _object(entry, where)
    kind = entry.get("type")
    if not isinstance(kind, str):
        raise MappingError(f"{where} needs a string 'type'")
    fields = _object(entry.get("mapping"), f"{where}.mapping")
    known = _LOGICAL_FIELDS.get(kind)
    for logical, remote in fields.items():
        if not isinstance(remote, str) or not remote.strip():
            raise MappingError(f"{where}.mapping.{logical} must name a field")
        if known is not None and logical not in known:
            raise MappingError(f"{where}.mapping names unknown logical field {logical!r} (known: {sorted(known)})")
    if kind in CRM_TYPES and "uuid" not in fields:
        raise MappingError(f"{where}.mapping must map 'uuid' to the contact's external-id field")
    if "events" in entry and kind not in CRM_TYPES:
        raise MappingError(f"{where}.events: events are sent to a CRM; a {kind!r} target only receives the contact id")
    events = _events(entry.get("events"), fields, f"{where}.events") if kind in CRM_TYPES else Events(created=False)
    instance = entry.get("instance")
    return TargetMapping(type=kind, fields=MappingProxyType(dict(fields)),
                         instance=str(instance) if instance is not None else None, events=events, where=label)


def _events(spec: Any, fields: Mapping[str, str], where: str) -> Events:
    """``events`` as a list of names (each one on with its default) or an object per event; absent: created and
    deleted (clear the id), the behaviour before events were configurable."""
    if spec is None:
        return Events()
    updatable = tuple(logical for logical in fields if logical != "uuid")
    if isinstance(spec, list):
        unknown = [name for name in spec if name not in EVENTS]
        if unknown:
            raise MappingError(f"{where} names unknown event(s) {unknown} (known: {list(EVENTS)})")
        return Events(created=CREATED in spec, updated=updatable if UPDATED in spec else (),
                      deleted=DeletedAction.CLEAR_EXTERNAL_ID if DELETED in spec else DeletedAction.KEEP)
    spec = _object(spec, where)
    unknown = sorted(set(spec) - set(EVENTS))
    if unknown:
        raise MappingError(f"{where} names unknown event(s) {unknown} (known: {list(EVENTS)})")
    created = spec.get(CREATED, False)
    if not isinstance(created, bool):
        raise MappingError(f"{where}.created must be true or false")
    updated = spec.get(UPDATED, False)
    if isinstance(updated, bool):
        updated = updatable if updated else ()
    elif isinstance(updated, list):
        unmapped = [name for name in updated if name not in updatable]
        if unmapped:
            raise MappingError(f"{where}.updated names {unmapped}, which the entry does not map (or 'uuid', which "
                               "never changes)")
        updated = tuple(dict.fromkeys(updated))
    else:
        raise MappingError(f"{where}.updated must be true, false or a list of mapped logical fields")
    deleted, flag = _deleted(spec.get(DELETED, False), f"{where}.deleted")
    return Events(created=created, updated=updated, deleted=deleted, deleted_flag=flag)


def _deleted(spec: Any, where: str) -> tuple[DeletedAction, str | None]:
    if spec is True:
        return DeletedAction.CLEAR_EXTERNAL_ID, None
    if spec is False:
        return DeletedAction.KEEP, None
    if isinstance(spec, dict) and set(spec) == {"flag"} and isinstance(spec["flag"], str) and spec["flag"].strip():
        return DeletedAction.FLAG, spec["flag"]
    if spec in (DeletedAction.CLEAR_EXTERNAL_ID, DeletedAction.KEEP):
        return DeletedAction(spec), None
    raise MappingError(f"{where} must be true, false, \"clear_external_id\", \"keep\" or {{\"flag\": \"<boolean "
                       "field>\"}}")


# -- checks against the target system's own schema, before any write ----------------------------------------

def validate_salesforce_mapping(target: TargetMapping, describe: Mapping[str, Any], external_id_field: str) -> None:
    """Fail before any write when a mapped Contact field does not exist or cannot be written."""
    fields = {f["name"]: f for f in describe.get("fields", [])}
    by_lower = {name.lower(): f for name, f in fields.items()}
    object_name = describe.get("name", "Contact")
    for logical, remote in sorted(target.fields.items()):
        info = by_lower.get(remote.lower())
        if info is None:
            raise target.error(f"{logical!r} maps to {object_name}.{remote}, which does not exist in this "
                               "Salesforce org")
        if info.get("createable") is False or info.get("updateable") is False:
            raise target.error(f"{object_name}.{remote} (for {logical!r}) is read-only")
    uuid_field = target.fields["uuid"]
    if uuid_field.lower() != external_id_field.lower():
        raise target.error(f"'uuid' maps to {uuid_field}, but the configured external-id field is "
                           f"{external_id_field}")
    ext = by_lower[uuid_field.lower()]
    if ext.get("externalId") is False and ext.get("idLookup") is False:
        raise target.error(f"{object_name}.{uuid_field} is not an external-id field")
    flag = target.events.deleted_flag
    if flag is not None:
        info = by_lower.get(flag.lower())
        if info is None or info.get("updateable") is False:
            raise target.error(f"the deleted event's flag {object_name}.{flag} does not exist or cannot be written")
        if info.get("type") not in (None, "boolean"):
            raise target.error(f"the deleted event's flag {object_name}.{flag} is a {info.get('type')} field, "
                               "not a checkbox")


def validate_salesforce_targets(mapping: FieldMapping, describe: Mapping[str, Any], external_id_field: str) -> None:
    """Every client entry's Salesforce target checked against the org's describe (the batch push, the fast lane
    and the sign-up connector all check here before their first write)."""
    for target in mapping.targets("salesforce"):
        validate_salesforce_mapping(target, describe, external_id_field)


class CheckedOnce:
    """Runs a schema check before the first write of a long-lived writer (the fast lane, the sign-up connector),
    once it has passed; a check that fails raises again at the next write, so a fixed schema is picked up."""

    def __init__(self, check: Callable[[], None]) -> None:
        self._check = check
        self._passed = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if self._passed:
            return
        with self._lock:
            if not self._passed:
                self._check()
                self._passed = True


def validate_dynamics_mapping(target: TargetMapping, metadata: EntityMetadata, external_id_field: str) -> None:
    """Fail before any write when a mapped contact column does not exist or cannot be written, or when 'uuid'
    does not map to a column that an active alternate key consists of (upserts address contacts by it)."""
    columns = {name.lower(): attribute for name, attribute in metadata.attributes.items()}
    for logical, remote in sorted(target.fields.items()):
        attribute = columns.get(remote.lower())
        if attribute is None:
            raise target.error(f"{logical!r} maps to contact.{remote}, which does not exist in this Dataverse "
                               "environment")
        if not (attribute.valid_for_create and attribute.valid_for_update):
            raise target.error(f"contact.{remote} (for {logical!r}) cannot be written "
                               f"(IsValidForCreate {attribute.valid_for_create}, "
                               f"IsValidForUpdate {attribute.valid_for_update})")
    uuid_column = target.fields["uuid"]
    if uuid_column.lower() != external_id_field.lower():
        raise target.error(f"'uuid' maps to {uuid_column}, but the configured external-id column is "
                           f"{external_id_field} (DATAVERSE_EXTERNAL_ID_FIELD)")
    if metadata.alternate_key_on(uuid_column) is None:
        raise target.error(f"the contact table has no active alternate key made of {uuid_column} alone, so "
                           "contacts cannot be upserted by the identity id")
    flag = target.events.deleted_flag
    if flag is not None:
        attribute = columns.get(flag.lower())
        if attribute is None or not attribute.valid_for_update:
            raise target.error(f"the deleted event's flag contact.{flag} does not exist or cannot be written")
        if attribute.attribute_type not in ("", "Boolean"):
            raise target.error(f"the deleted event's flag contact.{flag} is a {attribute.attribute_type} "
                               "column, not a Boolean")


def validate_b2c_mapping(target: TargetMapping, custom_attributes: tuple[str, ...]) -> None:
    """Fail before any write when a mapped attribute is not one of the tenant's configured custom attributes."""
    known = {a.lower() for a in custom_attributes}
    for logical, remote in sorted(target.fields.items()):
        if remote.lower() not in known:
            raise target.error(f"{logical!r} maps to B2C custom attribute {remote}, which is not one of the "
                               f"configured custom attributes {list(custom_attributes)}")

