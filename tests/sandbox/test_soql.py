"""The SOQL subset: parsing, field resolution against a schema and evaluation of conditions."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.salesforce.soql import (
    BoolOp,
    Comparison,
    FieldSpec,
    InList,
    Like,
    Not,
    SoqlError,
    compile_query,
    parse,
)

SCHEMA = {
    s.name.lower(): s
    for s in (
        FieldSpec("Id", "id"),
        FieldSpec("LastName", "string"),
        FieldSpec("Email", "email"),
        FieldSpec("IsDeleted", "boolean"),
        FieldSpec("SystemModstamp", "datetime"),
        FieldSpec("Birthdate", "date"),
    )
}
ROWS = [
    {"Id": "a", "LastName": "O'Brien", "Email": "ob@example.com", "IsDeleted": False,
     "SystemModstamp": "2024-01-01T00:00:00.000+0000", "Birthdate": "1980-05-01"},
    {"Id": "b", "LastName": "smith", "Email": None, "IsDeleted": False,
     "SystemModstamp": "2024-01-01T00:00:00.001+0000", "Birthdate": None},
    {"Id": "c", "LastName": "Smith", "Email": "s_1@example.com", "IsDeleted": True,
     "SystemModstamp": "2024-06-30T22:00:00.000+0000", "Birthdate": "1990-01-01"},
    {"Id": "d", "LastName": "100%", "Email": "pct@example.com", "IsDeleted": False,
     "SystemModstamp": "2023-12-31T23:59:59.999+0000", "Birthdate": "2000-02-29"},
]


def ids(soql: str) -> list[str]:
    return compile_query(parse(soql), "Contact", SCHEMA).select_ids(ROWS, lambda r: True)


def error_code(soql: str) -> str:
    with pytest.raises(SoqlError) as caught:
        compile_query(parse(soql), "Contact", SCHEMA)
    return caught.value.error_code


def test_keywords_and_field_names_are_case_insensitive_and_resolve_to_canonical_names():
    compiled = compile_query(parse("select id, LASTNAME from CONTACT where isdeleted = FALSE"), "Contact", SCHEMA)
    assert compiled.fields == ["Id", "LastName"]
    assert compiled.select_ids(ROWS, lambda r: True) == ["a", "b", "d"]


def test_and_binds_tighter_than_or_and_parentheses_override_it():
    query = parse("SELECT Id FROM Contact WHERE LastName = 'x' OR LastName = 'y' AND Email = null")
    assert isinstance(query.where, BoolOp) and query.where.op == "OR"
    assert isinstance(query.where.items[1], BoolOp) and query.where.items[1].op == "AND"
    assert ids("SELECT Id FROM Contact WHERE LastName = 'smith' OR LastName = 'x' AND Email = null") == ["b", "c"]
    assert ids("SELECT Id FROM Contact WHERE (LastName = 'smith' OR LastName = 'x') AND Email = null") == ["b"]


def test_not_negates_a_parenthesised_condition():
    assert isinstance(parse("SELECT Id FROM Contact WHERE NOT (Email = null)").where, Not)
    assert ids("SELECT Id FROM Contact WHERE NOT (Email = null)") == ["a", "c", "d"]


def test_string_equality_ignores_case_like_salesforce():
    assert ids("SELECT Id FROM Contact WHERE LastName = 'SMITH'") == ["b", "c"]


def test_string_literals_support_escaped_quotes_and_backslashes():
    assert ids(r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien'") == ["a"]
    assert parse(r"SELECT Id FROM Contact WHERE LastName = 'a\\b\nc'").where.value.value == "a\\b\nc"


def test_null_comparisons_use_equals_and_not_equals():
    assert ids("SELECT Id FROM Contact WHERE Email = null") == ["b"]
    assert ids("SELECT Id FROM Contact WHERE Email != null") == ["a", "c", "d"]
    assert ids("SELECT Id FROM Contact WHERE Email <> 'ob@example.com'") == ["b", "c", "d"]


def test_in_and_not_in_lists():
    where = parse("SELECT Id FROM Contact WHERE Id NOT IN ('a', 'b')").where
    assert isinstance(where, InList) and where.negated
    assert ids("SELECT Id FROM Contact WHERE Id IN ('a', 'c')") == ["a", "c"]
    assert ids("SELECT Id FROM Contact WHERE Id NOT IN ('a', 'c')") == ["b", "d"]


def test_like_wildcards_match_case_insensitively_and_escaped_wildcards_match_literally():
    assert isinstance(parse("SELECT Id FROM Contact WHERE Email LIKE '%'").where, Like)
    assert ids("SELECT Id FROM Contact WHERE LastName LIKE 'SM%'") == ["b", "c"]
    assert ids("SELECT Id FROM Contact WHERE Email LIKE 's\\_1@%'") == ["c"]
    assert ids("SELECT Id FROM Contact WHERE Email LIKE '_b@%'") == ["a"]
    assert ids("SELECT Id FROM Contact WHERE LastName LIKE '100\\%'") == ["d"]


def test_datetime_literals_with_millis_and_offsets_compare_in_utc():
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00Z") == ["b", "c"]
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00.001Z") == ["b", "c"]
    # 2024-07-01T00:00:00+02:00 is 2024-06-30T22:00:00Z
    assert ids("SELECT Id FROM Contact WHERE SystemModstamp = 2024-07-01T00:00:00+02:00") == ["c"]
    literal = parse("SELECT Id FROM Contact WHERE SystemModstamp < 2024-01-01T01:00:00.5-01:00").where.value
    assert literal.value == datetime(2024, 1, 1, 2, 0, 0, 500000, tzinfo=UTC)


def test_date_literals_compare_with_date_fields():
    assert ids("SELECT Id FROM Contact WHERE Birthdate >= 1990-01-01") == ["c", "d"]


def test_boolean_and_numeric_literals_are_parsed():
    assert parse("SELECT Id FROM Contact WHERE IsDeleted = true").where == Comparison(
        "IsDeleted", "=", parse("SELECT Id FROM Contact WHERE IsDeleted = TRUE").where.value)
    assert parse("SELECT Id FROM Contact LIMIT 10").limit == 10
    assert ids("SELECT Id FROM Contact WHERE IsDeleted = true") == ["c"]


def test_order_by_several_fields_with_directions_and_nulls_placement():
    assert ids("SELECT Id FROM Contact ORDER BY LastName DESC, Id ASC") == ["b", "c", "a", "d"]
    assert ids("SELECT Id FROM Contact ORDER BY Email") == ["b", "a", "d", "c"]  # ASC puts nulls first
    assert ids("SELECT Id FROM Contact ORDER BY Email ASC NULLS LAST") == ["a", "d", "c", "b"]
    assert ids("SELECT Id FROM Contact ORDER BY Email DESC") == ["c", "d", "a", "b"]


def test_limit_and_offset_slice_the_ordered_result():
    assert ids("SELECT Id FROM Contact ORDER BY Id LIMIT 2") == ["a", "b"]
    assert ids("SELECT Id FROM Contact ORDER BY Id LIMIT 2 OFFSET 1") == ["b", "c"]


def test_count_query_selects_no_fields():
    query = parse("SELECT COUNT() FROM Contact WHERE IsDeleted = false")
    assert query.count_only and query.fields == []


@pytest.mark.parametrize("soql", [
    "SELECT FROM Contact",
    "SELECT Id Contact",
    "SELECT Id FROM Contact WHERE",
    "SELECT Id FROM Contact WHERE LastName = 'unterminated",
    "SELECT Id FROM Contact WHERE (LastName = 'x'",
    "SELECT Id FROM Contact WHERE LastName == 'x'",
    "SELECT Id FROM Contact WHERE LastName NOT 'x'",
    "SELECT Id FROM Contact LIMIT -1",
    "SELECT Id FROM Contact ORDER Id",
    "SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00",  # no zone
    "SELECT Id FROM Contact WHERE SystemModstamp > 2024-13-01T00:00:00Z",
    "SELECT Id FROM Contact trailing",
    "SELECT Id FROM Contact WHERE LastName = 'x' # comment",
    "",
])
def test_syntax_errors_are_malformed_query(soql):
    with pytest.raises(SoqlError) as caught:
        parse(soql)
    assert caught.value.error_code == "MALFORMED_QUERY"


def test_unknown_fields_anywhere_are_invalid_field():
    assert error_code("SELECT Id, Nope__c FROM Contact") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Contact WHERE Nope = 'x'") == "INVALID_FIELD"
    assert error_code("SELECT Id FROM Contact ORDER BY Nope") == "INVALID_FIELD"


def test_literals_of_the_wrong_type_for_the_field_are_malformed_query():
    assert error_code("SELECT Id FROM Contact WHERE LastName = 5") == "MALFORMED_QUERY"
    assert error_code("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'") == "MALFORMED_QUERY"
    assert error_code("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01") == "MALFORMED_QUERY"
    assert error_code("SELECT Id FROM Contact WHERE IsDeleted LIKE 'x'") == "MALFORMED_QUERY"


def test_other_objects_are_reported_as_invalid_type():
    assert error_code("SELECT Id FROM Account") == "INVALID_TYPE"


def test_syntax_errors_never_echo_string_literals():
    with pytest.raises(SoqlError) as caught:
        parse("SELECT Id FROM Contact WHERE Email = 'jane@example.com' 'second@example.com'")
    assert "example.com" not in caught.value.message and "a string literal" in caught.value.message
