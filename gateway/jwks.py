"""Cached JSON Web Key Set of the webhook sender.

Keys are fetched once and kept for ``cache_s``. A token signed with a kid we do not know triggers a refresh
(the sender may have rotated its key), but at most once per ``min_refresh_s`` so forged kids cannot turn the
gateway into a request amplifier against the key endpoint.
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
                 min_refresh_s: float = 10.0, timeout_s: float = 5.0) -> None:
        self.url = url
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._cache_s = cache_s
        self._min_refresh_s = min_refresh_s
        self._timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock: asyncio.Lock | None = None
        self.fetches = 0

    async def key(self, kid: str) -> jwt.PyJWK:
        """The RSA key for ``kid``; refreshes when stale or when the kid is unknown (rate-limited)."""
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_s
        if not stale and kid in self._keys:
            return self._keys[kid]
        may_refresh = self._fetched_at is None or now - self._fetched_at >= self._min_refresh_s or stale
        if may_refresh:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                # another request may have refreshed while we waited
                if self._fetched_at is None or time.monotonic() - self._fetched_at >= self._min_refresh_s \
                        or stale and time.monotonic() - self._fetched_at > self._cache_s:
                    await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(kid) from None

    async def _refresh(self) -> None:
        try:
            async with httpx.AsyncClient(verify=self._verify, timeout=self._timeout_s) as client:
                response = await client.get(self.url)
            response.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            log.warning("webhook key set fetch failed: %s", type(exc).__name__)
            if not self._keys:
                raise KeySetUnavailable(type(exc).__name__) from exc
            # keep serving the keys we have; an unknown kid is then reported as such
            self._fetched_at = time.monotonic()
            return
        self.fetches += 1
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id and k.key_type == "RSA"}
        self._fetched_at = time.monotonic()
