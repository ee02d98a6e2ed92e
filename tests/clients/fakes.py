"""A scripted stand-in for the network at the ``requests`` transport level."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

Responder = Callable[[requests.PreparedRequest], "requests.Response | Exception"]


def make_response(
    request: requests.PreparedRequest, status: int, body: Any = None, headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.request = request
    response.url = request.url
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    response._content = b"" if body is None else orjson.dumps(body)
    return response


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next scripted reply (a response spec, an exception or a callable)."""

    def __init__(self, script: list | None = None, responder: Responder | None = None) -> None:
        super().__init__()
        self.script = list(script or [])
        self.responder = responder
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        if self.responder is not None:
            reply = self.responder(request)
        else:
            reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, requests.Response):
            return reply
        status, body, headers = (tuple(reply) + (None, None))[:3]
        return make_response(request, status, body, headers)

    def close(self) -> None:
        pass


def scripted_session(
    script: list | None = None, responder: Responder | None = None
) -> tuple[requests.Session, ScriptedAdapter]:
    session = requests.Session()
    adapter = ScriptedAdapter(script, responder)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, adapter
