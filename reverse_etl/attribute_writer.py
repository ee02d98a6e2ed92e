"""Plumbing shared by the writers that set one attribute per record on an identity (B2C, Akamai)."""
from __future__ import annotations

import threading
from collections.abc import Sequence

from reverse_etl.state import SyncRecord

SET_ATTRIBUTE = "set_attribute"


class AttributeWriter:
    """Fixed-size batches of set-attribute records and a thread-safe count of API calls made."""

    system: str
    target_label: str  # what `record.target` names, for the error message

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    def _count_call(self) -> None:
        with self._calls_lock:
            self._calls += 1

    def batches(self, records: Sequence[SyncRecord]) -> list[list[SyncRecord]]:
        for record in records:
            if record.operation != SET_ATTRIBUTE or not record.target:
                raise ValueError(f"{self.system} writer cannot perform operation {record.operation!r} "
                                 f"without a {self.target_label}")
        return [list(records[i:i + self.batch_size]) for i in range(0, len(records), self.batch_size)]
