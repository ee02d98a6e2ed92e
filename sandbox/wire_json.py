"""JSON as the simulated APIs put it on the wire, including text that is not valid Unicode.

Real tenants hold such text (a lone surrogate a buggy client wrote, bytes that are not UTF-8) and serve it as
a JSON escape (``"\\ud800"``) or as the raw bytes. A stored string keeps an invalid byte the way Python's
``surrogateescape`` does (U+DC80..U+DCFF): ``dumps`` writes those back as the raw byte and any other lone
surrogate as its escape, and ``loads`` reads both back, so seed files can carry such records.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import orjson

_HANDLER = "sandbox-wire"


def _raw_byte_or_escape(error: UnicodeError) -> tuple[bytes, int]:
    assert isinstance(error, UnicodeEncodeError)
    out = bytearray()
    for char in error.object[error.start:error.end]:
        point = ord(char)
        out += bytes([point - 0xDC00]) if 0xDC80 <= point <= 0xDCFF else f"\\u{point:04x}".encode()
    return bytes(out), error.end


codecs.register_error(_HANDLER, _raw_byte_or_escape)


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors=_HANDLER)


def dumps_ascii(value: Any) -> bytes:
    """Valid JSON whatever the text: every lone surrogate as an escape (for the admin routes)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8", errors="surrogateescape"))
