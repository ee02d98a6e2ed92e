"""Record normalisation: emails, phones, countries, flags and hashes."""

from __future__ import annotations

import ast
import random
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers
import pytest

from ingestion import normalize as n


@pytest.mark.parametrize(
    "spelling, iso2",
    [
        ("Deutschland", "DE"),
        ("Germany", "DE"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("England", "GB"),
        ("United States of America", "US"),
        ("USA", "US"),
        ("España", "ES"),
        ("Espana", "ES"),
        ("The Netherlands", "NL"),
        ("Holland", "NL"),
        ("Éire", "IE"),
        ("République française", "FR"),
        ("AUS", "AU"),
        ("ca", "CA"),
        ("  france ", "FR"),
    ],
)
def test_country_names_and_codes_map_to_iso2(spelling, iso2):
    assert n.country_iso2(spelling) == iso2


@pytest.mark.parametrize("spelling", ["", None, "Atlantis", "123"])
def test_unknown_countries_map_to_none(spelling):
    assert n.country_iso2(spelling) is None


def test_national_phone_numbers_become_e164_in_the_records_country():
    assert n.phone_e164("020 7946 0018", "GB") == "+442079460018"
    assert n.phone_e164("0151 81912868", "DE") == "+4915181912868"
    assert n.phone_e164("(201) 555-0143", "US") is None or n.phone_e164("(201) 555-0143", "US").startswith(
        "+1"
    )
    assert n.phone_e164("+33 6 18 32 03 26", None) == "+33618320326"


def test_unparsable_phones_are_flagged_but_a_valid_one_still_wins():
    flags: set[str] = set()
    assert n.first_e164(["12", "+44 7409 879965"], "GB", flags) == "+447409879965"
    assert flags == {n.INVALID_PHONE}


def test_national_phone_without_country_is_invalid():
    flags: set[str] = set()
    assert n.first_e164(["07488-754925"], None, flags) is None
    assert n.INVALID_PHONE in flags


def test_valid_emails_are_accepted_and_domains_lowercased():
    assert n.normalize_email("  Jane.Doe+news@Example.COM ") == ("Jane.Doe+news@example.com", True)
    assert n.normalize_email("jürgen@bücher.de")[1] is True


@pytest.mark.parametrize(
    "value",
    [
        "jane.doe@",
        "@example.com",
        "jane..doe@example.com",
        "jane doe@example.com",
        "jane@localhost",
        "jane@example",
        "jane@@example.com",
    ],
)
def test_malformed_emails_are_kept_and_marked_invalid(value):
    email, valid = n.normalize_email(value)
    assert valid is False and email == value.strip()


def test_missing_email_has_no_validity():
    assert n.normalize_email(None) == (None, None)
    assert n.normalize_email("   ") == (None, None)


def test_oversized_values_are_kept_whole_and_flagged():
    flags: set[str] = set()
    value = "x" * 100_000
    assert n.clean_text(value, flags) == value
    assert flags == {n.OVERSIZED_FIELD}


def test_control_characters_are_flagged_but_newlines_allowed_in_multiline_fields():
    flags: set[str] = set()
    n.clean_text("Main St\n12", flags, multiline=True)
    assert flags == set()
    assert n.clean_text("Ja\x07ne", flags) == "Ja\x07ne"
    assert flags == {n.CONTROL_CHARACTERS}
    single: set[str] = set()
    n.clean_text("Jane\nDoe", single)
    assert single == {n.CONTROL_CHARACTERS}


def test_nul_is_dropped_from_text_and_flagged_so_every_warehouse_holds_the_same_value():
    flags: set[str] = set()
    assert n.clean_text("Ja\x00ne", flags) == "Jane"
    assert n.clean_text(" \x00 ", flags) is None
    assert flags == {n.CONTROL_CHARACTERS}


def test_emoji_and_right_to_left_text_are_clean_text():
    flags: set[str] = set()
    assert n.clean_text("Zoë 🎉", flags) == "Zoë 🎉"
    assert n.clean_text("محمد", flags) == "محمد"
    assert n.clean_text("שרה", flags) == "שרה"
    assert flags == set()


def test_non_text_values_become_text_and_are_flagged():
    flags: set[str] = set()
    assert n.clean_text(12345, flags) == "12345"
    assert n.clean_text({"b": 1, "a": 2}, flags) == '{"a":2,"b":1}'
    assert flags == {n.NON_TEXT_FIELD}


def test_blank_text_becomes_none():
    flags: set[str] = set()
    assert n.clean_text("   ", flags) is None and flags == set()


def test_timestamps_of_both_apis_parse_to_utc():
    flags: set[str] = set()
    expected = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert n.parse_timestamp("2024-01-02T03:04:05Z", flags) == expected
    assert n.parse_timestamp("2024-01-02T04:04:05.000+0100", flags) == expected
    assert flags == set()
    assert n.parse_timestamp("yesterday", flags) is None and flags == {n.INVALID_VALUE}


def test_content_hash_is_stable_and_sensitive_to_every_value():
    values = ("id1", "Jane", None, True, datetime(2024, 1, 1, tzinfo=UTC))
    assert n.content_hash(values) == n.content_hash(tuple(values))
    assert n.content_hash(values) != n.content_hash(("id1", "Jane ", None, True, values[-1]))
    assert len(n.content_hash(values)) == 32


def test_quarantine_excerpt_lists_keys_never_values():
    excerpt = n.excerpt_keys({"mail": "jane@example.com", "displayName": "Jane"})
    assert "jane@example.com" not in excerpt and 'Jane"' not in excerpt
    assert "mail" in excerpt and "displayName" in excerpt
    assert n.excerpt_keys(["secret"]) == '{"type":"list"}'


def _reference_e164(value: str | None, country: str | None) -> str | None:
    """The plain phonenumbers pipeline ``phone_e164`` (separators dropped, results cached) must agree with."""
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) and not (
        country and phonenumbers.is_valid_number_for_region(number, country)
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_phone_normalisation_agrees_with_plain_phonenumbers_on_many_spellings():
    rng = random.Random(20261123)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    cases: list[tuple[str, str | None]] = [
        ("+44 (0)20 7946 0000", "GB"),
        ("+390612345678", "IT"),
        ("+1 506 234 5678", "US"),
        ("+15033813612", "CA"),
        ("0044 7911 123456", "GB"),
        ("011 44 7911 123456", "US"),
        ("(502) 271-8719", "CA"),
        ("4930123456", "DE"),
        ("+0044 7911 123456", "GB"),
        ("++44 7911 123456", None),
        ("12", "US"),
        ("+12", None),
        ("+800 1234 5678", None),
    ]
    for _ in range(4000):
        region = rng.choice(regions)
        example = phonenumbers.example_number_for_type(rng.choice(regions + [region] * 3), rng.randrange(11))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 15)))
        if example is not None:
            nsn = phonenumbers.national_significant_number(example)
            if rng.random() < 0.4:
                nsn = nsn[:-2] + digits[:2]
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            prefix = rng.choice(["", "", metadata.national_prefix or "", f"00{example.country_code}"])
            digits = (f"+{example.country_code}" if rng.random() < 0.4 else prefix) + nsn
        text = "".join(ch + (rng.choice(" -.()") if rng.random() < 0.25 else "") for ch in digits)
        cases.append((text, rng.choice([region, region, None])))
    mismatches = [(v, c) for v, c in cases if n.phone_e164(v, c) != _reference_e164(v, c)]
    assert mismatches == []


def test_phone_normalisation_uses_only_the_public_api_of_phonenumbers():
    """A private name (``phonenumberutil._...``, ``_pnu``) would break quietly on a library upgrade."""
    tree = ast.parse(Path(n.__file__).read_text())
    used = {f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "phonenumbers"}
    private = sorted(name for name in used if name.split(".")[1].startswith("_") or "phonenumberutil" in name)
    assert private == []
    assert used <= {f"phonenumbers.{name}" for name in dir(phonenumbers) if not name.startswith("_")}


def test_the_same_number_in_another_spelling_is_normalised_once():
    n._e164.cache_clear()
    assert n.phone_e164("+44 20 7946 0000", "GB") == n.phone_e164("+44-20-7946-0000", "GB") == "+442079460000"
    assert n._e164.cache_info().misses == 1
