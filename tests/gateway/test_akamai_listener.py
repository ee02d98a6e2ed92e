"""The Akamai webhook listener: only verified, fresh, well-formed events are stored, each once."""
from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gateway.app import WEBHOOK_PATH, create_app
from gateway.security_events import SetVerifier
from tests.gateway.conftest import webhook_settings
from tests.gateway.support import JwksServer, SigningKey, set_claims
from tests.inbox.support import FlakyInbox

SET_HEADERS = {"Content-Type": "application/secevent+jwt"}


def post(client: TestClient, token: str, headers: dict | None = None):
    return client.post(WEBHOOK_PATH, content=token, headers=headers or SET_HEADERS)


def test_a_verified_event_is_stored_and_acknowledged_with_202(client, inbox, signing_key) -> None:
    claims = set_claims("entityCreated", sub="7f0c2a9e-1111-4222-8333-944455556666")
    response = post(client, signing_key.sign(claims))
    assert response.status_code == 202
    [stored] = inbox.pending()
    assert stored.id == f"akamai:{claims['jti']}"
    assert (stored.source, stored.kind, stored.subject) == ("akamai", "entityCreated",
                                                           "7f0c2a9e-1111-4222-8333-944455556666")


def test_a_deletion_event_is_stored_with_its_kind(client, inbox, signing_key) -> None:
    assert post(client, signing_key.sign(set_claims("entityDeleted"))).status_code == 202
    assert inbox.pending()[0].kind == "entityDeleted"


def test_a_replayed_jti_is_acknowledged_but_stored_once(client, inbox, signing_key) -> None:
    token = signing_key.sign(set_claims())
    assert post(client, token).status_code == 202
    assert post(client, token).status_code == 202
    assert inbox.stats()["total"] == 1


def test_a_forged_signature_with_a_known_kid_is_refused_with_401(client, inbox, signing_key, other_key) -> None:
    forged = other_key.sign(set_claims(), kid=signing_key.kid)
    assert post(client, forged).status_code == 401
    assert inbox.stats()["total"] == 0


def test_a_tampered_payload_is_refused_with_401(client, inbox, signing_key) -> None:
    header, _, signature = signing_key.sign(set_claims()).split(".")
    other_payload = signing_key.sign(set_claims()).split(".")[1]
    assert post(client, f"{header}.{other_payload}.{signature}").status_code == 401
    assert inbox.stats()["total"] == 0


def test_an_unknown_kid_triggers_a_key_refresh_so_a_rotated_key_verifies(client, inbox, jwks, signing_key) -> None:
    assert post(client, signing_key.sign(set_claims())).status_code == 202
    rotated = SigningKey()
    token = rotated.sign(set_claims())
    assert post(client, token).status_code == 401  # not published yet
    jwks.keys = [rotated.jwk(), signing_key.jwk()]  # the sender rotates and publishes the new key
    assert post(client, token).status_code == 202
    assert inbox.stats()["total"] == 2


def test_unknown_kids_refresh_the_key_set_at_most_once_per_interval(inbox, jwks, signing_key) -> None:
    app = create_app(inbox=inbox,
                     verifier=SetVerifier(webhook_settings(jwks.url, jwks_min_refresh_s=60.0)))
    with TestClient(app) as client:
        assert post(client, signing_key.sign(set_claims())).status_code == 202
        fetches = jwks.fetches
        for _ in range(5):
            assert post(client, signing_key.sign(set_claims(), kid="forged-kid")).status_code == 401
        assert jwks.fetches == fetches  # refreshed moments ago: no more fetches for forged kids


# Times are offsets from the moment the token is signed: a time fixed at collection would go stale in a long run.
@pytest.mark.parametrize("claims_change", [
    {"iat": -3600},  # older than the configured 600 s
    {"iat": +600},  # from the future, beyond the clock skew
    {"exp": -60},
    {"iss": "https://someone-else.example"},
    {"aud": "https://another-listener.example/hook"},
], ids=["too-old", "future-iat", "expired", "wrong-issuer", "wrong-audience"])
def test_stale_or_misaddressed_tokens_are_refused_with_401(client, inbox, signing_key, claims_change) -> None:
    now = int(time.time())
    claims = {name: now + value if name in ("iat", "exp") else value for name, value in claims_change.items()}
    assert post(client, signing_key.sign(set_claims(**claims))).status_code == 401
    assert inbox.stats()["total"] == 0


def test_tokens_not_signed_with_rs256_are_refused_with_401(client, inbox, signing_key) -> None:
    import jwt

    hs256 = jwt.encode(set_claims(), "a-shared-secret-that-is-long-enough-for-hs256", algorithm="HS256", headers={"kid": signing_key.kid})
    unsigned = jwt.encode(set_claims(), None, algorithm="none", headers={"kid": signing_key.kid})
    assert post(client, hs256).status_code == 401
    assert post(client, unsigned).status_code == 401
    assert inbox.stats()["total"] == 0


@pytest.mark.parametrize("body_or_claims", [
    "not-a-jwt",
    "a.b.c",
    {"jti": None},
    {"events": None},
    {"events": {"entityCreated": {"entityType": "user"}}},  # no subject
    {"events": {"passwordChanged": {"sub": "x"}}},  # not an event we handle
    {"events": {"entityCreated": {"sub": "a"}, "entityDeleted": {"sub": "a"}}},
], ids=["garbage", "bad-segments", "no-jti", "no-events", "no-sub", "unknown-event", "two-events"])
def test_malformed_tokens_are_refused_with_400(client, inbox, signing_key, body_or_claims) -> None:
    token = body_or_claims if isinstance(body_or_claims, str) else signing_key.sign(set_claims(**body_or_claims))
    assert post(client, token).status_code == 400
    assert inbox.stats()["total"] == 0


def test_a_wrong_content_type_is_refused_with_415(client, inbox, signing_key) -> None:
    response = post(client, signing_key.sign(set_claims()), headers={"Content-Type": "application/json"})
    assert response.status_code == 415
    assert inbox.stats()["total"] == 0


def test_an_oversized_body_is_refused_with_413_without_storing(client, inbox) -> None:
    assert post(client, "x" * (64 * 1024 + 1)).status_code == 413
    assert inbox.stats()["total"] == 0


def test_an_inbox_that_cannot_write_answers_503_and_the_retry_is_stored_once(tmp_path, jwks, signing_key) -> None:
    box = FlakyInbox(tmp_path / "box.sqlite3")
    app = create_app(inbox=box, verifier=SetVerifier(webhook_settings(jwks.url)))
    token = signing_key.sign(set_claims())
    with TestClient(app) as client:
        FlakyInbox.broken = True
        try:
            assert post(client, token).status_code == 503
        finally:
            FlakyInbox.broken = False
        assert box.stats()["total"] == 0
        assert post(client, token).status_code == 202  # the sender retries the same delivery
        assert post(client, token).status_code == 202
        assert box.stats()["total"] == 1


def test_an_unreachable_key_set_answers_503_so_the_sender_retries(inbox, signing_key) -> None:
    server = JwksServer()
    server.fail = True
    with server.running():
        app = create_app(inbox=inbox, verifier=SetVerifier(webhook_settings(server.url)))
        with TestClient(app) as client:
            assert post(client, signing_key.sign(set_claims())).status_code == 503
    assert inbox.stats()["total"] == 0


def test_healthz_reports_the_inbox(client, signing_key) -> None:
    post(client, signing_key.sign(set_claims()))
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["inbox"] == {"pending": 1, "total": 1}


def test_readiness_and_health_fail_while_the_inbox_cannot_store(client, inbox, signing_key) -> None:
    import sqlite3

    assert client.get("/readyz").status_code == 200
    holder = sqlite3.connect(inbox.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert client.get("/readyz").status_code == 503
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["inbox_can_store"] is False
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.get("/readyz").status_code == 200
    assert post(client, signing_key.sign(set_claims())).status_code == 202


def test_while_the_key_set_was_never_fetched_forged_tokens_do_not_each_trigger_a_fetch(inbox, signing_key) -> None:
    server = JwksServer()
    server.fail = True
    with server.running():
        app = create_app(inbox=inbox, verifier=SetVerifier(webhook_settings(server.url, jwks_min_refresh_s=60.0)))
        with TestClient(app) as client:
            answers = [post(client, signing_key.sign(set_claims(), kid=f"forged-{n}")).status_code
                       for n in range(100)]
    assert set(answers) == {503}  # the sender retries later
    assert server.fetches == 1  # one attempt, then the backoff


def test_concurrent_unknown_kids_share_one_fetch(signing_key) -> None:
    import asyncio

    from gateway.jwks import JwksCache, UnknownKey

    server = JwksServer()
    server.keys = [signing_key.jwk()]

    async def lookups():
        cache = JwksCache(server.url, min_refresh_s=60.0)
        return await asyncio.gather(*(cache.key(f"forged-{n}") for n in range(20)), cache.key(signing_key.kid),
                                    return_exceptions=True)

    with server.running():
        results = asyncio.run(lookups())
    assert server.fetches == 1
    assert all(isinstance(r, UnknownKey) for r in results[:-1]) and results[-1].key_id == signing_key.kid


@pytest.mark.parametrize("subject", ["../003000000000001AAA", "11111111-0000-4000-8000-000000000001/../x",
                                     "not-a-uuid", "11111111-0000-4000-8000-00000000000G"])
def test_a_subject_that_is_not_an_akamai_uuid_is_refused_and_not_stored(client, inbox, signing_key,
                                                                          subject) -> None:
    assert post(client, signing_key.sign(set_claims(sub=subject))).status_code == 400
    assert inbox.stats()["total"] == 0


def test_a_subject_is_stored_in_its_canonical_lowercase_form(client, inbox, signing_key) -> None:
    assert post(client, signing_key.sign(set_claims(sub="11111111-AAAA-4000-8000-00000000000F"))).status_code == 202
    assert [e.subject for e in inbox.pending()] == ["11111111-aaaa-4000-8000-00000000000f"]
