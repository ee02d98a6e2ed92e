"""What one run's pushes did, from ``reverse_etl.sync_log``, and why a write failed in plain words.

Read by the Dagster assets (INFO/WARN lines in the run log) and by the demo. Keys, operations and error codes
only: the stored error messages are redacted already, and only the field names of a refusal are read from them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reverse_etl.attribute_writer import SET_ATTRIBUTE
from reverse_etl.salesforce_writer import CLEAR_EXTERNAL_ID, CREATE_CONTACT, SET_EXTERNAL_ID
from reverse_etl.state import DEAD_LETTERED, SCHEMA, SUCCEEDED, SUCCEEDED_WITHOUT_FIELDS, audited_fields
from warehouse import Connection

SYSTEM_NAMES = {"salesforce": "Salesforce", "dynamics": "Dynamics", "b2c": "B2C", "akamai": "Akamai"}
# what a write of each operation is written on (one, several) and what it did to it
_WRITES = {
    CREATE_CONTACT: ("contact", "contacts", "created"),
    SET_EXTERNAL_ID: ("contact", "contacts", "given the identity id"),
    CLEAR_EXTERNAL_ID: ("contact", "contacts", "cleared of an ended link's identity id"),
    SET_ATTRIBUTE: ("identity", "identities", "given the contact id"),
}
# a CRM field a refusal names, as a person would say it (Salesforce and Dataverse names)
_FIELD_WORDS = {
    "lastname": "a last name", "firstname": "a first name", "email": "an email address",
    "emailaddress1": "an email address", "phone": "a phone number", "mobilephone": "a mobile number",
    "telephone1": "a phone number", "mailingstreet": "a street address", "address1_line1": "a street address",
    "mailingcity": "a city", "address1_city": "a city", "mailingpostalcode": "a postal code",
    "address1_postalcode": "a postal code",
}
SAMPLE_KEYS = 5


@dataclass(frozen=True)
class FailedWrites:
    """Records of one run that one system refused, wholly or some of their fields, for one reason: counts and
    keys, never values."""

    system: str
    operation: str
    error_code: str | None
    fields: tuple[str, ...]
    outcome: str  # failed (retried next run), dead_lettered (failed for good) or succeeded_without_fields
    count: int
    sample_keys: tuple[str, ...]

    @property
    def dead_lettered(self) -> bool:
        return self.outcome == DEAD_LETTERED

    @property
    def written(self) -> bool:
        """The record was written, without the fields the system refused."""
        return self.outcome == SUCCEEDED_WITHOUT_FIELDS

    def code(self) -> str:
        """The system's code, with the fields it named: ``REQUIRED_FIELD_MISSING [LastName]``."""
        return f"{self.error_code or 'no error code'}" + (f" [{', '.join(self.fields)}]" if self.fields else "")

    def explain(self, with_code: bool = False) -> str:
        """``1 contact not created in Salesforce: Salesforce requires a last name and the identity has none; ...``
        (with the system's code after the system's name when ``with_code``)."""
        where = SYSTEM_NAMES.get(self.system, self.system) + (f" ({self.code()})" if with_code else "")
        if self.written:
            return (f"{_writes(self.operation, self.count)} in {where} without {_field_words(self.fields) or 'a field'}"
                    f": {self.reason()}; flagged in reverse_etl.sync_state")
        after = "failed for good (reverse_etl.dead_letters)" if self.dead_lettered else "retried next run"
        return f"{_writes(self.operation, self.count, negated=True)} in {where}: {self.reason()}; {after}"

    def reason(self) -> str:
        system = SYSTEM_NAMES.get(self.system, self.system)
        code = (self.error_code or "").upper()
        fields = _field_words(self.fields)
        if code == "REQUIRED_FIELD_MISSING":
            return f"{system} requires {fields or 'a field'} and the identity has none"
        if code in {"STRING_TOO_LONG", "INVALID_FIELD_LENGTH"}:
            return f"a value is longer than {system} allows" + (f" ({fields})" if fields else "")
        if code.startswith("INVALID_EMAIL"):
            return f"{system} refused the email address as invalid"
        if code in {"FIELD_CUSTOM_VALIDATION_EXCEPTION", "FIELD_INTEGRITY_EXCEPTION", "INVALID_FIELD"}:
            return f"a validation rule of {system} refused the record" + (f" ({fields})" if fields else "")
        if code in {"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID", "HTTP_300"}:
            return f"{system} already holds another record with this id"
        if code in {"ENTITY_IS_DELETED", "NOT_FOUND", "HTTP_404", "REQUEST_RESOURCENOTFOUND"}:
            return f"the record no longer exists in {system}"
        if code in {"UNABLE_TO_LOCK_ROW", "HTTP_409", "HTTP_412"}:
            return "another update held the record at the same time"
        if code in {"REQUEST_LIMIT_EXCEEDED", "HTTP_429"}:
            return f"the {system} API request limit was reached"
        if code in {"INVALID_SESSION_ID", "HTTP_401", "HTTP_403", "INSUFFICIENT_ACCESS_OR_READONLY",
                    "AUTHORIZATION_REQUESTDENIED"}:
            return f"{system} refused idlink's credentials or permissions"
        if code.startswith("HTTP_5") or code in {"SERVER_UNAVAILABLE", "OUTCOME_UNKNOWN"}:
            return f"{system} did not answer clearly (server error or lost answer)"
        return f"{system} refused it with {self.code()}"


@dataclass(frozen=True)
class RunPushes:
    """Everything one run's pushes did: successes per (system, operation) and the failures, grouped."""

    succeeded: dict[tuple[str, str], int] = field(default_factory=dict)
    failures: tuple[FailedWrites, ...] = ()

    def done(self, system: str, operation: str) -> int:
        return self.succeeded.get((system, operation), 0)

    def summary(self, system: str) -> str:
        """``320 contacts created, 342 contacts given the identity id, 1 failed`` for one system (a record written
        without some fields counts as written)."""
        order = list(_WRITES)
        done = sorted(((operation, count) for (name, operation), count in self.succeeded.items() if name == system),
                      key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        parts = [_writes(operation, count) for operation, count in done]
        failed = sum(f.count for f in self.failures if f.system == system and not f.written)
        if failed:
            parts.append(f"{failed} failed")
        return ", ".join(parts) or "nothing to write"


def run_pushes(con: Connection, run_id: str, system: str | None = None) -> RunPushes:
    """What the pushes of run ``run_id`` (of one ``system``, or all) wrote and which writes failed, and why."""
    if not con.table_exists(SCHEMA, "sync_log"):
        return RunPushes()
    where = "run_id = ?" + (" and system = ?" if system else "")
    params = [run_id, system] if system else [run_id]
    written = [SUCCEEDED, SUCCEEDED_WITHOUT_FIELDS]
    succeeded = {(name, operation): count for name, operation, count in con.execute(
        f"select system, operation, count(*) from {SCHEMA}.sync_log where {where} and outcome in (?, ?) "
        "group by system, operation", [*params, *written])}
    groups: dict[tuple, list[str]] = {}
    for name, operation, code, message, outcome, key in con.execute(
            f"select system, operation, error_code, error_message, outcome, record_key from {SCHEMA}.sync_log "
            f"where {where} and outcome <> ? order by system, operation, record_key", [*params, SUCCEEDED]):
        groups.setdefault((name, operation, code, audited_fields(message), outcome), []).append(key)
    failures = tuple(FailedWrites(name, operation, code, fields, outcome, len(keys), tuple(keys[:SAMPLE_KEYS]))
                     for (name, operation, code, fields, outcome), keys in groups.items())
    return RunPushes(succeeded=succeeded, failures=failures)


def _writes(operation: str, count: int, negated: bool = False) -> str:
    one, several, done = _WRITES.get(operation, ("record", "records", f"written ({operation})"))
    return f"{count} {one if count == 1 else several} {'not ' if negated else ''}{done}"


def _field_words(fields: Sequence[str]) -> str:
    words = [_FIELD_WORDS.get(name.lower(), f"a value for {name}") for name in fields]
    return " and ".join(dict.fromkeys(words))
