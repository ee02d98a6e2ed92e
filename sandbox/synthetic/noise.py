"""Realistic data-entry noise for synthetic records: typos, accents, case and spacing, nicknames, street
abbreviations, email and phone spellings. Every function takes the caller's ``random.Random`` so a dataset
stays reproducible for its seed.
"""

from __future__ import annotations

import functools
import random
import unicodedata

from sandbox.synthetic.pools import GMAIL_DOMAINS, STREET_ABBREVIATIONS, PhoneTemplate, nickname_map

# Keys next to each other on a QWERTY keyboard: the substitutions people actually make.
_NEIGHBOURS = {
    "q": "wa",
    "w": "qes",
    "e": "wrd",
    "r": "etf",
    "t": "ryg",
    "y": "tuh",
    "u": "yij",
    "i": "uok",
    "o": "ipl",
    "p": "ol",
    "a": "qsz",
    "s": "adwx",
    "d": "sfec",
    "f": "dgrv",
    "g": "fhtb",
    "h": "gjyn",
    "j": "hkum",
    "k": "jlim",
    "l": "kop",
    "z": "asx",
    "x": "zcs",
    "c": "xvd",
    "v": "cbf",
    "b": "vng",
    "n": "bmh",
    "m": "nj",
}
_GERMAN_FOLD = str.maketrans(dict(zip("äöüÄÖÜß", ("ae", "oe", "ue", "Ae", "Oe", "Ue", "ss"))))


def typo(text: str, rng: random.Random, edits: int = 1) -> str:
    """Apply ``edits`` keyboard-style edits (neighbour key, dropped, doubled or swapped letter)."""
    chars = list(text)
    for _ in range(edits):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if len(letters) < 3:
            break
        i = rng.choice(letters[1:])  # people rarely get the first letter wrong
        kind = rng.random()
        c = chars[i]
        if kind < 0.4:
            options = _NEIGHBOURS.get(c.lower())
            if options:
                repl = rng.choice(options)
                chars[i] = repl.upper() if c.isupper() else repl
            else:
                del chars[i]
        elif kind < 0.6:
            del chars[i]
        elif kind < 0.8:
            chars.insert(i, c)
        elif i + 1 < len(chars) and chars[i + 1] != c:
            chars[i], chars[i + 1] = chars[i + 1], c
        else:
            del chars[i]
    return "".join(chars)


@functools.lru_cache(maxsize=200_000)
def strip_accents(text: str) -> str:
    """José -> Jose, Müller -> Muller."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


@functools.lru_cache(maxsize=200_000)
def transliterate_german(text: str) -> str:
    """Müller -> Mueller, Straße -> Strasse (how Germans type without an umlaut keyboard)."""
    return strip_accents(text.translate(_GERMAN_FOLD))


def has_accents(text: str) -> bool:
    return not text.isascii()


def drop_accents(text: str, rng: random.Random) -> str:
    if text.isascii():
        return text
    return transliterate_german(text) if rng.random() < 0.5 else strip_accents(text)


def case_and_space(text: str, rng: random.Random) -> str:
    """Upper/lower case or stray spaces, as typed into CRM forms."""
    r = rng.random()
    if r < 0.35:
        return text.upper()
    if r < 0.6:
        return text.lower()
    if r < 0.8:
        return f" {text} " if r < 0.7 else f"{text}  "
    return text.replace(" ", "  ") if " " in text else f"{text} "


def nickname_of(first_name: str, rng: random.Random) -> str | None:
    nicks = nickname_map().get(first_name.lower())
    if not nicks:
        return None
    return rng.choice(nicks).title()


def abbreviate_street(street: str, rng: random.Random) -> str:
    for long, short in STREET_ABBREVIATIONS:
        if long in street:
            return street.replace(long, short)
    return street


def email_case_and_space(email: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return email.upper() if r < 0.1 else email[0].upper() + email[1:]
    if r < 0.7:
        return f" {email}" if r < 0.55 else f"{email} "
    local, _, domain = email.partition("@")
    return f"{local.title()}@{domain.upper()}"


def mailbox_variant(email: str, rng: random.Random) -> str:
    """Same mailbox, different address: Gmail dots and googlemail.com, or a ``+tag`` (plus-addressing)."""
    local, _, domain = email.partition("@")
    if domain in GMAIL_DOMAINS and rng.random() < 0.7:
        base = local.replace(".", "")
        if len(base) > 2 and "." not in local:
            cut = rng.randrange(1, len(base))
            local = base[:cut] + "." + base[cut:]
        else:
            local = base
        if rng.random() < 0.4:
            domain = "googlemail.com" if domain == "gmail.com" else "gmail.com"
        return f"{local}@{domain}"
    tag = rng.choice(("news", "shop", "crm", "promo", "2024", "web"))
    return f"{local}+{tag}@{domain}"


def fill(template: str, digits: str) -> str:
    return template.format(*digits)


def render_phone(template: PhoneTemplate, digits: str, style: str, idd: str | None) -> str:
    """One spelling of the number. National styles need the record's country to be read back."""
    if style == "e164":
        return fill(template.e164, digits)
    if style == "intl":
        return fill(template.international, digits)
    if style == "idd":
        return (idd or "+") + fill(template.international, digits)[1:]
    national = fill(template.national, digits)
    if style == "national_dashes":
        return "-".join(national.replace("(", "").replace(")", "").split())
    if style == "national_compact":
        return "".join(c for c in national if c.isdigit())
    if style == "national_dots":
        return ".".join(national.replace("(", "").replace(")", "").replace("-", " ").split())
    return national


NATIONAL_STYLES = ("national", "national", "national_dashes", "national_compact", "national_dots")
INTERNATIONAL_STYLES = ("e164", "intl", "intl", "idd")
