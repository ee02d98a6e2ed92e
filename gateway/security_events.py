"""Verification of Akamai Identity Cloud webhook deliveries: RS256-signed Security Event Tokens (RFC 8417).

Each failure maps to an answer the sender understands: ``Unauthorized`` (401, do not trust it),
``Malformed`` (400, it will never verify), ``KeySetUnavailable`` (503, try again later).
"""
from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass

import jwt
import orjson

from gateway.identity_ids import canonical_uuid
from gateway.jwks import JwksCache, KeySetUnavailable, UnknownKey
from settings import WebhookSettings

__all__ = ["KeySetUnavailable", "Malformed", "SecurityEvent", "SetVerifier", "Unauthorized"]

EVENT_TYPES = ("entityCreated", "entityUpdated", "entityDeleted")


class Unauthorized(Exception):
    """Signature, key, issuer, audience or age do not check out."""


class Malformed(Exception):
    """Not a well-formed SET with the claims we require."""


@dataclass(frozen=True)
class SecurityEvent:
    jti: str
    kind: str  # one of EVENT_TYPES
    subject: str  # entity uuid
    issued_at: int
    event_uri: str  # the full event type URI as sent


def event_kind(event_uri: str) -> str | None:
    """The short event name from an event type URI or bare name (``…/entityCreated`` -> ``entityCreated``)."""
    tail = event_uri.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail if tail in EVENT_TYPES else None


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def unverified_header(token: str) -> dict:
    """The JOSE header, read only to choose the key. pyjwt parses the whole token again when it verifies;
    reading just the header here halves the parsing cost per webhook."""
    segments = token.split(".")
    if len(segments) != 3 or not _SEGMENT.fullmatch(segments[0]):
        raise Malformed("not a compact JWS")
    head = segments[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise Malformed("unreadable JOSE header") from exc
    if not isinstance(header, dict):
        raise Malformed("JOSE header is not an object")
    return header


class SetVerifier:
    def __init__(self, settings: WebhookSettings, jwks: JwksCache | None = None) -> None:
        self.settings = settings
        self.jwks = jwks or JwksCache(settings.jwks_url, ca_bundle=settings.ca_bundle,
                                      cache_s=settings.jwks_cache_s,
                                      min_refresh_s=settings.jwks_min_refresh_s,
                                      timeout_s=settings.http_timeout_s)

    async def verify(self, token: str, now: float | None = None) -> SecurityEvent:
        header = unverified_header(token)
        if header.get("alg") != "RS256":
            raise Unauthorized("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no key id")
        try:
            key = await self.jwks.key(kid)
        except UnknownKey as exc:
            raise Unauthorized("unknown key id") from exc
        try:
            claims = jwt.decode(
                token, key=key, algorithms=["RS256"], audience=self.settings.audience,
                issuer=self.settings.issuer, leeway=self.settings.clock_skew_s,
                options={"require": ["iss", "aud", "iat", "jti"], "verify_iat": True},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Malformed(f"missing claim {exc.claim}") from exc
        except (jwt.InvalidSignatureError, jwt.ExpiredSignatureError, jwt.ImmatureSignatureError,
                jwt.InvalidIssuerError, jwt.InvalidAudienceError, jwt.InvalidAlgorithmError) as exc:
            raise Unauthorized(type(exc).__name__) from exc
        except jwt.InvalidTokenError as exc:  # DecodeError, bad claim types, ...
            raise Malformed(type(exc).__name__) from exc
        return self._event(claims, time.time() if now is None else now)

    def _event(self, claims: dict, now: float) -> SecurityEvent:
        iat = claims["iat"]
        if not isinstance(iat, (int, float)) or isinstance(iat, bool):
            raise Malformed("iat is not a number")
        if now - iat > self.settings.max_age_s + self.settings.clock_skew_s:
            raise Unauthorized("token too old")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise Malformed("jti must be a non-empty string")
        sub = claims.get("sub")
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1:
            raise Malformed("events must name exactly one event")
        event_uri, body = next(iter(events.items()))
        kind = event_kind(event_uri)
        if kind is None:
            raise Malformed("unsupported event type")
        if not sub and isinstance(body, dict):  # some senders carry the subject inside the event
            sub = body.get("sub") or body.get("uuid") or body.get("id")
        subject = canonical_uuid(sub)
        if subject is None:  # only an entity uuid goes on: it is used in requests and paths
            raise Malformed("sub must be an Akamai entity uuid")
        return SecurityEvent(jti=jti, kind=kind, subject=subject, issued_at=int(iat), event_uri=event_uri)
