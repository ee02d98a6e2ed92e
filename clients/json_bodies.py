"""JSON bodies of API answers, readable even when one record carries text that is not valid Unicode.

orjson refuses a whole body for one lone surrogate escape (``"\\ud800"``) or one invalid UTF-8 byte, which would
make a whole page of users or contacts unreadable for the sake of one record. ``loads`` then falls back to the
standard library, which keeps such text as lone surrogates (invalid bytes through ``surrogateescape``), and says
so: the caller quarantines the records ``has_invalid_text`` finds and loads the rest.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(raw: bytes | str) -> Any:
    """The parsed body; raises ``ValueError`` only when it is not JSON at all."""
    return loads_checked(raw)[0]


def loads_checked(raw: bytes | str) -> tuple[Any, bool]:
    """``(body, lenient)``: ``lenient`` is True when some text in the body is not valid Unicode."""
    try:
        return orjson.loads(raw), False
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", errors="surrogateescape") if isinstance(raw, bytes) else raw
        return json.loads(text), True


def dumps(value: Any) -> bytes:
    """JSON bytes; text that is not valid Unicode is written as escapes ``loads`` reads back."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=True).encode()


def has_invalid_text(value: Any) -> bool:
    """True when a string anywhere in ``value`` (keys included) holds a lone surrogate."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_invalid_text(k) or has_invalid_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_invalid_text(v) for v in value)
    return False
