"""Record normalisation shared by every source: text cleaning, email checks, E.164 phones, ISO countries,
quality flags and content hashes.

Everything here is pure and runs once per field of millions of rows, so the expensive library calls are
cached where their input repeats (email domains, country spellings) and skipped where it cannot matter.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import phonenumbers
from babel import Locale
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH

MAX_FIELD_CHARS = 1000

# quality flags (values of the comma-separated ``quality_flags`` column)
MALFORMED_EMAIL = "malformed_email"
MISSING_EMAIL = "missing_email"
OVERSIZED_FIELD = "oversized_field"
CONTROL_CHARACTERS = "control_characters"
MISSING_NAME = "missing_name"
INVALID_PHONE = "invalid_phone"
NON_TEXT_FIELD = "non_text_field"  # a text field held a number, boolean, object or array
INVALID_VALUE = "invalid_value"  # a typed field (boolean, timestamp) held something else

# C0/C1 controls; tab, newline and carriage return are allowed only in multi-line fields (street addresses)
_CONTROL_ANY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# -- text -----------------------------------------------------------------------------------------------------
def as_text(value: Any) -> tuple[str | None, bool]:
    """``(text, was_not_text)``: strings pass through, other JSON values become text (and are reported)."""
    if value is None or isinstance(value, str):
        return value, False
    if isinstance(value, bool):
        return ("true" if value else "false"), True
    if isinstance(value, (int, float)):
        return str(value), True
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode(), True


def clean_text(value: Any, flags: set[str], *, multiline: bool = False) -> str | None:
    """Trimmed text of a field (None when blank), adding the quality flags it deserves to ``flags``.

    Oversized values are kept whole (flagged, not truncated): truncating would silently lose data. Control
    characters are kept and flagged, except NUL, which no Postgres text can hold.
    """
    if value.__class__ is str:  # the common case first: no conversion, no flag
        text = value.strip()
    else:
        text, not_text = as_text(value)
        if not_text:
            flags.add(NON_TEXT_FIELD)
        if text is None:
            return None
        text = text.strip()
    if not text:
        return None
    if len(text) > MAX_FIELD_CHARS:
        flags.add(OVERSIZED_FIELD)
    # every C0/C1 control is non-printable, so printable text (nearly all of it) needs no regex scan
    if not text.isprintable() and (_CONTROL_ANY if multiline else _CONTROL_SINGLE_LINE).search(text):
        flags.add(CONTROL_CHARACTERS)
        # NUL is dropped (the rest kept): Postgres text cannot hold it, so both warehouses keep the same text
        text = text.replace("\x00", "").strip() or None
    return text


# -- email ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def _domain_ascii(domain: str) -> str | None:
    """The validated, normalised domain (through email-validator), or None when it is not a valid mail domain."""
    try:
        return validate_email(f"postmaster@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def normalize_email(value: str | None) -> tuple[str | None, bool | None]:
    """``(normalised email, valid)`` with ``valid`` None when there is no email.

    Plain ASCII local parts are checked with email-validator's own dot-atom rule and the (few, repeating)
    domains through email-validator with a cache; anything else gets the full email-validator treatment.
    Invalid addresses are returned trimmed but otherwise unchanged, so nothing is lost.
    """
    if value is None:
        return None, None
    email = value.strip()
    if not email:
        return None, None
    local, sep, domain = email.rpartition("@")
    if (
        sep
        and local
        and len(email) <= EMAIL_MAX_LENGTH
        and len(local) <= LOCAL_PART_MAX_LENGTH
        and local.isascii()
        and DOT_ATOM_TEXT.match(local)
    ):
        normalized_domain = _domain_ascii(domain)
        if normalized_domain is None:
            return email, False
        return f"{local}@{normalized_domain}", True
    try:
        return validate_email(email, check_deliverability=False).normalized, True
    except EmailNotValidError:
        return email, False
    except Exception:  # noqa: BLE001 - the validator must never take a load down; odd input is just invalid
        return email, False


# -- countries ------------------------------------------------------------------------------------------------
# spellings people type that are neither an ISO code nor a country's name in a common language
_COUNTRY_ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "britain": "GB",
    "u k": "GB",
    "usa": "US",
    "u s a": "US",
    "u s": "US",
    "america": "US",
    "united states of america": "US",
    "holland": "NL",
    "the netherlands": "NL",
    "eire": "IE",
    "republic of ireland": "IE",
    "aus": "AU",
    "deu": "DE",
    "ger": "DE",
    "fra": "FR",
    "esp": "ES",
    "nld": "NL",
    "irl": "IE",
    "can": "CA",
    "gbr": "GB",
    "republique francaise": "FR",
    "schweiz": "CH",
    "suisse": "CH",
    "osterreich": "AT",
    "espana": "ES",
}
_NAME_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl", "da")


def _country_key(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    letters = "".join(ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(letters.split())


@functools.lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    """Normalised spelling -> ISO2, from CLDR territory names (via babel) in common languages plus aliases."""
    index: dict[str, str] = {}
    for language in _NAME_LANGUAGES:
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha():
                index.setdefault(code.lower(), code)
                index.setdefault(_country_key(name), code)
    for alias, region in _COUNTRY_ALIASES.items():
        index[_country_key(alias)] = region
    return index


@functools.lru_cache(maxsize=4096)
def country_iso2(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a country written as a code or a name ("Deutschland", "UK"), or None."""
    if not value:
        return None
    key = _country_key(value)
    if not key:
        return None
    found = _country_index().get(key)
    if found is None and key.startswith("the "):
        found = _country_index().get(key[4:])
    return found


# -- phones ---------------------------------------------------------------------------------------------------
# phonenumbers' public API only: ``parse``, the validity checks and ``format_number`` (about 30 us a number, two
# thirds of it in ``parse``). No spelling is worked on twice in a process: plain spellings are reduced to their
# digits (the parser ignores the separators, so "+44 20 7946 0000" and "+442079460000" are one entry) and
# results are cached per spelling and country, which pays off where numbers repeat (an account's switchboard
# on many contacts, one person's number on both sides). Validity is checked against the record's own country
# first, which spares the scan of every region sharing a calling code (+1 has two dozen) that
# ``is_valid_number`` makes.
_PLAIN_SHAPE = re.compile(r"\+?\(?[0-9][0-9 ().\-]*")
_SEPARATORS = str.maketrans("", "", " ().-")
_E164_CACHE_SIZE = 1 << 14  # distinct spellings remembered per process (a few MB)
phonenumbers.enable_pattern_cache()  # metadata patterns compiled once, not once per call


@functools.lru_cache(maxsize=_E164_CACHE_SIZE)
def _e164(text: str, country: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None
    valid = (country is not None and number.country_code == phonenumbers.country_code_for_region(country)
             and phonenumbers.is_valid_number_for_region(number, country)) or phonenumbers.is_valid_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if valid else None


def phone_e164(value: str | None, country: str | None) -> str | None:
    """E.164 form of a phone number read in the record's country (ISO2), or None when it is not valid."""
    if not value:
        return None
    text = value.strip()
    if _PLAIN_SHAPE.fullmatch(text):
        text = text.translate(_SEPARATORS)
    return _e164(text, country)


def first_e164(phones: Iterable[str | None], country: str | None, flags: set[str]) -> str | None:
    """E.164 of the first valid phone among ``phones``; flags ``invalid_phone`` for any present but invalid."""
    found = None
    for phone in phones:
        if not phone:
            continue
        e164 = phone_e164(phone, country)
        if e164 is None:
            flags.add(INVALID_PHONE)
        elif found is None:
            found = e164
    return found


# -- hashing and flags --------------------------------------------------------------------------------------
def content_hash(values: Sequence[Any]) -> str:
    """Stable hash of a record's normalised payload (field order fixed by the caller)."""
    return hashlib.blake2b(orjson.dumps(values, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def flags_text(flags: set[str]) -> str:
    return ",".join(sorted(flags)) if flags else ""


def json_text(value: Any) -> str | None:
    """Compact, key-sorted JSON text of a nested value (None stays None)."""
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def excerpt_keys(record: Any, limit: int = 10) -> str:
    """A PII-free description of a record for quarantine: its type and its first keys, never its values."""
    if isinstance(record, Mapping):
        # a key that is not valid Unicode is shown with replacement characters
        keys = [str(k)[:40].encode("utf-8", errors="replace").decode() for k in list(record)[:limit]]
        return orjson.dumps({"type": "object", "keys": keys}).decode()
    return orjson.dumps({"type": type(record).__name__}).decode()


# -- timestamps -----------------------------------------------------------------------------------------------
def parse_timestamp(value: Any, flags: set[str]) -> datetime | None:
    """Aware UTC datetime of an API timestamp (Graph ``Z``, Salesforce ``+0000``); flags unparsable values."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            flags.add(INVALID_VALUE)
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    flags.add(INVALID_VALUE)
    return None


def parse_bool(value: Any, flags: set[str]) -> bool | None:
    """A JSON boolean; "true"/"false" text is accepted but flagged."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        flags.add(INVALID_VALUE)
        return value.strip().lower() == "true"
    flags.add(INVALID_VALUE)
    return None
