"""Client-side service protection: how many requests may be in flight, how many a sliding window allows, and a
pause for everyone once the server has said 429.

Dataverse counts requests per user in a 5-minute sliding window and refuses concurrent requests above a limit;
a 429 answer carries ``Retry-After``, and until it passes every further request of the same user is refused
too. ``RequestGate`` keeps a client inside such limits; ``GatedAdapter`` applies it to every HTTP attempt a
``requests`` session makes (retries included), so no caller can forget it.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from requests.adapters import HTTPAdapter

from clients.http import retry_after_seconds


class RequestGate:
    def __init__(self, max_concurrent: int, max_requests: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if max_concurrent < 1 or max_requests < 1 or window_s <= 0:
            raise ValueError("max_concurrent and max_requests must be >= 1 and window_s > 0")
        self.max_requests, self.window_s = max_requests, window_s
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._clock, self._sleep = clock, sleep
        self.waited_s = 0.0  # time spent waiting for the window or a server-imposed pause (for metrics)

    def pause(self, seconds: float) -> None:
        """The server asked everyone to wait ``seconds`` (a 429's ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _wait_s(self) -> float:
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()
        waits = [self._paused_until - now]
        if len(self._sent) >= self.max_requests:
            waits.append(self._sent[0] + self.window_s - now)
        return max(waits)

    def acquire(self) -> None:
        """Blocks until a request may go out (a free slot, room in the window, no pause), then counts it."""
        self._slots.acquire()
        try:
            while True:
                with self._lock:
                    wait = self._wait_s()
                    if wait <= 0:
                        self._sent.append(self._clock())
                        return
                self.waited_s += wait
                self._sleep(wait)
        except BaseException:
            self._slots.release()
            raise

    def release(self) -> None:
        self._slots.release()


class GatedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose every request passes the gate; a 429 pauses the gate for its ``Retry-After``."""

    def __init__(self, gate: RequestGate, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def send(self, request, *args, **kwargs):
        self.gate.acquire()
        try:
            response = super().send(request, *args, **kwargs)
        finally:
            self.gate.release()
        if response.status_code == 429:
            self.gate.pause(retry_after_seconds(response) or 1.0)
        return response
