"""The ``contact`` table of the simulated Dataverse environment: its columns, alternate key and the checks a
write goes through (unknown column, read-only column, text too long), answered with Dataverse's error codes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENTITY = "contact"
ENTITY_SET = "contacts"
PRIMARY_ID = "contactid"
EXTERNAL_ID_FIELD = "idlink_identityid"
ALTERNATE_KEY = "idlink_identityid_key"

# Dataverse error codes (hex, as the Web API returns them)
UNKNOWN_PROPERTY = "0x80060888"
VALIDATION_ERROR = "0x80044331"
DOES_NOT_EXIST = "0x80040217"
DUPLICATE_KEY = "0x80040237"
READ_ONLY = "0x80048d19"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # AttributeType of the metadata
    create: bool = True
    update: bool = True
    max_length: int | None = None


COLUMNS: dict[str, Column] = {c.name: c for c in (
    Column(PRIMARY_ID, "Uniqueidentifier", create=True, update=False),
    Column("firstname", "String", max_length=50),
    Column("lastname", "String", max_length=50),
    Column("fullname", "String", create=False, update=False, max_length=160),
    Column("emailaddress1", "String", max_length=100),
    Column("telephone1", "String", max_length=50),
    Column("mobilephone", "String", max_length=50),
    Column("address1_line1", "String", max_length=250),
    Column("address1_line2", "String", max_length=250),
    Column("address1_city", "String", max_length=80),
    Column("address1_postalcode", "String", max_length=20),
    Column("address1_stateorprovince", "String", max_length=50),
    Column("address1_country", "String", max_length=80),
    Column("parentcustomerid", "Customer"),
    Column(EXTERNAL_ID_FIELD, "String", max_length=100),
    # customer-specific columns for identity attributes a mapping may send
    Column("idlink_identitycreatedon", "DateTime"),
    Column("idlink_emailverified", "Boolean"),
    Column("idlink_lastlogin", "DateTime"),
    Column("idlink_identityupdatedon", "DateTime"),
    Column("idlink_identitydeleted", "Boolean"),
    Column("createdon", "DateTime", create=False, update=False),
    Column("modifiedon", "DateTime", create=False, update=False),
    Column("versionnumber", "BigInt", create=False, update=False),
    Column("statecode", "State", create=False),
    Column("merged", "Boolean", create=False, update=False),
    Column("masterid", "Lookup", create=False, update=False),
)}
# lookups are read as _<name>_value
LOOKUP_PROPERTIES = {f"_{c.name}_value": c.name for c in COLUMNS.values() if c.type in ("Lookup", "Customer")}


def definition() -> dict[str, Any]:
    """``EntityDefinitions(LogicalName='contact')`` with its attributes and keys expanded."""
    return {
        "LogicalName": ENTITY, "EntitySetName": ENTITY_SET, "PrimaryIdAttribute": PRIMARY_ID,
        "ChangeTrackingEnabled": True, "MetadataId": "608861bc-50a4-4c5f-a02c-21fe1943e2cf",
        "Attributes": [{"LogicalName": c.name, "AttributeType": c.type, "IsValidForCreate": c.create,
                        "IsValidForUpdate": c.update, "IsValidForRead": True} for c in COLUMNS.values()],
        "Keys": [{"LogicalName": ALTERNATE_KEY, "KeyAttributes": [EXTERNAL_ID_FIELD],
                  "EntityKeyIndexStatus": "Active"}],
    }


class WriteRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check_write(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The column values of a create or update body, or ``WriteRefused`` as Dataverse would answer."""
    values = {}
    for name, value in body.items():
        if name.startswith("@") or "@odata." in name:
            continue
        column = COLUMNS.get(name)
        if column is None:
            raise WriteRefused(400, UNKNOWN_PROPERTY,
                               f"An undeclared property '{name}' which only has property annotations in the "
                               "payload but no property value was found in the payload.")
        if not (column.create if creating else column.update):
            raise WriteRefused(400, READ_ONLY, f"The '{name}' attribute of the 'contact' entity cannot be set.")
        if column.max_length is not None and isinstance(value, str) and len(value) > column.max_length:
            raise WriteRefused(400, VALIDATION_ERROR,
                               f"A validation error occurred. The length of the '{name}' attribute of the "
                               f"'contact' entity exceeded the maximum allowed length of '{column.max_length}'.")
        values[name] = value
    return values
