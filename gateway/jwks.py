"""Cached JSON Web Key Set of the webhook sender.

Keys are fetched once and kept for ``cache_s``. A token signed with a kid we do not know triggers a refresh
(the sender may have rotated its key), but at most once per ``min_refresh_s`` so forged kids cannot turn the
gateway into a request amplifier against the key endpoint. Fetches are single flight (concurrent requests wait
for the one in progress and use its answer), and after a failed fetch the next waits ``min_refresh_s``,
doubling with each further failure up to ``max_backoff_s``, whether or not a key set was ever fetched: until
then every token is answered 503 (the sender retries) without a fetch.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import time

import httpx
import jwt

log = logging.getLogger(__name__)


class UnknownKey(Exception):
    """No key with this kid in the (fresh enough) key set."""


class KeySetUnavailable(Exception):
    """The key set could not be fetched; the event should be retried by the sender."""


class JwksCache:
    def __init__(self, url: str, *, ca_bundle: str | None = None, cache_s: float = 3600.0,
                 min_refresh_s: float = 10.0, max_backoff_s: float = 300.0, timeout_s: float = 5.0) -> None:
        self.url = url
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._cache_s = cache_s
        self._min_refresh_s = min_refresh_s
        self._max_backoff_s = max(max_backoff_s, min_refresh_s)
        self._timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._failures = 0  # failed fetches since the last success
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # successful fetches
        self.attempts = 0  # fetches tried

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at > self._cache_s

    def _may_fetch(self, now: float) -> bool:
        """A fetch is due: none tried yet, the backoff after failures has passed, or (after a success) the
        keys are stale or ``min_refresh_s`` has passed since the last fetch."""
        if self._attempted_at is None:
            return True
        since = now - self._attempted_at
        if self._failures:
            return since >= min(self._min_refresh_s * 2 ** (self._failures - 1), self._max_backoff_s)
        return self._stale(now) or since >= self._min_refresh_s

    async def key(self, kid: str) -> jwt.PyJWK:
        """The RSA key for ``kid``; refreshes when stale or when the kid is unknown (rate-limited, single
        flight, backing off after failures)."""
        if kid in self._keys and not self._stale(time.monotonic()):
            return self._keys[kid]
        if self._may_fetch(time.monotonic()):
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._may_fetch(time.monotonic()):  # else a request we waited for has just fetched
                    await self._refresh()
        if kid in self._keys:
            return self._keys[kid]
        if not self._keys:
            raise KeySetUnavailable("no key set fetched yet")
        raise UnknownKey(kid)

    async def _refresh(self) -> None:
        self.attempts += 1
        self._attempted_at = time.monotonic()
        try:
            async with httpx.AsyncClient(verify=self._verify, timeout=self._timeout_s) as client:
                response = await client.get(self.url)
            response.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            self._failures += 1
            log.warning("webhook key set fetch failed (%d in a row): %s", self._failures, type(exc).__name__)
            return  # keep serving the keys we have, if any
        self.fetches += 1
        self._failures = 0
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id and k.key_type == "RSA"}
        self._fetched_at = time.monotonic()
