"""Prefetching pages in a thread and normalising them in worker processes keep order and errors."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

import orjson
import pytest

from ingestion.b2c import SCHEMA, build_user_page
from ingestion.columns import from_ipc
from ingestion.parallel import ordered_map
from ingestion.prefetch import prefetch


def square_with_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def test_ordered_map_keeps_order_and_uses_worker_processes_after_the_first_items():
    results = list(ordered_map(square_with_pid, range(30), workers=2, inline_first=3))
    assert [r[0] for r in results] == [v * v for v in range(30)]
    pids = [r[1] for r in results]
    assert set(pids[:3]) == {os.getpid()}
    assert any(pid != os.getpid() for pid in pids[3:])


def test_ordered_map_stays_in_process_with_one_worker():
    assert {pid for _, pid in ordered_map(square_with_pid, range(10), workers=1)} == {os.getpid()}


def test_ordered_map_stays_in_process_with_no_workers():
    assert {pid for _, pid in ordered_map(square_with_pid, range(10), workers=0)} == {os.getpid()}


def test_prefetch_yields_everything_in_order_from_another_thread():
    seen_threads = set()

    def pages():
        for i in range(10):
            seen_threads.add(threading.current_thread().name)
            yield i

    assert list(prefetch(pages(), depth=2)) == list(range(10))
    assert seen_threads == {"page-prefetch"}


def test_prefetch_reraises_the_producers_error_after_the_good_pages():
    def pages():
        yield 1
        raise RuntimeError("page 2 failed")

    received = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        received.extend(prefetch(pages()))
    assert received == [1]


def test_worker_page_step_turns_a_raw_graph_body_into_rows_and_quarantine():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    raw = orjson.dumps({"value": [{"id": "u1", "displayName": "Ann", "extension_x_Consent": True,
                                   "extension_x_SignUpClientId": "web-shop"}, "junk"]})
    ipc, quarantined, fetched, held = build_user_page(
        (raw, [("Consent", "extension_x_Consent"), ("SignUpClientId", "extension_x_SignUpClientId")],
         "SignUpClientId", "users/page-1", now)
    )
    table = from_ipc(ipc)
    assert table.schema == SCHEMA and table.column("id").to_pylist() == ["u1"]
    assert table.column("custom_attributes").to_pylist() == ['{"Consent":true,"SignUpClientId":"web-shop"}']
    assert table.column("client_id").to_pylist() == ["web-shop"]
    assert fetched == 2 and [(q[0], q[1]) for q in quarantined] == [("users/page-1/1", "not_an_object")]
    assert held == []


def test_table_batcher_gathers_pages_into_large_items():
    import pyarrow as pa

    from ingestion.columns import TableBatcher

    batcher = TableBatcher(min_rows=5)
    page = pa.table({"id": ["a", "b", "c"]})
    assert batcher.add(page) is None
    batch = batcher.add(page)
    assert batch is not None and batch.column("id").to_pylist() == ["a", "b", "c"] * 2
    assert batcher.flush() is None
    batcher.add(page)
    assert batcher.flush().num_rows == 3


def test_first_sightings_keeps_each_id_once_per_run():
    import pyarrow as pa

    from ingestion.b2c import first_sightings

    seen: set[str] = set()
    first = first_sightings(pa.table({"id": ["a", "b", "a"], "v": [1, 2, 3]}), seen)
    assert first.to_pydict() == {"id": ["a", "b"], "v": [1, 2]}
    second = first_sightings(pa.table({"id": ["b", "c"], "v": [4, 5]}), seen)
    assert second.to_pydict() == {"id": ["c"], "v": [5]}
