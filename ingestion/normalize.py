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

    Oversized values are kept whole (flagged, not truncated): truncating would silently lose data.
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
# Parsing and validating with phonenumbers costs tens of microseconds per number, most of it in layers that
# only matter for free text (extensions, RFC 3966, letters, IDD detection) and in regex look-ups per call.
# Numbers written as "+<digits>" with plain separators (most of them: what B2C stores) take a shortcut that
# runs the same steps as ``phonenumbers.parse`` for that shape, and validity checks use the same metadata
# rules with the patterns compiled once. Every other spelling goes through ``phonenumbers.parse``.
_pnu = phonenumbers.phonenumberutil
_PLUS_SHAPE = re.compile(r"\+[0-9][0-9 ().\-]*")
_NATIONAL_SHAPE = re.compile(r"\(?[0-9][0-9 ().\-]*")
_SEPARATORS = str.maketrans("", "", " ().-")
_SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
# the number types whose match makes a number valid (mobile only when its pattern differs from fixed line's);
# any match will do, so the common ones come first
_NUMBER_TYPES = (
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_NO_STRIP = (
    _pnu.ValidationResult.TOO_SHORT,
    _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _pnu.ValidationResult.INVALID_LENGTH,
)
phonenumbers.re_util.enable_pattern_cache()  # metadata patterns compiled once, not re-looked-up per call


def _desc_rule(desc: Any) -> tuple[frozenset[int], re.Pattern] | None:
    """(possible lengths, compiled pattern) of a metadata number description; None when it never matches."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


_RULES: dict[int, tuple[Any, Any, tuple[Any, ...]]] = {}  # id(metadata) -> (metadata, general, types)


def _validity_rules(metadata: Any) -> tuple[Any, tuple[Any, ...]]:
    """The general rule and the per-type rules of a region's metadata, as ``_number_type_helper`` uses them.

    Metadata objects live for the whole process (phonenumbers keeps them), so their id is a stable key; the
    entry holds the object itself so the id can never be reused while cached.
    """
    entry = _RULES.get(id(metadata))
    if entry is None or entry[0] is not metadata:
        types = [_desc_rule(getattr(metadata, name)) for name in _NUMBER_TYPES]
        if not metadata.same_mobile_and_fixed_line_pattern:
            types.insert(0, _desc_rule(metadata.mobile))
        entry = (metadata, _desc_rule(metadata.general_desc), tuple(rule for rule in types if rule is not None))
        _RULES[id(metadata)] = entry
    return entry[1], entry[2]


def _matches(nsn: str, rule: tuple[frozenset[int], re.Pattern] | None) -> bool:
    if rule is None:
        return False
    lengths, pattern = rule
    if lengths and len(nsn) not in lengths:
        return False
    return pattern.fullmatch(nsn) is not None


def _has_type(nsn: str, metadata: Any) -> bool:
    """``_number_type_helper(nsn, metadata) != UNKNOWN`` with precompiled patterns."""
    general, types = _validity_rules(metadata)
    return _matches(nsn, general) and any(_matches(nsn, rule) for rule in types)


@functools.lru_cache(maxsize=4096)
def _validation_metadata(country_code: int, region: str) -> Any:
    """The metadata ``is_valid_number_for_region`` checks a number of ``country_code`` against, or None."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is None or (
        region != _pnu.REGION_CODE_FOR_NON_GEO_ENTITY
        and country_code != _pnu.country_code_for_valid_region(region)
    ):
        return None
    return metadata


def _valid_for_region(number: phonenumbers.PhoneNumber, nsn: str, region: str | None) -> bool:
    """``phonenumbers.is_valid_number_for_region``."""
    if region is None:
        return False
    metadata = _validation_metadata(number.country_code, region)
    return metadata is not None and _has_type(nsn, metadata)


def _region_of(number: phonenumbers.PhoneNumber, nsn: str) -> str | None:
    """``phonenumbers.region_code_for_number``."""
    regions = _pnu.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if regions is None:
        return None
    if len(regions) == 1:
        return regions[0]
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if _pnu.re_compile(metadata.leading_digits).match(nsn):
                return region
        elif _has_type(nsn, metadata):
            return region
    return None


def _parse_plus(digits: str) -> phonenumbers.PhoneNumber | None:
    """``phonenumbers.parse("+" + digits)`` for ASCII digits, or None when that needs the general parser."""
    if len(digits) <= _pnu._MIN_LENGTH_FOR_NSN:
        return None
    country_code, national = _pnu._extract_country_code(digits)
    if country_code == 0 or len(national) < _pnu._MIN_LENGTH_FOR_NSN:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, _pnu.region_code_for_country_code(country_code)
    )
    if metadata is None:
        return None
    _, stripped, _ = _pnu._maybe_strip_national_prefix_carrier_code(national, metadata)
    if _pnu._test_number_length(stripped, metadata) not in _NO_STRIP:
        national = stripped
    if not _pnu._MIN_LENGTH_FOR_NSN <= len(national) <= _pnu._MAX_LENGTH_FOR_NSN:
        return None
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    _pnu._set_italian_leading_zeros_for_phone_number(national, number)
    return number


def _parse_national(digits: str, region: str) -> phonenumbers.PhoneNumber | None:
    """``phonenumbers.parse(digits, region)`` for ASCII digits and a supported region (the steps after text
    extraction, which plain digits do not need); None when that needs the general parser. Raises
    ``NumberParseException`` where ``parse`` would."""
    if len(digits) < 3:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None:
        return None
    number = phonenumbers.PhoneNumber()
    country_code, national = _pnu._maybe_extract_country_code(digits, metadata, False, number)
    if country_code != 0:
        number_region = _pnu.region_code_for_country_code(country_code)
        if number_region != region:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, number_region)
            if metadata is None:
                return None
    else:
        national = digits
        country_code = metadata.country_code
        number.country_code = country_code
    if len(national) < _pnu._MIN_LENGTH_FOR_NSN:
        return None
    _, stripped, _ = _pnu._maybe_strip_national_prefix_carrier_code(national, metadata)
    if _pnu._test_number_length(stripped, metadata) not in _NO_STRIP:
        national = stripped
    if not _pnu._MIN_LENGTH_FOR_NSN <= len(national) <= _pnu._MAX_LENGTH_FOR_NSN:
        return None
    _pnu._set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


def phone_e164(value: str | None, country: str | None) -> str | None:
    """E.164 form of a phone number read in the record's country (ISO2), or None when it is not valid."""
    if not value:
        return None
    number = None
    text = value.strip()
    try:
        if len(text) <= _pnu._MAX_INPUT_STRING_LENGTH:
            if _PLUS_SHAPE.fullmatch(text):
                number = _parse_plus(text[1:].translate(_SEPARATORS))
            elif country in _SUPPORTED_REGIONS and _NATIONAL_SHAPE.fullmatch(text):
                number = _parse_national(text.translate(_SEPARATORS), country)
        if number is None:
            number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        return None
    nsn = _pnu.national_significant_number(number)
    # checking against the record's own country first skips the scan of every region sharing the calling
    # code (+1 has two dozen); any other valid number is still accepted
    valid = False
    if country and number.country_code == phonenumbers.country_code_for_region(country):
        valid = _valid_for_region(number, nsn, country)
    if not valid:
        valid = _valid_for_region(number, nsn, _region_of(number, nsn))
    if not valid:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
        keys = [str(k)[:40] for k in list(record)[:limit]]
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
