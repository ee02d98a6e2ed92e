"""The Akamai reverse-ETL writer puts CRM contact ids on Identity Cloud users through the shared framework."""
from __future__ import annotations

import duckdb
import pytest

from clients.akamai import AkamaiClient
from clients.http import ApiError
from reverse_etl.akamai_writer import push_akamai
from reverse_etl.mapping import FieldMapping, MappingError, TargetMapping
from sandbox import akamai as sandbox_akamai
from sandbox.context import SandboxConfig
from settings import AkamaiSettings
from tests.akamai.support import make_warehouse

GONE = "00000000-0000-0000-0000-00000000dead"


@pytest.fixture
def settings(tenant_url) -> AkamaiSettings:
    return AkamaiSettings(base_url=f"{tenant_url}/akamai", client_id=SandboxConfig.client_id,
                          client_secret=SandboxConfig.client_secret, timeout_s=5, retry_max_s=5)


def table(path: str, sql: str) -> list[tuple]:
    with duckdb.connect(path, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_push_writes_and_clears_contact_ids_and_dead_letters_gone_identities(tmp_path, ctx, settings, seeded):
    seeded[1]["crmContactId"] = "003OLD"
    warehouse = str(tmp_path / "w.duckdb")
    make_warehouse(warehouse, [
        ("akamai", seeded[0]["uuid"], "CrmContactId", "003000000000001AAA"),
        ("akamai", seeded[1]["uuid"], "CrmContactId", None),
        ("akamai", GONE, "CrmContactId", "003000000000002AAA"),
        ("akamai", seeded[2]["uuid"], "FavouriteColour", "blue"),
        ("b2c", "b2c-user-1", "CrmContactId", "003000000000003AAA"),
    ])
    result = push_akamai(warehouse, settings, FieldMapping(), "run-1")

    users = sandbox_akamai.tenant(ctx).by_uuid
    assert users[seeded[0]["uuid"]]["crmContactId"] == "003000000000001AAA"
    assert users[seeded[1]["uuid"]]["crmContactId"] is None
    assert "FavouriteColour" not in users[seeded[2]["uuid"]]
    assert (result.attempted, result.succeeded, result.dead_lettered, result.invalid) == (3, 2, 2, 1)
    assert dict(table(warehouse, "select record_key, error_code from reverse_etl.dead_letters")) == {
        f"{GONE}:crmContactId": "record_not_found", f"{seeded[2]['uuid']}:FavouriteColour": "UNMAPPED_ATTRIBUTE"}
    logged = table(warehouse, "select record_key, outcome, error_message from reverse_etl.sync_log")
    assert len(logged) == 4
    assert not any(seeded[0]["email"] in str(row) or "003000000000001AAA" in str(row) for row in logged)


def test_second_push_sends_nothing_that_was_already_accepted(tmp_path, ctx, settings, seeded):
    warehouse = str(tmp_path / "w.duckdb")
    make_warehouse(warehouse, [("akamai", seeded[0]["uuid"], "CrmContactId", "003000000000001AAA")])
    push_akamai(warehouse, settings, FieldMapping(), "run-1")
    again = push_akamai(warehouse, settings, FieldMapping(), "run-2")
    assert (again.attempted, again.skipped, again.api_calls) == (0, 1, 0)


def test_transient_failures_stay_pending_and_are_sent_again_next_run(tmp_path, ctx, settings, seeded,
                                                                     monkeypatch):
    warehouse = str(tmp_path / "w.duckdb")
    make_warehouse(warehouse, [("akamai", seeded[0]["uuid"], "CrmContactId", "003000000000001AAA")])

    def unavailable(self, uuid, attributes):
        raise ApiError("POST /entity.update still failing with HTTP 503", status=503, retryable=True)

    with monkeypatch.context() as patch:
        patch.setattr(AkamaiClient, "update_entity", unavailable)
        first = push_akamai(warehouse, settings, FieldMapping(), "run-1")
    assert (first.attempted, first.failed, first.dead_lettered, first.pending_after) == (1, 1, 0, 1)
    assert table(warehouse, "select record_key from reverse_etl.pending") == [(f"{seeded[0]['uuid']}:crmContactId",)]

    second = push_akamai(warehouse, settings, FieldMapping(), "run-2")
    assert (second.attempted, second.succeeded, second.pending_after) == (1, 1, 0)
    assert sandbox_akamai.tenant(ctx).by_uuid[seeded[0]["uuid"]]["crmContactId"] == "003000000000001AAA"


def test_refused_credentials_never_dead_letter_records(tmp_path, ctx, settings, seeded, monkeypatch):
    warehouse = str(tmp_path / "w.duckdb")
    make_warehouse(warehouse, [("akamai", seeded[0]["uuid"], "CrmContactId", "003000000000001AAA")])

    def refused(self, uuid, attributes):
        raise ApiError("POST /entity.update failed: invalid_client_credentials (code 402)", status=401,
                       code="invalid_client_credentials")

    monkeypatch.setattr(AkamaiClient, "update_entity", refused)
    for run in range(4):
        result = push_akamai(warehouse, settings, FieldMapping(), f"run-{run}", max_attempts=3)
        assert result.dead_lettered == 0 and result.pending_after == 1


def test_mapping_target_names_the_attribute_and_unknown_attributes_fail_before_writing(tmp_path, ctx, settings,
                                                                                       seeded):
    warehouse = str(tmp_path / "w.duckdb")
    make_warehouse(warehouse, [("akamai", seeded[0]["uuid"], "CrmContactId", "003000000000001AAA")])
    mapping = FieldMapping.for_every_client({"akamai": TargetMapping(type="akamai",
                                                                     fields={"crmContactId": "crmContactID"})})
    with pytest.raises(MappingError, match="crmContactID"):
        push_akamai(warehouse, settings, mapping, "run-1")
    assert "crmContactId" not in sandbox_akamai.tenant(ctx).by_uuid[seeded[0]["uuid"]]
