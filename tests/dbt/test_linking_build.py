"""End to end: synthetic identities and contacts -> raw tables -> `dbt build` (models, seed, snapshot, data tests
and unit tests) -> the marts behave as specified. One build per module; a second build checks history."""
from __future__ import annotations

import copy
from pathlib import Path

import duckdb
import orjson
import pytest

from sandbox.synthetic import DEFAULT_EXTENSIONS_APP_ID, TruthPair, generate
from sandbox.synthetic.build import MOBILE_APP_CLIENT, WEB_SHOP_CLIENT
from tests.dbt.dbt_cli import run_dbt
from tests.dbt.link_quality import measure
from tests.dbt.raw_loader import load_raw_tables, raw_tables

EXT = f"extension_{DEFAULT_EXTENSIONS_APP_ID.replace('-', '')}_"
SIZE = 1500


def _graph_user(uid: str, given: str, surname: str, email: str, consent: bool | None) -> dict:
    user = {"id": uid, "displayName": f"{given} {surname}", "givenName": given, "surname": surname,
            "mail": None, "otherMails": [], "mobilePhone": None, "businessPhones": [], "streetAddress": None,
            "city": None, "postalCode": None, "state": None, "country": "Germany", "accountEnabled": True,
            "createdDateTime": "2024-01-01T00:00:00Z",
            "identities": [{"signInType": "emailAddress", "issuer": "t", "issuerAssignedId": email}]}
    if consent is not None:
        user[EXT + "CrmSyncConsent"] = consent
    return user


def _contact(cid: str, first: str, last: str, email: str) -> dict:
    return {"Id": cid, "AccountId": "001000000000001AAA", "FirstName": first, "LastName": last, "Email": email,
            "Phone": None, "MobilePhone": None, "MailingStreet": None, "MailingCity": None,
            "MailingPostalCode": None, "MailingState": None, "MailingCountry": "Germany",
            "External_User_Id__c": None, "CreatedDate": "2024-01-01T00:00:00.000+0000",
            "LastModifiedDate": "2024-02-01T00:00:00.000+0000", "SystemModstamp": "2024-02-01T00:00:00.000+0000",
            "IsDeleted": False}


# hand-made edge cases on top of the synthetic data: (identity, contact) spelled differently in raw form
EDGE_USERS = [
    _graph_user("edge-accent", "José", "Müller", "J.O.S.E.Muller+Shop@googlemail.com", True),
    _graph_user("edge-nfc", "Zoe\u0301", "Dupont", "zoe.dupont@example.org", True),
]
EDGE_CONTACTS = [
    _contact("003EDGE0000000001", "jose", "MULLER", "josemuller@gmail.com"),
    _contact("003EDGE0000000002", "Zoé", "Dupont", " ZOE.DUPONT@example.org "),
]
# two sign-ups with one name and one address claim one contact equally: the review queue decides
CONTESTED_USERS = [_graph_user(f"edge-contested-{n}", "Sam", "Lee", "sam.lee@example.org", True) for n in (1, 2)]
CONTESTED_CONTACTS = [_contact("003EDGE0000000003", "Sam", "Lee", "sam.lee@example.org")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data = generate(SIZE, seed=11)
    workdir = tmp_path_factory.mktemp("linking")
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_raw_tables(con, raw_tables(data.users + copy.deepcopy(EDGE_USERS + CONTESTED_USERS),
                                        data.contacts + copy.deepcopy(EDGE_CONTACTS + CONTESTED_CONTACTS),
                                        data.akamai_users))
    env = {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"}
    run = run_dbt(["build"], workdir / "target", env)
    assert run.returncode == 0, run.output[-4000:]
    return data, warehouse, run, env, workdir


@pytest.fixture()
def con(built):
    with duckdb.connect(str(built[1]), read_only=True) as connection:
        yield connection


def test_build_runs_every_model_data_test_and_unit_test_successfully(built):
    run = built[2]
    kinds = {r["unique_id"].split(".")[0] for r in run.results}
    assert {"model", "test", "unit_test", "seed", "snapshot"} <= kinds
    assert run.failures() == []


def test_active_links_are_precise_and_complete_against_ground_truth(built, con):
    data = built[0]
    edge_truth = [TruthPair("b2c", u["id"], c["Id"], "email") for u, c in zip(EDGE_USERS, EDGE_CONTACTS)]
    consent = {**data.identity_consent, **{u["id"]: "granted" for u in EDGE_USERS}}
    quality = measure(con, data.truth + edge_truth, consent)
    assert quality.active_links > SIZE * 0.2
    assert quality.precision >= 0.999
    assert quality.recall >= 0.96  # small sample; bench/linking.py measures recall at scale


def test_identities_without_consent_get_no_active_link_and_no_contact_to_create(built, con):
    not_granted = {i for i, state in built[0].identity_consent.items() if state != "granted"}
    linked = {r[0] for r in con.execute(
        "select identity_id from marts.identity_contact_links where status = 'active'").fetchall()}
    to_create = {r[0] for r in con.execute("select identity_id from marts.contacts_to_create").fetchall()}
    assert not_granted and not (linked & not_granted)
    assert not (to_create & not_granted)


def test_withdrawn_consent_with_a_carried_id_is_kept_as_withdrawn_link(con):
    rows = con.execute("""
        select l.status, l.consent_state from marts.identity_contact_links as l
        join intermediate.int_identities as i using (identity_provider, identity_id)
        where i.consent_state = 'withdrawn'""").fetchall()
    assert rows, "the synthetic data has pre-linked identities whose consent was withdrawn"
    assert {status for status, _ in rows} == {"withdrawn"}


def test_family_mailboxes_and_same_name_strangers_are_never_linked(built, con):
    negatives = {(n.identity_id, n.contact_id): n.reason for n in built[0].negatives}
    assert {"family_mailbox", "same_name_stranger"} <= set(negatives.values())
    active = set(con.execute(
        "select identity_id, contact_id from marts.identity_contact_links where status = 'active'").fetchall())
    assert not (active & set(negatives))
    flagged = set(con.execute(
        "select identity_id, contact_id from marts.link_conflicts where reason = 'family_mailbox'").fetchall())
    assert flagged & {pair for pair, reason in negatives.items() if reason == "family_mailbox"}


def test_links_are_one_to_one_in_both_directions(con):
    assert con.execute("""select count(*) from (select identity_provider, identity_id, crm
        from marts.identity_contact_links where status = 'active' group by all having count(*) > 1)""").fetchone() == (0,)
    assert con.execute("""select count(*) from (select crm, contact_id
        from marts.identity_contact_links where status = 'active' group by all having count(*) > 1)""").fetchone() == (0,)


def test_accents_case_gmail_dots_and_tags_still_link_the_same_person(con):
    links = dict(con.execute("""select identity_id, contact_id || ':' || match_rule
        from marts.identity_contact_links where identity_id like 'edge-%' and status = 'active'""").fetchall())
    # the same mailbox with agreeing names is scored by the match model; the same valid address is the email rule's
    assert links == {"edge-accent": "003EDGE0000000001:match_model",
                     "edge-nfc": "003EDGE0000000002:email"}


def _compiled_reading(built, node_file: str, relation: str, rows: str) -> str:
    """The compiled SQL of a node (its file name, a glob) reading `rows` (a subquery) in place of `relation`."""
    compiled = next((built[4] / "target" / "compiled").rglob(node_file)).read_text()
    assert relation in compiled
    return compiled.replace(relation, rows)


def _contact_staging_over(built, raw_rows: str) -> str:
    """The compiled Salesforce staging model reading `raw_rows` in place of the raw contact table."""
    return _compiled_reading(built, "stg_salesforce__contacts.sql", '"warehouse"."raw_salesforce"."contact"', raw_rows)


def test_staging_trims_spaces_at_either_end_and_turns_blank_text_into_null(built, con):
    spaced = ("(select * replace ('  Anna.B@Example.org ' as email, '   ' as phone_e164, ' 003A ' as external_user_id, "
              "'  ' as mailing_postal_code, ' de ' as country_code, ' Calder  St 12' as mailing_street) "
              "from raw_salesforce.contact limit 1)")
    row = con.execute(f"select email, phone_e164, external_user_id, postal_code_key, country_code, street_key "
                      f"from ({_contact_staging_over(built, spaced)})").fetchone()
    assert row == ("anna.b@example.org", None, "003A", None, "DE", "calder st 12")


def test_a_street_on_two_lines_keeps_the_second_line_as_its_own_key(built, con):
    streets = {"12 Calder Cres\nRose Villa": ("12 calder cres", "rose villa", "12"),
               "12 Calder Cres\r\nRose Villa": ("12 calder cres", "rose villa", "12"),
               "\nRose Villa": (None, "rose villa", None),
               "12 Calder Cres": ("12 calder cres", None, "12")}
    values = ", ".join(f"('{street}')" for street in streets)
    one_row_per_street = (f"(select c.* replace (v.street as mailing_street) from (select * from "
                          f"raw_salesforce.contact limit 1) as c, (values {values}) as v(street))")
    keys = {street: (key, line_2, number) for street, key, line_2, number in con.execute(
        f"select street_address, street_key, street_line_2_key, street_number "
        f"from ({_contact_staging_over(built, one_row_per_street)})").fetchall()}
    assert keys == streets


def test_a_street_keys_alike_with_its_letters_spelt_out_or_accents_left_off(built, con):
    streets = {"Gudestraße 12": "gudestrasse 12", "Gudestrasse 12": "gudestrasse 12",
               "Ørestads Boulevard 5": "orestads boulevard 5", "ul. Łódzka 3": "ul lodzka 3",
               "Rue de l\u2019Église 4": "rue de l eglise 4", "Rue de l'Eglise 4": "rue de l eglise 4"}
    values = ", ".join("('" + street.replace("'", "''") + "')" for street in streets)
    one_row_per_street = (f"(select c.* replace (v.street as mailing_street) from (select * from "
                          f"raw_salesforce.contact limit 1) as c, (values {values}) as v(street))")
    keys = dict(con.execute(f"select street_address, street_key "
                            f"from ({_contact_staging_over(built, one_row_per_street)})").fetchall())
    assert keys == streets


def test_mailbox_keys_drop_gmail_dots_and_tags_and_need_exactly_one_inner_at_sign(built, con):
    expected = {
        "J.O.S.E.Muller+Shop@googlemail.com": "josemuller@gmail.com",
        "ann.lee+news@example.org": "ann.lee@example.org",
        "ann.lee@example.org": "ann.lee@example.org",
        "a@b@example.org": None,
        "@example.org": None,
        "ann@": None,
    }
    addresses = ", ".join(f"('{address}')" for address in expected)
    one_row_per_address = (f"(select c.* replace (v.address as email) from (select * from raw_salesforce.contact "
                           f"limit 1) as c, (values {addresses}) as v(address))")
    keys = dict(con.execute(f"select email, mailbox_key from ({_contact_staging_over(built, one_row_per_address)})"
                            ).fetchall())
    assert keys == {address.lower(): key for address, key in expected.items()}


def test_crm_duplicates_name_a_linked_survivor(con):
    rows = con.execute("""select d.surviving_contact_id, l.contact_id from marts.crm_duplicate_contacts as d
        left join marts.identity_contact_links as l
          on l.identity_id = d.identity_id and l.status = 'active'""").fetchall()
    assert rows and all(survivor == linked for survivor, linked in rows)


def test_the_golden_table_says_which_side_already_carries_the_other_id(con):
    flags = con.execute("""select
            l.identity_holds_contact_id, i.carried_contact_id is not distinct from l.contact_id,
            l.contact_holds_identity_id,
            case when c.contact_id is not null then c.external_user_id is not distinct from l.identity_id end
        from marts.identity_contact_links as l
        join intermediate.int_identities as i using (identity_provider, identity_id)
        left join intermediate.int_contacts as c
            on c.crm = l.crm and c.contact_id = l.contact_id and not c.is_deleted""").fetchall()
    assert {(identity_holds, contact_holds) for identity_holds, _, contact_holds, _ in flags} >= {
        (True, True), (True, False), (False, True), (False, False)}
    assert all(identity_holds == carried and contact_holds == holds
               for identity_holds, carried, contact_holds, holds in flags)


def test_every_active_link_missing_an_id_on_either_side_gets_a_push(con):
    missing = con.execute("""select count(*) from marts.identity_contact_links as l
        join intermediate.int_contacts as c using (crm, contact_id)
        where l.status = 'active' and c.external_user_id is distinct from l.identity_id""").fetchone()[0]
    pushes = con.execute("""select count(*) from marts.external_ids_to_push
        where target_system = 'salesforce' and reason = 'link' and value is not null""").fetchone()[0]
    assert missing > 0 and pushes == missing


def test_a_consented_identity_gets_a_contact_to_create_unless_it_is_linked_or_under_review(con):
    rows = con.execute("""
        select
            exists (select 1 from marts.identity_contact_links as l
                    where l.status = 'active' and l.identity_provider = i.identity_provider
                        and l.identity_id = i.identity_id) as linked,
            exists (select 1 from intermediate.int_link_assignments as a
                    where a.outcome = 'conflict' and a.identity_provider = i.identity_provider
                        and a.identity_id = i.identity_id) as under_review,
            (select count(*) from marts.contacts_to_create as c
             where c.identity_provider = i.identity_provider and c.identity_id = i.identity_id) as to_create
        from intermediate.int_identities as i
        where i.consent_state = 'granted' and not i.is_deleted""").fetchall()
    assert {(linked, under_review) for linked, under_review, _ in rows} >= {
        (True, False), (False, True), (False, False)}
    assert all(to_create == (0 if linked or under_review else 1) for linked, under_review, to_create in rows)


def test_external_ids_to_push_is_a_view_that_follows_the_golden_table(con):
    assert con.execute("""select table_type from information_schema.tables
        where table_schema = 'marts' and table_name = 'external_ids_to_push'""").fetchone() == ("VIEW",)
    # every row still names a link of the golden table
    orphans = con.execute("""select count(*) from marts.external_ids_to_push as p
        where not exists (select 1 from marts.identity_contact_links as l
            where l.identity_provider = p.identity_provider and l.identity_id = p.identity_id
                and l.crm = p.crm and l.contact_id = p.contact_id)""").fetchone()[0]
    assert orphans == 0


def test_the_push_list_null_check_finds_a_row_missing_any_required_column(built, con):
    def null_check_over(rows: str) -> str:
        return _compiled_reading(built, "idlink_not_null_columns_extern*.sql",
                                 '"warehouse"."marts"."external_ids_to_push"', rows)

    for column in ("target_id", "reason", "contact_id"):
        one_row_missing_it = (f"(select * replace (cast(null as varchar) as {column}) "
                              f"from marts.external_ids_to_push limit 1)")
        assert len(con.execute(null_check_over(one_row_missing_it)).fetchall()) == 1
    assert con.execute(null_check_over("marts.external_ids_to_push")).fetchall() == []


def test_marts_expose_the_documented_columns(con):
    def columns(table: str) -> list[str]:
        return [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = ? order by ordinal_position", [table]).fetchall()]

    assert columns("identity_contact_links") == [
        "identity_provider", "identity_id", "crm", "contact_id", "match_rule", "match_confidence", "status",
        "consent_state", "identity_holds_contact_id", "contact_holds_identity_id", "first_seen_at", "last_seen_at",
        "linked_at"]
    assert columns("external_ids_to_push") == [
        "target_system", "target_id", "attribute", "value", "reason", "identity_provider", "identity_id", "crm",
        "contact_id", "client_id"]
    assert columns("link_conflicts") == [
        "identity_provider", "identity_id", "crm", "contact_id", "match_rule", "match_confidence", "reason",
        "detected_at"]
    assert columns("crm_duplicate_contacts") == [
        "crm", "surviving_contact_id", "duplicate_contact_id", "identity_provider", "identity_id", "reason"]
    assert columns("contacts_to_create") == [
        "identity_provider", "identity_id", "crm", "email", "given_name", "family_name", "phone_e164",
        "street_address", "city", "postal_code", "country_code", "client_id", "created_at", "email_verified",
        "last_login_at", "last_updated_at", "marketing_opt_out"]
    assert columns("consent_exclusions") == [
        "identity_provider", "identity_id", "purpose", "state", "given_at", "expires_at", "excluded_from"]
    assert columns("contact_fields_to_push") == [
        "crm", "contact_id", "identity_provider", "identity_id", "email", "given_name", "family_name", "phone_e164",
        "street_address", "city", "postal_code", "country_code", "client_id", "created_at", "email_verified",
        "last_login_at", "last_updated_at"]


def test_identities_carry_the_client_they_registered_through(built, con):
    data = built[0]
    expected = {u["id"]: u.get(EXT + "SignUpClientId") for u in data.users}
    first_client = {}
    for entity in data.akamai_users:
        clients = sorted(entity["clients"], key=lambda c: c["firstLogin"])
        first_client[entity["uuid"]] = clients[0]["clientId"] if clients else None
    expected.update(first_client)
    rows = dict(con.execute("select identity_id, client_id from intermediate.int_identities "
                            "where identity_provider in ('b2c', 'akamai')").fetchall())
    assert {k: rows.get(k) for k in expected} == expected
    assert {None, WEB_SHOP_CLIENT, MOBILE_APP_CLIENT} == set(expected.values())
    # Graph's user has no verified flag nor sign-in times (Akamai's entity has: tests/akamai/test_ingestion.py)
    b2c = con.execute("select count(*), count(email_verified), count(last_login_at), count(created_at) "
                      "from intermediate.int_identities where identity_provider = 'b2c'").fetchone()
    assert b2c[1] == b2c[2] == 0 and b2c[3] == b2c[0]


def test_a_provider_that_was_never_loaded_contributes_zero_rows(con):
    assert con.execute("select count(*) from staging.stg_akamai__users").fetchone() == (0,)


def test_rebuild_after_withdrawal_keeps_history_and_first_seen(built):
    _, warehouse, _, env, workdir = built
    with duckdb.connect(str(warehouse)) as con:
        identity_id, contact_id, first_seen = con.execute("""select identity_id, contact_id, first_seen_at
            from marts.identity_contact_links where status = 'active' and identity_id not like 'edge-%'
            order by identity_id limit 1""").fetchone()
        con.execute("update raw_b2c.users set custom_attributes = ? where id = ?",
                    [orjson.dumps({"CrmSyncConsent": False}).decode(), identity_id])
        con.execute("update raw_salesforce.contact set external_user_id = ? where id = ?", [identity_id, contact_id])

    run = run_dbt(["build", "--exclude", "resource_type:unit_test", "resource_type:test"],
                  Path(workdir) / "target2", env)
    assert run.returncode == 0, run.output[-4000:]

    with duckdb.connect(str(warehouse), read_only=True) as con:
        status, consent, kept_first_seen = con.execute("""select status, consent_state, first_seen_at
            from marts.identity_contact_links where identity_id = ?""", [identity_id]).fetchone()
        assert (status, consent, kept_first_seen) == ("withdrawn", "withdrawn", first_seen)
        assert con.execute("""select value, reason from marts.external_ids_to_push
            where target_system = 'salesforce' and target_id = ?""", [contact_id]).fetchall() == [(None, "withdrawn")]
        history = con.execute("""select status from snapshots.identity_contact_links_snapshot
            where identity_id = ? order by dbt_valid_from""", [identity_id]).fetchall()
        assert history == [("active",), ("withdrawn",)]


def test_link_summary_reports_counts_only(con):
    from orchestration.defs.linking import link_summary
    from warehouse import DuckDBConnection

    summary = link_summary(DuckDBConnection(con))
    active = con.execute(
        "select count(*) from marts.identity_contact_links where status = 'active'").fetchone()[0]
    assert summary["links_active"] == active > 0
    assert 0 < summary["match_rate"] <= 1
    assert summary["consent_excluded_identities"] > 0
    assert sum(summary["links_by_rule"].data.values()) == active
    assert summary["auto_links"] == summary["deterministic_links"] + summary["model_links"] == active
    # review items are the review queue's uncertain pairs, as marts.match_decision_bands counts them
    assert summary["review_items"] == con.execute(
        "select count(*) from marts.link_conflicts where reason = 'uncertain_match'").fetchone()[0]
    distribution = summary["match_probability_distribution"].value
    scored = con.execute("select count(*) from intermediate.int_link_candidates where model_version is not null"
                         ).fetchone()[0]
    # one row per probability bin, counts only: the counts add up to every pair the model scored
    cells = [line.split("|")[2:4] for line in distribution.splitlines()[2:]]
    assert sum(int(link) + int(review) for link, review in cells) == scored > 0
    assert sum(summary["links_new_by_rule"].data.values()) == summary["links_new"]
    assert sum(summary["links_active_by_crm"].data.values()) == active
    for key, value in summary.items():  # numbers, or counts by rule, CRM, reason or bin: never an id or a value
        if key == "match_probability_distribution":
            continue  # its cells are counted above
        counts = value.data if hasattr(value, "data") else {key: value}
        assert all(isinstance(n, (int, float)) for n in counts.values()), key
