"""Which remote field each identity-side value is written to, per customer, environment and client.

The mapping file (``IDLINK_FIELD_MAPPING``, default ``config/field_mapping.json``) is nested
customer > environment > client id; each client id holds a list of targets, one per system::

    {"<customer>": {"<environment>": {"<client id or *>": [
        {"type": "salesforce", "instance": "<label>", "mapping": {"uuid": "External_User_Id__c", "email": "Email"}},
        {"type": "b2c", "mapping": {"crmContactId": "CrmContactId"}}
    ]}}}

``*`` is used when the client id has no entry of its own. Logical names on the left are the identity-side
names (``CRM_LOGICAL_FIELDS``); the right side is a Salesforce Contact field (validated against the org's
describe before anything is written), a Dataverse contact column (``{"type": "dynamics", …}``, validated against
the table's metadata) or a B2C custom attribute's short name (validated against the configured ones).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from clients.dataverse import EntityMetadata
from settings import FieldMappingSettings

ANY_CLIENT = "*"

# logical name -> column of marts.contacts_to_create (the same for every CRM)
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
    # consent carried to the CRM (dbt var consent_purposes): true unless the identity consents to marketing
    "marketingOptOut": "marketing_opt_out",
})
# logical name -> what is written (the CRM contact id)
B2C_LOGICAL_FIELDS: Mapping[str, str] = MappingProxyType({"crmContactId": "contact_id"})
SALESFORCE_LOGICAL_FIELDS = CRM_LOGICAL_FIELDS
CRM_TYPES = ("salesforce", "dynamics")
_LOGICAL_FIELDS = {"salesforce": CRM_LOGICAL_FIELDS, "dynamics": CRM_LOGICAL_FIELDS, "b2c": B2C_LOGICAL_FIELDS}


class MappingError(ValueError):
    """The mapping file is missing, malformed, or names a field the target system does not have."""


@dataclass(frozen=True)
class TargetMapping:
    type: str
    fields: Mapping[str, str]  # logical name -> remote field / attribute
    instance: str | None = None

    def remote(self, logical: str) -> str | None:
        return self.fields.get(logical)


def salesforce_contact_fields(target: TargetMapping, values: Mapping[str, Any]) -> dict[str, Any]:
    """A new contact's fields through the mapping: each mapped logical field's value, read from ``values`` by
    its marts column name (identity_id, email, given_name, family_name, ...). Every writer that creates a
    contact (the batch push, the fast lane, the sign-up connector) builds it here."""
    return {remote: values.get(SALESFORCE_LOGICAL_FIELDS[logical]) for logical, remote in target.fields.items()
            if logical in SALESFORCE_LOGICAL_FIELDS}


def mapping_for(settings: FieldMappingSettings, client_id: str) -> Mapping[str, TargetMapping]:
    """The targets of the configured file, customer and environment for ``client_id``."""
    return load_mapping(settings.path, settings.customer, settings.environment, client_id)


def load_mapping(path: str | os.PathLike, customer: str, environment: str,
                 client_id: str) -> Mapping[str, TargetMapping]:
    """The targets configured for (customer, environment, client id), keyed by system type."""
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
    key = client_id if client_id in clients else ANY_CLIENT
    if key not in clients:
        raise MappingError(f"{where} > {customer} > {environment} has neither client {client_id!r} nor {ANY_CLIENT!r}")
    entries = clients[key]
    where = f"{where} > {customer} > {environment} > {key}"
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise MappingError(f"{where} must be a list of targets")
    targets: dict[str, TargetMapping] = {}
    for position, entry in enumerate(entries):
        target = _target(entry, f"{where}[{position}]")
        if target.type in targets:
            raise MappingError(f"{where} configures {target.type!r} twice")
        targets[target.type] = target
    return MappingProxyType(targets)


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise MappingError(f"{where} must be a JSON object")
    return value


def _target(entry: Any, where: str) -> TargetMapping:
    entry = _object(entry, where)
    kind = entry.get("type")
    if kind not in _LOGICAL_FIELDS and not isinstance(kind, str):
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
    instance = entry.get("instance")
    return TargetMapping(type=kind, fields=MappingProxyType(dict(fields)),
                         instance=str(instance) if instance is not None else None)


def validate_salesforce_mapping(target: TargetMapping, describe: Mapping[str, Any], external_id_field: str) -> None:
    """Fail before any write when a mapped Contact field does not exist or cannot be written."""
    fields = {f["name"]: f for f in describe.get("fields", [])}
    by_lower = {name.lower(): f for name, f in fields.items()}
    object_name = describe.get("name", "Contact")
    for logical, remote in sorted(target.fields.items()):
        info = by_lower.get(remote.lower())
        if info is None:
            raise MappingError(f"field mapping: {logical!r} maps to {object_name}.{remote}, which does not exist "
                               f"in this Salesforce org")
        if info.get("createable") is False or info.get("updateable") is False:
            raise MappingError(f"field mapping: {object_name}.{remote} (for {logical!r}) is read-only")
    uuid_field = target.fields["uuid"]
    if uuid_field.lower() != external_id_field.lower():
        raise MappingError(f"field mapping: 'uuid' maps to {uuid_field}, but the configured external-id field is "
                           f"{external_id_field}")
    ext = by_lower[uuid_field.lower()]
    if ext.get("externalId") is False and ext.get("idLookup") is False:
        raise MappingError(f"field mapping: {object_name}.{uuid_field} is not an external-id field")


def validate_dynamics_mapping(target: TargetMapping, metadata: EntityMetadata, external_id_field: str) -> None:
    """Fail before any write when a mapped contact column does not exist or cannot be written, or when 'uuid'
    does not map to a column that an active alternate key consists of (upserts address contacts by it)."""
    columns = {name.lower(): attribute for name, attribute in metadata.attributes.items()}
    for logical, remote in sorted(target.fields.items()):
        attribute = columns.get(remote.lower())
        if attribute is None:
            raise MappingError(f"field mapping: {logical!r} maps to contact.{remote}, which does not exist in this "
                               "Dataverse environment")
        if not (attribute.valid_for_create and attribute.valid_for_update):
            raise MappingError(f"field mapping: contact.{remote} (for {logical!r}) cannot be written "
                               f"(IsValidForCreate {attribute.valid_for_create}, "
                               f"IsValidForUpdate {attribute.valid_for_update})")
    uuid_column = target.fields["uuid"]
    if uuid_column.lower() != external_id_field.lower():
        raise MappingError(f"field mapping: 'uuid' maps to {uuid_column}, but the configured external-id column is "
                           f"{external_id_field} (DATAVERSE_EXTERNAL_ID_FIELD)")
    if metadata.alternate_key_on(uuid_column) is None:
        raise MappingError(f"field mapping: the contact table has no active alternate key made of {uuid_column} "
                           "alone, so contacts cannot be upserted by the identity id")


def validate_b2c_mapping(target: TargetMapping, custom_attributes: tuple[str, ...]) -> None:
    """Fail before any write when a mapped attribute is not one of the tenant's configured custom attributes."""
    known = {a.lower() for a in custom_attributes}
    for logical, remote in sorted(target.fields.items()):
        if remote.lower() not in known:
            raise MappingError(f"field mapping: {logical!r} maps to B2C custom attribute {remote}, which is not one "
                               f"of the configured custom attributes {list(custom_attributes)}")
