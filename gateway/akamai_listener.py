"""Akamai Identity Cloud Webhooks v3 listener: verify the Security Event Token, store it, answer fast.

Answers (the sender retries any non-2xx, so only a 2xx means "you may forget it"):
202 stored or already stored (a replayed jti is acknowledged, not stored twice); 400 malformed;
401 bad signature, unknown key, wrong issuer/audience, too old; 413 too large; 415 wrong content type;
503 the inbox or the key set is unavailable (the sender tries again; nothing is lost).
"""
from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.security_events import KeySetUnavailable, Malformed, SetVerifier, Unauthorized
from inbox import Inbox, InboxEvent, InboxUnavailable

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/secevent+jwt"


class BodyTooLarge(Exception):
    pass


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, error: str | None = None) -> JSONResponse:
    return JSONResponse({"status": "accepted"} if error is None else {"error": error}, status_code=status)


class AkamaiWebhookEndpoint:
    def __init__(self, verifier: SetVerifier, inbox: Inbox) -> None:
        self.verifier = verifier
        self.inbox = inbox

    async def handle(self, request: Request) -> JSONResponse:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != CONTENT_TYPE:
            return _answer(415, f"content type must be {CONTENT_TYPE}")
        try:
            body = await read_limited(request, self.verifier.settings.max_body_bytes)
        except BodyTooLarge:
            return _answer(413, "body too large")
        try:
            token = body.decode("ascii").strip()
        except UnicodeDecodeError:
            return _answer(400, "body is not a compact JWS")
        try:
            event = await self.verifier.verify(token)
        except Malformed as exc:
            log.info("webhook rejected as malformed: %s", exc)
            return _answer(400, "malformed security event token")
        except Unauthorized as exc:
            log.warning("webhook rejected as unauthorized: %s", exc)
            return _answer(401, "security event token not accepted")
        except KeySetUnavailable:
            return _answer(503, "verification keys unavailable, retry later")
        try:
            stored = await self.inbox.aput(InboxEvent(
                id=f"akamai:{event.jti}", source="akamai", kind=event.kind, subject=event.subject,
                payload={"jti": event.jti, "event": event.kind, "sub": event.subject, "iat": event.issued_at},
            ))
        except InboxUnavailable as exc:
            log.error("webhook %s not stored: %s", event.jti, exc)
            return _answer(503, "event store unavailable, retry later")
        if not stored:
            log.info("webhook %s replayed; already stored", event.jti)
        return _answer(202)
