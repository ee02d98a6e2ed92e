"""Salesforce record ids: 15-character case-sensitive ids with the 3-character case-safe suffix (18 chars)."""
from __future__ import annotations

import itertools
import secrets
import string

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
ID_CHARS = set(string.ascii_letters + string.digits)

CONTACT_PREFIX = "003"
QUERY_LOCATOR_PREFIX = "01g"
BULK_JOB_PREFIX = "750"
ORG_PREFIX = "00D"
USER_PREFIX = "005"


# upper-case letters -> "1", everything else -> "0": a chunk's case pattern as a binary string
_CASE_BITS = str.maketrans({ch: ("1" if ch in string.ascii_uppercase else "0") for ch in ID_CHARS})


def checksum_suffix(id15: str) -> str:
    """Each 5-char chunk becomes one letter whose bits say which of its characters are upper case
    (bit i for character i, hence the reversal before reading the binary number)."""
    pattern = id15.translate(_CASE_BITS)
    return "".join(SUFFIX_ALPHABET[int(pattern[i:i + 5][::-1], 2)] for i in (0, 5, 10))


def to_18(record_id: str) -> str | None:
    """Normalise a 15- or 18-character id to its 18-character form; None if it is not a well-formed id."""
    if len(record_id) not in (15, 18) or not set(record_id) <= ID_CHARS:
        return None
    id15 = record_id[:15]
    full = id15 + checksum_suffix(id15)
    if len(record_id) == 18 and record_id[15:].upper() != full[15:]:
        return None
    return full


def _base62(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, rem = divmod(n, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits))


class IdGenerator:
    """Sequential ids per key prefix, the way an org hands them out (pod chars + counter)."""

    def __init__(self, prefix: str, pod: str = "5g0"):
        self.prefix = prefix
        self.pod = pod
        self._counter = itertools.count(1)

    def next(self) -> str:
        id15 = self.prefix + self.pod + _base62(next(self._counter), 15 - len(self.prefix) - len(self.pod))
        return id15 + checksum_suffix(id15)


def random_id(prefix: str) -> str:
    id15 = prefix + "".join(secrets.choice(BASE62) for _ in range(12))
    return id15 + checksum_suffix(id15)
