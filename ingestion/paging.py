"""Following a source's pages, with an error that names the page that failed: one loop for every load."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from clients.http import ApiError

T = TypeVar("T")


class PageFetchError(RuntimeError):
    """A page could not be fetched within the retry budget: the run fails and its cursor (delta link, modstamp,
    filter time) stays where it was, so nothing is marked as done."""


def numbered_pages(pages: Iterator[T], name: str, route: str | None = None, *,
                   first_page_refused: Callable[[ApiError], Exception | None] | None = None,
                   passes: Callable[[ApiError], bool] | None = None) -> Iterator[T]:
    """Each page of ``pages``. A page that fails past the client's retries raises ``PageFetchError`` naming it
    (``<name> page <n> (<route>)``); ``first_page_refused`` may turn a refusal of the first page into an error
    of its own (a delta link or a filter the server no longer takes: the caller falls back); errors ``passes``
    accepts go up unchanged (e.g. an exhausted API budget the caller reports as such)."""
    where = f" ({route})" if route else ""
    page_no = 0
    while True:
        page_no += 1
        try:
            page = next(pages)
        except StopIteration:
            return
        except ApiError as exc:
            if passes is not None and passes(exc):
                raise
            if page_no == 1 and first_page_refused is not None and (refusal := first_page_refused(exc)) is not None:
                raise refusal from None
            raise PageFetchError(f"{name} page {page_no}{where} could not be fetched: {exc}") from None
        yield page
