"""What two synthetic records share, judged from the values actually written into them.

Ground-truth labels are derived here, after all noise is applied, so an "email" pair really shares the
normalised email and a "name_place" pair really shares no email or phone. The generator records for each
rendered record whether its names are still the person's names (up to typos, nicknames, accents, case) and
which email/phone values are well-formed; everything else is recomputed from the strings.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from sandbox.synthetic.noise import strip_accents
from sandbox.synthetic.pools import GMAIL_DOMAINS

EVIDENCE_ORDER = ("id", "email", "mailbox", "phone", "name_place", "none")
_SPACES = re.compile(r"\s+")


def normalise_email(email: str) -> str:
    """Same email: compare after trimming and lower-casing."""
    return email.strip().lower()


def canonical_mailbox(email: str) -> str:
    """Same mailbox: plus-addressing tags dropped; Gmail ignores dots and googlemail.com is gmail.com."""
    local, _, domain = normalise_email(email).partition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        return f"{local.replace('.', '')}@gmail.com"
    return f"{local}@{domain}"


@functools.lru_cache(maxsize=100_000)
def normalise_postal(code: str) -> str:
    return code.replace(" ", "").replace("-", "").upper()


@functools.lru_cache(maxsize=100_000)
def normalise_city(city: str) -> str:
    return _SPACES.sub(" ", strip_accents(city).replace("-", " ")).strip().casefold()


class Signals(NamedTuple):
    """The comparable facts of one rendered record (never written out)."""

    email: str | None  # normalised, and only when well-formed
    phones: tuple[str, ...]  # E.164 of every well-formed phone
    names_ok: bool  # first and last name present and still the person's names
    postal: str | None
    city: str | None
    country: str | None  # ISO2, when the record states a country


def evidence(identity: Signals, contact: Signals, prelinked: bool) -> str:
    """The strongest signal the two records share, in the order of ``EVIDENCE_ORDER``."""
    if prelinked:
        return "id"
    a, b = identity.email, contact.email
    if a and b:
        if a == b:
            return "email"
        if canonical_mailbox(a) == canonical_mailbox(b):
            return "mailbox"
    names = identity.names_ok and contact.names_ok
    if names and any(p in contact.phones for p in identity.phones):
        return "phone"
    if names and _place_agrees(identity, contact):
        return "name_place"
    return "none"


def _place_agrees(a: Signals, b: Signals) -> bool:
    if a.postal and a.postal == b.postal:
        return True
    return bool(a.city and a.city == b.city and a.country and a.country == b.country)
