"""Publishing to DuckDB files: one file per role, swapped in atomically, never blocked by a reader, and the
analyst's and compliance officer's files hold no personal field in clear."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import duckdb
import pytest

from publishing import ANALYST, COMPLIANCE, STEWARD, PublishError, publish_files
from tests.publishing.support import build_warehouse


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("publishing"))


@pytest.fixture
def files(tmp_path):
    return {ANALYST: tmp_path / "analyst.duckdb", COMPLIANCE: tmp_path / "compliance.duckdb",
            STEWARD: tmp_path / "steward.duckdb"}


def _tables(path) -> dict[str, list[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("select table_schema, table_name from information_schema.tables "
                           "order by 1, 2").fetchall()
    found: dict[str, list[str]] = {}
    for schema, name in rows:
        found.setdefault(schema, []).append(name)
    return found


def _string_values(path) -> set[str]:
    values: set[str] = set()
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                              "where data_type = 'VARCHAR'").fetchall()
        for schema, table, column in columns:
            values.update(str(v).lower() for (v,) in con.execute(
                f'select distinct "{column}" from "{schema}"."{table}" where "{column}" is not null').fetchall())
    return values


def test_each_role_gets_a_file_with_exactly_its_schemas(built, files):
    publish_files(built.path, files, "run-1", "salt")
    assert set(_tables(files[ANALYST])) == {"links"}
    assert set(_tables(files[COMPLIANCE])) == {"audit"}
    assert set(_tables(files[STEWARD])) == {"links", "personal"}
    assert {"identity_contact_links", "link_conflicts", "crm_duplicate_contacts", "contacts_to_create",
            "link_history", "sync_outcomes", "publication"} <= set(_tables(files[ANALYST])["links"])


def test_published_tables_carry_the_run_and_time_they_came_from(built, files):
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-42", "salt")
    with duckdb.connect(str(files[ANALYST]), read_only=True) as con:
        runs = con.execute("select distinct published_run_id from links.identity_contact_links").fetchall()
        published = con.execute("select relation, row_count, published_run_id from links.publication "
                                "where relation = 'identity_contact_links'").fetchone()
        links = con.execute("select count(*) from links.identity_contact_links").fetchone()[0]
    assert runs == [("run-42",)]
    assert published == ("identity_contact_links", links, "run-42")
    assert links > 0


def test_the_analyst_and_compliance_files_hold_no_personal_value_in_clear(built, files):
    publish_files(built.path, files, "run-1", "salt")
    personal = built.personal_values()
    emails = built.emails()
    for role in (ANALYST, COMPLIANCE):
        values = _string_values(files[role])
        assert not values & personal, f"{role.name}: personal values in clear"
        assert not [v for v in values for e in emails if e in v], f"{role.name}: an email inside a value"
        raw = files[role].read_bytes().lower()
        assert not [e for e in emails if e.encode() in raw], f"{role.name}: an email in the file's bytes"
    # the steward file is where they are in full
    assert _string_values(files[STEWARD]) & emails


def test_personal_fields_are_masked_for_reading_and_keyed_for_joining(built, files):
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-1", "salt-a")
    with duckdb.connect(str(files[ANALYST]), read_only=True) as con:
        masked, key = con.execute("select email_masked, email_key from links.contacts_to_create "
                                  "where email_masked is not null limit 1").fetchone()
        first = dict(con.execute("select identity_id, email_key from links.contacts_to_create").fetchall())
    assert "***@" in masked and len(key) == 64
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-2", "salt-a")
    with duckdb.connect(str(files[ANALYST]), read_only=True) as con:
        same_salt = dict(con.execute("select identity_id, email_key from links.contacts_to_create").fetchall())
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-3", None)
    with duckdb.connect(str(files[ANALYST]), read_only=True) as con:
        fresh_salt = dict(con.execute("select identity_id, email_key from links.contacts_to_create").fetchall())
    assert same_salt == first, "with the configured salt, keys join across publications"
    assert not set(fresh_salt.values()) & set(first.values()), "without it, each publication has its own keys"


def test_the_salt_is_nowhere_in_the_warehouse_or_dbt_artifacts(built, files):
    publish_files(built.path, files, "run-1", "a-very-secret-salt")
    for path in [built.path, *files.values(), *built.target.rglob("*")]:
        if path.is_file():
            assert b"a-very-secret-salt" not in path.read_bytes(), path


def test_only_the_steward_file_is_private_to_its_owner(built, files):
    publish_files(built.path, files, "run-1", "salt")
    assert stat.S_IMODE(files[STEWARD].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[ANALYST].stat().st_mode) == 0o644
    assert sorted(p.name for p in files[ANALYST].parent.iterdir()) == sorted(f.name for f in files.values())


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.execute("select distinct published_run_id from links.identity_contact_links").fetchone()[0],
          flush=True)
    sys.stdin.readline()  # hold the file open until told
    print(con.execute("select distinct published_run_id from links.identity_contact_links").fetchone()[0],
          flush=True)
""")


def test_a_reader_holding_the_file_keeps_its_run_and_never_blocks_the_next_publication(built, files):
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-1", "salt")
    reader = subprocess.Popen([sys.executable, "-c", READER, str(files[ANALYST])], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "run-1"
        publish_files(built.path, {ANALYST: files[ANALYST]}, "run-2", "salt")
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "run-1", "an open reader sees one complete run"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    with duckdb.connect(str(files[ANALYST]), read_only=True) as con:
        assert con.execute("select distinct published_run_id from links.identity_contact_links").fetchone()[0] \
            == "run-2"


def test_a_failed_publication_leaves_the_previous_file_and_nothing_half_written(built, files, tmp_path):
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-1", "salt")
    before = files[ANALYST].read_bytes()
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(PublishError, match="build the dbt project first"):
        publish_files(empty, {ANALYST: files[ANALYST]}, "run-2", "salt")
    assert files[ANALYST].read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analyst.duckdb", "empty.duckdb"]


def test_a_view_added_to_a_published_schema_is_published_without_code_change(built, files, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(built.path.read_bytes())
    with duckdb.connect(str(copy)) as con:
        con.execute("create view links_views.rules_in_use as select distinct match_rule "
                    "from marts.identity_contact_links")
    publish_files(copy, {ANALYST: files[ANALYST]}, "run-1", "salt")
    assert "rules_in_use" in _tables(files[ANALYST])["links"]


EVIDENCE = ("identity_provider, identity_id, crm, contact_id, model_version, decision, match_probability, "
            "match_weight, position, comparison, level, level_name, level_weight, term_frequency_adjustment, weight")


def test_link_evidence_is_a_view_over_one_row_per_scored_pair_with_the_warehouse_rows(built, files, tmp_path):
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-7", "salt")
    with duckdb.connect() as con:  # attached under another name than the file's: the view finds its tables
        con.execute(f"attach '{files[ANALYST]}' as elsewhere (read_only)")
        con.execute(f"attach '{built.path}' as warehouse (read_only)")
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_catalog = 'elsewhere' and table_schema = 'links'").fetchall())
        pairs = con.execute("select count(*) from elsewhere.links.link_scores").fetchone()[0]
        comparisons = con.execute("select count(distinct comparison) from elsewhere.links.comparison_levels "
                                  "where position > 0").fetchone()[0]
        published = sorted(con.execute(f"select {EVIDENCE} from elsewhere.links.link_evidence").fetchall(),
                           key=repr)
        built_rows = sorted(con.execute(f"select {EVIDENCE} from warehouse.marts.link_evidence").fetchall(),
                            key=repr)
        runs = con.execute("select distinct published_run_id from elsewhere.links.link_evidence").fetchall()
    assert (kinds["link_evidence"], kinds["link_scores"], kinds["comparison_levels"]) == \
        ("VIEW", "BASE TABLE", "BASE TABLE")
    assert pairs > 0 and len(published) == pairs * (comparisons + 1), "one row per pair and comparison + prior"
    assert published == built_rows
    assert runs == [("run-7",)]


def test_a_published_view_that_cannot_be_created_fails_the_publication_and_replaces_nothing(built, files,
                                                                                           tmp_path):
    publish_files(built.path, {ANALYST: files[ANALYST]}, "run-1", "salt")
    before = files[ANALYST].read_bytes()
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(built.path.read_bytes())
    with duckdb.connect(str(copy)) as con:
        con.execute("insert into publishing.views values ('links', 'broken', 'select * from links.nowhere', "
                    "current_timestamp)")
    with pytest.raises(PublishError, match="links.broken"):
        publish_files(copy, {ANALYST: files[ANALYST]}, "run-2", "salt")
    assert files[ANALYST].read_bytes() == before


def test_the_environment_is_not_needed_to_publish(built, files, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("ANALYST_", "STEWARD_", "COMPLIANCE_")):
            monkeypatch.delenv(name)
    assert [p.role for p in publish_files(built.path, files, "run-1")] == ["analyst", "compliance", "steward"]
