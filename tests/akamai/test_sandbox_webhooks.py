"""Every Entity API change is delivered as a signed Security Event Token, redelivered until acknowledged."""
from __future__ import annotations

import json
import time

import jwt
import pytest

from sandbox import akamai as sandbox_akamai


def verify(token: str, jwks: dict, audience: str) -> dict:
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return jwt.decode(token, key=key.key, algorithms=["RS256"], audience=audience, issuer="Akamai Identity Cloud")


def jwks_of(api) -> dict:
    response = api.get("/akamai/webhooks/jwks")
    assert response.status_code == 200
    return response.json()


def test_create_update_delete_each_deliver_one_signed_set_that_verifies_against_the_jwks(api, ctx, seeded, receiver):
    updated, deleted = seeded[0]["uuid"], seeded[1]["uuid"]
    created = api.post("/akamai/entity.create", data={
        "type_name": "user", "attributes": json.dumps({"email": "new@example.org"})}).json()["uuid"]
    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "Bo"}'})
    api.post("/akamai/entity.delete", data={"type_name": "user", "uuid": seeded[1]["uuid"]})
    receiver.wait_for(lambda r: len(r.acknowledged()) == 3)

    jwks = jwks_of(api)
    events = {}
    for content_type, token, _ in receiver.received:
        assert content_type == "application/secevent+jwt"
        header = jwt.get_unverified_header(token)
        assert (header["alg"], header["typ"]) == ("RS256", "secevent+jwt")
        claims = verify(token, jwks, ctx.config.webhook_url)
        assert set(claims) >= {"iss", "aud", "iat", "jti", "events"}
        [(name, event)] = claims["events"].items()
        assert event["entityType"] == "user"
        assert event["globalSub"].endswith(f"/user/{event['sub']}")
        events[name] = event["sub"]
    assert events == {"entityCreated": created, "entityUpdated": updated, "entityDeleted": deleted}
    jtis = [jwt.decode(t, options={"verify_signature": False})["jti"] for _, t, _ in receiver.received]
    assert len(set(jtis)) == 3


def test_sets_carry_no_profile_data(api, ctx, seeded, receiver):
    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "Zebedee"}'})
    receiver.wait_for(lambda r: len(r.acknowledged()) == 1)
    payload = json.dumps(jwt.decode(receiver.acknowledged()[0], options={"verify_signature": False}))
    assert "Zebedee" not in payload and seeded[0]["email"] not in payload


def test_api_answers_before_a_slow_listener_acknowledges(api, ctx, seeded, receiver):
    receiver.delay_s = 1.5
    started = time.monotonic()
    response = api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "Bo"}'})
    assert response.json()["stat"] == "ok"
    assert time.monotonic() - started < 0.5
    receiver.wait_for(lambda r: len(r.acknowledged()) == 1)


def test_non_2xx_answers_are_redelivered_with_the_same_token_until_acknowledged(api, ctx, seeded, receiver):
    receiver.script.extend([500, 503, 404])
    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "Bo"}'})
    receiver.wait_for(lambda r: len(r.acknowledged()) == 1)
    assert [status for _, _, status in receiver.received] == [500, 503, 404, 202]
    assert len({token for _, token, _ in receiver.received}) == 1
    snapshot = api.get("/__sandbox/akamai/webhooks").json()
    assert snapshot["counts"]["delivered"] == 1 and snapshot["counts"]["retried"] == 3
    assert snapshot["deliveries"][0]["attempts"] == 4


def test_connection_errors_are_retried_and_exhaustion_lands_in_failed_until_redelivered(api, ctx, seeded, receiver):
    live_url = ctx.config.webhook_url
    ctx.config.webhook_url = "http://127.0.0.1:9/closed"  # nothing listens: connection refused
    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "Bo"}'})
    sender = sandbox_akamai.tenant(ctx).sender
    assert sender.wait_idle(timeout_s=10)
    snapshot = api.get("/__sandbox/akamai/webhooks").json()
    assert snapshot["counts"]["failed"] == 1
    assert snapshot["deliveries"][0]["last_error"] == "ConnectError"
    assert snapshot["deliveries"][0]["attempts"] == 5  # max_attempts from the test environment

    ctx.config.webhook_url = live_url
    assert api.post("/__sandbox/akamai/webhooks/redeliver").json() == {"requeued": 1}
    receiver.wait_for(lambda r: len(r.acknowledged()) == 1)


def test_retry_schedule_doubles_from_first_retry_up_to_the_cap():
    policy = sandbox_akamai.DeliveryPolicy(first_retry_s=0.5, max_retry_s=4.0)
    assert [policy.delay_before(n) for n in range(2, 8)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_key_rotation_changes_kid_and_jwks_keeps_the_previous_key_unless_told_not_to(api, ctx, seeded, receiver):
    old_kid = jwks_of(api)["keys"][0]["kid"]
    new_kid = api.post("/__sandbox/akamai/rotate-key").json()["kid"]
    assert new_kid != old_kid
    assert [k["kid"] for k in jwks_of(api)["keys"]] == [new_kid, old_kid]

    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "Bo"}'})
    receiver.wait_for(lambda r: len(r.acknowledged()) == 1)
    token = receiver.acknowledged()[0]
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    verify(token, jwks_of(api), ctx.config.webhook_url)

    newest = api.post("/__sandbox/akamai/rotate-key?keep_previous=false").json()["kid"]
    assert [k["kid"] for k in jwks_of(api)["keys"]] == [newest]
    with pytest.raises(KeyError):
        verify(token, jwks_of(api), ctx.config.webhook_url)


def test_config_route_redirects_deliveries_and_tunes_the_policy(api, ctx, seeded, receiver):
    ctx.config.webhook_url = ""
    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "A"}'})
    assert api.get("/__sandbox/akamai/webhooks").json()["counts"]["enqueued"] == 0  # nowhere to deliver

    answer = api.post("/__sandbox/akamai/webhooks/config", json={"url": receiver.url, "max_attempts": 3}).json()
    assert answer["max_attempts"] == 3 and answer["url_configured"]
    api.post("/akamai/entity.update", data={
        "type_name": "user", "uuid": seeded[0]["uuid"], "attributes": '{"givenName": "B"}'})
    receiver.wait_for(lambda r: len(r.acknowledged()) == 1)
    assert api.post("/__sandbox/akamai/webhooks/config", json={"colour": 1}).status_code == 400
    assert api.post("/__sandbox/akamai/webhooks/config", json={"max_attempts": "many"}).status_code == 400

