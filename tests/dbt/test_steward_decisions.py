"""Steward decisions (python -m stewardship) override the match model and the rules, keep decided pairs out of the
review queue, and survive rebuilds and retraining: synthetic data -> dbt build -> decisions -> rebuild, retrain,
rebuild."""
from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from sandbox.synthetic import generate
from stewardship import Decision, DecisionError, list_decisions, record_decision
from tests.dbt.dbt_cli import REPO, run_dbt
from tests.dbt.raw_loader import load_raw_tables, raw_tables
from warehouse import Warehouse

BUILD = ["build", "--exclude", "resource_type:unit_test"]


def _active(con, identity_id: str, contact_id: str) -> str | None:
    row = con.fetchone("""select match_rule from marts.identity_contact_links where status = 'active'
        and identity_id = ? and contact_id = ?""", [identity_id, contact_id])
    return row[0] if row else None


def _in_review(con, identity_id: str, contact_id: str) -> bool:
    return con.scalar("select count(*) from marts.link_conflicts where identity_id = ? and contact_id = ?",
                      [identity_id, contact_id]) > 0


@pytest.fixture(scope="module")
def decided(tmp_path_factory):
    data = generate(400, seed=5)
    workdir = tmp_path_factory.mktemp("stewards")
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, raw_tables(data.users, data.contacts, data.akamai_users))
    env = {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"}
    first = run_dbt(BUILD, workdir / "target", env)
    assert first.returncode == 0, first.output[-4000:]
    with Warehouse(warehouse).connect() as con:
        model_link, rule_link = (con.fetchone(f"""select identity_provider, identity_id, crm, contact_id
            from marts.identity_contact_links where status = 'active' and match_rule {op} 'match_model'
            order by identity_id limit 1""") for op in ("=", "<>"))
        # a consented identity and a contact nobody links: the model found no likely pair for them
        loner = con.fetchone("""select i.identity_provider, i.identity_id from intermediate.int_identities as i
            where i.consent_state = 'granted' and not i.is_deleted and not exists (
                select 1 from marts.identity_contact_links as l where l.identity_id = i.identity_id)
            order by i.identity_id limit 1""")
        orphan = con.fetchone("""select c.crm, c.contact_id from intermediate.int_contacts as c
            where not c.is_deleted and c.external_user_id is null and not exists (
                select 1 from marts.identity_contact_links as l where l.contact_id = c.contact_id)
            and not exists (select 1 from marts.link_conflicts as r where r.contact_id = c.contact_id)
            order by c.contact_id limit 1""")
        record_decision(con, Decision(*model_link, "unlink", "steward.a", "two people, one mailbox"))
        record_decision(con, Decision(*rule_link, "never_link", "steward.b", "a colleague's address"))
    # the documented command records the third one
    command = subprocess.run(
        [sys.executable, "-m", "stewardship", "decide", "link", "--identity", ":".join(loner),
         "--contact", ":".join(orphan), "--by", "steward.c", "--reason", "confirmed by phone",
         "--warehouse", str(warehouse)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert command.returncode == 0, command.stderr
    second = run_dbt(BUILD, workdir / "target", env)
    assert second.returncode == 0, second.output[-4000:]
    pairs = {"unlinked": model_link, "never": rule_link, "linked": (*loner, *orphan)}
    return warehouse, workdir, env, pairs


@pytest.fixture()
def con(decided):
    with Warehouse(decided[0]).connect(read_only=True) as connection:
        yield connection


def test_an_unlinked_pair_is_neither_linked_nor_reviewed_again(decided, con):
    _, identity_id, _, contact_id = decided[3]["unlinked"]
    assert _active(con, identity_id, contact_id) is None
    assert not _in_review(con, identity_id, contact_id)


def test_never_link_overrides_a_deterministic_rule(decided, con):
    _, identity_id, _, contact_id = decided[3]["never"]
    assert _active(con, identity_id, contact_id) is None
    assert not _in_review(con, identity_id, contact_id)


def test_a_steward_link_links_a_pair_the_model_did_not(decided, con):
    _, identity_id, _, contact_id = decided[3]["linked"]
    assert _active(con, identity_id, contact_id) == "steward_link"


def test_the_command_lists_the_decisions_in_force_with_who_and_why(decided):
    listed = subprocess.run([sys.executable, "-m", "stewardship", "list", "--warehouse", str(decided[0])],
                            cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split('"decided_by":"')[1].split('"')[0] for line in listed.stdout.splitlines()) == [
        "steward.a", "steward.b", "steward.c"]


def test_a_decision_without_a_reason_or_on_an_unknown_pair_is_refused(decided):
    warehouse, _, _, pairs = decided
    with Warehouse(warehouse).connect() as con:
        with pytest.raises(DecisionError, match="why"):
            record_decision(con, Decision(*pairs["linked"], "never_link", "steward.d", " "))
        with pytest.raises(DecisionError, match="no identity"):
            record_decision(con, Decision("b2c", "nobody", "salesforce", pairs["linked"][3], "link", "s", "r"))
        with pytest.raises(DecisionError, match="no active link"):
            record_decision(con, Decision(*pairs["unlinked"], "unlink", "steward.d", "again"))


def test_decisions_survive_retraining_and_the_next_build(decided):
    warehouse, workdir, env, pairs = decided
    trained = run_dbt(["run-operation", "train_match_model"], workdir / "target", env)
    assert trained.returncode == 0, trained.output[-4000:]
    rebuilt = run_dbt(BUILD, workdir / "target", env)
    assert rebuilt.returncode == 0, rebuilt.output[-4000:]
    with Warehouse(warehouse).connect(read_only=True) as con:
        assert con.scalar("select max(version) from match_model.versions") >= 2
        assert len(list_decisions(con, history=True)) == 3
        for name in ("unlinked", "never"):
            _, identity_id, _, contact_id = pairs[name]
            assert _active(con, identity_id, contact_id) is None, name
        _, identity_id, _, contact_id = pairs["linked"]
        assert _active(con, identity_id, contact_id) == "steward_link"
