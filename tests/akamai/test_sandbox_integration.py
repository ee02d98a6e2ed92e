"""Against the real sandbox process over HTTPS: the Akamai tenant is composed, seeded, loaded and signs events."""
from __future__ import annotations

import json

import duckdb
import jwt
import pytest

from clients.akamai import AkamaiClient
from ingestion.pipeline import run_akamai, run_b2c
from settings import load_settings
from tests.akamai.support import WebhookReceiver, fake_entities, serve


@pytest.mark.slow
def test_sandbox_serves_the_tenant_end_to_end(sandbox_factory, tmp_path):
    entities = fake_entities(30)
    receiver = WebhookReceiver()
    with serve(receiver.routes()) as listener_url:
        receiver.url = f"{listener_url}/webhooks/akamai"
        sandbox = sandbox_factory(akamai_users=entities, size=20, extra_args=("--webhook-url", receiver.url))
        env = sandbox.env
        assert env["AKAMAI_WEBHOOK_AUDIENCE"] == receiver.url
        settings = load_settings(env).akamai
        assert settings.ca_bundle  # the client trusts the sandbox CA, nothing is unverified

        warehouse = str(tmp_path / "warehouse.duckdb")
        run_akamai(settings, warehouse)
        run_b2c(load_settings(env).graph, warehouse)
        with duckdb.connect(warehouse, read_only=True) as con:
            assert con.execute("select count(*) from raw_akamai.users").fetchone() == (30,)
            columns = {schema: [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = 'users'"
                " order by ordinal_position", [schema]).fetchall()] for schema in ("raw_akamai", "raw_b2c")}
        assert columns["raw_akamai"] == columns["raw_b2c"]

        target = entities[0]["uuid"]
        with AkamaiClient(settings) as client:
            client.update_entity(target, {"crmContactId": "003000000000001AAA"})
        receiver.wait_for(lambda r: len(r.acknowledged()) == 1)

        token = receiver.acknowledged()[0]
        jwks = jwt.PyJWKClient(env["AKAMAI_WEBHOOK_JWKS_URL"], ssl_context=sandbox.ssl_context())
        claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                            audience=env["AKAMAI_WEBHOOK_AUDIENCE"], issuer=env["AKAMAI_WEBHOOK_ISSUER"])
        assert claims["events"]["entityUpdated"]["sub"] == target

        state = sandbox.state()["akamai"]["users"]
        assert next(u for u in state if u["uuid"] == target)["crmContactId"] == "003000000000001AAA"
        deliveries = sandbox.client.get(f"{sandbox.url}/__sandbox/akamai/webhooks").json()
        assert deliveries["counts"]["delivered"] == 1
        assert json.dumps(deliveries).count(entities[0]["email"]) == 0
