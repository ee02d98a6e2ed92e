"""The Dataverse stand-in answers as the Web API does: paging, change tracking, conditional upserts, $batch
change sets, service protection."""
from __future__ import annotations

import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sandbox import dataverse, tokens
from sandbox.context import SandboxConfig, SandboxContext

API = dataverse.API
IDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(10)]


@pytest.fixture
def ctx() -> SandboxContext:
    context = SandboxContext(config=SandboxConfig(base_url="https://testserver"))
    dataverse.load_contacts(context, [{"contactid": i, "lastname": f"L{n}", "idlink_identityid": f"u{n}"}
                                      for n, i in enumerate(IDS)])
    return context


@pytest.fixture
def api(ctx) -> TestClient:
    app = Starlette(routes=dataverse.routes(ctx))
    token = tokens.sign(ctx, {"aud": dataverse.environment_url(ctx), "exp": int(time.time()) + 600})
    return TestClient(app, base_url="https://testserver", headers={"Authorization": f"Bearer {token}"})


def test_a_token_for_another_resource_is_refused(ctx, api):
    other = tokens.sign(ctx, {"aud": "https://graph.microsoft.com", "exp": int(time.time()) + 600})
    assert api.get(f"{API}/contacts", headers={"Authorization": f"Bearer {other}"}).status_code == 401


def test_tracked_pages_end_with_a_delta_link_that_returns_changes_and_deletions(api):
    prefer = {"Prefer": "odata.track-changes, odata.maxpagesize=4"}
    body = api.get(f"{API}/contacts", params={"$select": "lastname"}, headers=prefer).json()
    seen = [r["contactid"] for r in body["value"]]
    while "@odata.nextLink" in body:
        body = api.get(body["@odata.nextLink"], headers=prefer).json()
        seen += [r["contactid"] for r in body["value"]]
    assert seen == IDS and "@odata.deltaLink" in body
    assert api.patch(f"{API}/contacts({IDS[1]})", json={"lastname": "New"}, headers={"If-Match": "*"}
                     ).status_code == 204
    assert api.delete(f"{API}/contacts({IDS[2]})").status_code == 204
    delta = api.get(body["@odata.deltaLink"]).json()["value"]
    assert delta[0]["lastname"] == "New"
    assert delta[1]["id"] == IDS[2] and delta[1]["@odata.context"].endswith("$deletedEntity")
    assert api.get(f"{API}/contacts", params={"$filter": "lastname eq 'x'"},
                   headers=prefer).status_code == 400  # no $filter with change tracking


def test_conditional_upserts_by_alternate_key(api):
    new = f"{API}/contacts(idlink_identityid='u99')"
    assert api.patch(new, json={"lastname": "X"}, headers={"If-Match": "*"}).status_code == 404
    created = api.patch(f"{new}?$select=contactid", json={"lastname": "X"},
                        headers={"If-None-Match": "*", "Prefer": "return=representation"})
    assert created.status_code == 201 and created.json()["contactid"]
    assert api.patch(new, json={"lastname": "Y"}, headers={"If-None-Match": "*"}).status_code == 412
    assert api.patch(new, json={"lastname": "Y"}).status_code == 204  # a plain PATCH upserts
    assert api.patch(f"{API}/contacts({IDS[0]})", json={"idlink_identityid": "u1"}).json()["error"]["code"] == \
        "0x80040237"  # another contact holds that key


def test_a_batch_without_continue_on_error_stops_at_the_first_failure(api):
    body = ("--b\r\nContent-Type: multipart/mixed; boundary=c1\r\n\r\n--c1\r\nContent-Type: application/http\r\n"
            f"Content-ID: 1\r\n\r\nPATCH {API}/contacts({IDS[3]}) HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
            '{"lastname": "' + "x" * 60 + '"}\r\n--c1--\r\n'
            "--b\r\nContent-Type: multipart/mixed; boundary=c2\r\n\r\n--c2\r\nContent-Type: application/http\r\n"
            f"Content-ID: 2\r\n\r\nPATCH {API}/contacts({IDS[4]}) HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
            '{"lastname": "fine"}\r\n--c2--\r\n--b--\r\n')
    answer = api.post(f"{API}/$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=b"})
    assert answer.status_code == 400 and answer.text.count("HTTP/1.1 ") == 1
    go_on = api.post(f"{API}/$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=b",
                                                             "Prefer": "odata.continue-on-error"})
    assert go_on.status_code == 200 and "HTTP/1.1 400" in go_on.text and "HTTP/1.1 204" in go_on.text


def test_requests_past_the_window_are_answered_429_with_retry_after(ctx, api):
    ctx.config.dataverse_requests_per_window = 2
    answers = [api.get(f"{API}/contacts({IDS[0]})") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "0x80072322" and int(answers[2].headers["Retry-After"]) >= 1
