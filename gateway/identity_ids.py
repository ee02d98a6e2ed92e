"""The identity providers' id formats: an Akamai entity uuid and a B2C / Entra objectId are both UUIDs.

An id from outside (a webhook's subject, a connector claim) is used only in this canonical form, so it can never
carry a path (``../<another record's id>``), a query or a SOQL fragment into a request.
"""
from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(value: object) -> str | None:
    """The lowercase 8-4-4-4-12 form of a UUID given in that form (any case), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _UUID.fullmatch(text) else None
