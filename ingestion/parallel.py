"""Normalise pages on several cores while the main process keeps downloading and loading.

Record normalisation (phone parsing above all) is CPU-bound Python, so threads would not help. Large loads
hand each page's raw JSON body to worker processes and get an Arrow table back (bytes both ways, no pickling
of millions of small objects). Small loads — the first pages of any run — stay in-process, so tests and
targeted runs never pay for starting workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

INLINE_PAGES = 4  # pages handled in-process before a pool is worth starting


def usable_cpus() -> int:
    """The CPUs this process may run on: the default number of worker processes."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext | None:
    # fork shares the already-imported, already-warmed modules; elsewhere pages stay in-process
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None, inline_first: int = INLINE_PAGES
) -> Iterator[R]:
    """``map(fn, items)`` in order; after ``inline_first`` items, ``fn`` runs in up to ``workers`` processes.

    ``fn`` must be a module-level function of picklable arguments and results. At most ``2 * workers`` items
    are in flight, which bounds memory. ``workers`` None means the usable CPU count; 0 or 1 keeps everything
    in-process.
    """
    workers = usable_cpus() if workers is None else workers
    context = _context()
    iterator = iter(items)
    if workers < 2 or context is None:
        yield from map(fn, iterator)
        return
    for _ in range(inline_first):
        try:
            item = next(iterator)
        except StopIteration:
            return
        yield fn(item)
    pending: deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            for item in iterator:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
