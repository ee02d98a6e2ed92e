"""The simulated Contact object: field metadata (for describe and SOQL) and validation of write payloads."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from sandbox.salesforce.ids import to_18
from sandbox.salesforce.soql import FieldSpec, format_datetime

EXTERNAL_ID_FIELD = "External_User_Id__c"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # Salesforce field type: id reference string email phone textarea boolean datetime date
    label: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    id_lookup: bool = False
    reference_to: tuple[str, ...] = ()


CONTACT_FIELDS: tuple[Field, ...] = (
    Field("Id", "id", "Contact ID", 18, nillable=False, createable=False, updateable=False, id_lookup=True),
    Field("IsDeleted", "boolean", "Deleted", nillable=False, createable=False, updateable=False),
    Field("AccountId", "reference", "Account ID", 18, reference_to=("Account",)),
    # set on a contact merged into another (deleted, queryAll only): the contact that survived the merge
    Field("MasterRecordId", "reference", "Master Record ID", 18, createable=False, updateable=False,
          reference_to=("Contact",)),
    Field("LastName", "string", "Last Name", 80, nillable=False),
    Field("FirstName", "string", "First Name", 40),
    Field("Salutation", "picklist", "Salutation", 40),
    Field("Name", "string", "Full Name", 121, nillable=False, createable=False, updateable=False),
    Field("Title", "string", "Title", 128),
    Field("Department", "string", "Department", 80),
    Field("Email", "email", "Email", 80, id_lookup=True),
    Field("Phone", "phone", "Business Phone", 40),
    Field("MobilePhone", "phone", "Mobile Phone", 40),
    Field("MailingStreet", "textarea", "Mailing Street", 255),
    Field("MailingCity", "string", "Mailing City", 40),
    Field("MailingState", "string", "Mailing State/Province", 80),
    Field("MailingPostalCode", "string", "Mailing Zip/Postal Code", 20),
    Field("MailingCountry", "string", "Mailing Country", 80),
    Field("Birthdate", "date", "Birthdate"),
    Field("LeadSource", "picklist", "Lead Source", 255),
    Field("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
    Field(EXTERNAL_ID_FIELD, "string", "External User Id", 255, external_id=True, unique=True, id_lookup=True),
    # custom fields an org adds for the identity attributes a field mapping may send
    Field("Identity_Created__c", "datetime", "Identity Created"),
    Field("Email_Verified__c", "boolean", "Email Verified", nillable=False),
    Field("Last_Login__c", "datetime", "Last Login"),
    Field("Identity_Updated__c", "datetime", "Identity Updated"),
    Field("Identity_Deleted__c", "boolean", "Identity Deleted", nillable=False),
    Field("CreatedDate", "datetime", "Created Date", nillable=False, createable=False, updateable=False),
    Field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, createable=False, updateable=False),
    Field("SystemModstamp", "datetime", "System Modstamp", nillable=False, createable=False, updateable=False),
)
FIELDS_BY_LOWER: dict[str, Field] = {f.name.lower(): f for f in CONTACT_FIELDS}
SOQL_SCHEMA: dict[str, FieldSpec] = {f.name.lower(): FieldSpec(f.name, f.type) for f in CONTACT_FIELDS}
TIMESTAMP_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
BOOLEAN_DEFAULTS = {"IsDeleted": False, "HasOptedOutOfEmail": False, "Email_Verified__c": False,
                    "Identity_Deleted__c": False}


@dataclass(frozen=True)
class FieldError:
    """One validation failure, in the vocabulary every Salesforce API answers with."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.status_code, "fields": list(self.fields)}

    def as_collection(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}

    def as_bulk(self) -> str:
        return f"{self.status_code}:{self.message}:{','.join(self.fields)}"


class ValidationFailed(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(e.status_code for e in errors))
        self.errors = errors


def describe_contact(version: str) -> dict[str, Any]:
    return {
        "name": "Contact",
        "label": "Contact",
        "labelPlural": "Contacts",
        "keyPrefix": "003",
        "custom": False,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "searchable": True,
        "urls": {
            "sobject": f"/services/data/v{version}/sobjects/Contact",
            "describe": f"/services/data/v{version}/sobjects/Contact/describe",
            "rowTemplate": f"/services/data/v{version}/sobjects/Contact/{{ID}}",
        },
        "fields": [_describe_field(f) for f in CONTACT_FIELDS],
    }


def _describe_field(f: Field) -> dict[str, Any]:
    soap_type = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "datetime": "xsd:dateTime",
                 "date": "xsd:date"}.get(f.type, "xsd:string")
    return {
        "name": f.name,
        "type": f.type,
        "label": f.label,
        "length": f.length,
        "soapType": soap_type,
        "externalId": f.external_id,
        "unique": f.unique,
        "caseSensitive": f.case_sensitive,
        "idLookup": f.id_lookup,
        "createable": f.createable,
        "updateable": f.updateable,
        "nillable": f.nillable,
        "custom": f.name.endswith("__c"),
        "defaultedOnCreate": f.name in BOOLEAN_DEFAULTS or f.name in TIMESTAMP_FIELDS or f.name == "Id",
        "filterable": True,
        "sortable": f.type != "textarea",
        "referenceTo": list(f.reference_to),
        "relationshipName": f.name[:-2] if f.type == "reference" else None,
    }


def clean_payload(payload: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validate a create/update body and return it keyed by canonical field names.

    Raises :class:`ValidationFailed` with every problem found (not just the first), so callers can report
    them all at once the way Salesforce does. Like Salesforce, the messages of ``STRING_TOO_LONG`` and
    ``INVALID_EMAIL_ADDRESS`` quote the rejected value: clients must not store messages as they come.
    """
    errors: list[FieldError] = []
    cleaned: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "attributes":
            continue
        f = FIELDS_BY_LOWER.get(key.lower())
        if f is None:
            errors.append(FieldError("INVALID_FIELD", f"No such column '{key}' on sobject of type Contact", (key,)))
            continue
        if not (f.createable if creating else f.updateable):
            errors.append(FieldError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {f.name}. Please check the security settings of this field "
                "and verify that it is read/write for your profile or permission set.",
                (f.name,),
            ))
            continue
        try:
            cleaned[f.name] = _coerce(f, value)
        except ValidationFailed as failed:
            errors.extend(failed.errors)
    last_name_rejected = any("LastName" in e.fields for e in errors)  # already reported, e.g. too long
    missing = not cleaned.get("LastName") if creating else ("LastName" in cleaned and not cleaned["LastName"])
    if missing and not last_name_rejected:
        errors.append(FieldError("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",)))
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _coerce(f: Field, value: Any) -> Any:
    if value is None or value == "":
        if f.type == "boolean":
            raise ValidationFailed([FieldError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                               f"{f.label}: value not of required type: null", (f.name,))])
        return None  # Salesforce never stores empty strings: blank means null
    if f.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _wrong_type(f)
    if f.type == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _wrong_type(f) from None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _wrong_type(f)
    text = str(value)
    if f.type == "reference":
        full = to_18(text)
        if full is None:
            raise ValidationFailed([FieldError("MALFORMED_ID", f"{f.label}: id value of incorrect type", (f.name,))])
        return full
    if f.length and len(text) > f.length:
        raise ValidationFailed([FieldError(
            "STRING_TOO_LONG", f"{f.label}: data value too large: {text} (max length={f.length})", (f.name,))])
    if f.type == "email":
        try:
            # Salesforce takes ASCII addresses only; "test" domains stay usable for synthetic data
            validate_email(text, check_deliverability=False, allow_smtputf8=False, test_environment=True)
        except EmailNotValidError:
            raise ValidationFailed([FieldError(
                "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", (f.name,))]) from None
    return text


def _wrong_type(f: Field) -> ValidationFailed:
    return ValidationFailed([FieldError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.label}: value not of required type", (f.name,))])


CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")


def normalise_timestamp(value: Any) -> str:
    """Accept the datetime spellings seed files use and return the canonical wire format."""
    if isinstance(value, str) and CANONICAL_TIMESTAMP.fullmatch(value):
        return value  # already canonical: skip parsing (seeding a million contacts hits this path)
    if isinstance(value, datetime):
        parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        text = str(value).strip().replace("Z", "+00:00")
        if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00 for fromisoformat
            text = text[:-2] + ":" + text[-2:]
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    return format_datetime(parsed)


def full_name(record: Mapping[str, Any]) -> str:
    return " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
