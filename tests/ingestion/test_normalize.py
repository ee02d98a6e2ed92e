"""Record normalisation: emails, phones, countries, flags and hashes."""

from __future__ import annotations

from datetime import UTC, datetime

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
    n.clean_text("Ja\x00ne", flags)
    assert flags == {n.CONTROL_CHARACTERS}
    single: set[str] = set()
    n.clean_text("Jane\nDoe", single)
    assert single == {n.CONTROL_CHARACTERS}


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
