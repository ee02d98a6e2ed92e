"""Value pools for the synthetic data generator: names, streets, places, email domains and phone templates
per country, built from faker (fixed seed) and the ``nicknames`` data set.

Records are later drawn from these pools with a seeded ``random.Random``, so generating a million people never
calls faker per record. Pools keep faker's repeats on purpose: drawing uniformly from a list of draws
reproduces faker's (weighted) name frequencies, so common names really are common.

Pool breadth scales with the number of people asked for (``pool_scale``): a few hundred people need a few
hundred names and towns per country, a million need the full pools. Pools are built lazily, once per process
and scale, with a faker generator that loads only the providers used here (person, address, internet,
company), and kept in an on-disk cache (``cache_dir``) so later processes need not import faker at all.
The same scale always gives the same pools, built or cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import tempfile
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import phonenumbers
from nicknames import NickNamer

if TYPE_CHECKING:  # faker takes a while to import: loaded only when pools are built, not read from the cache
    from faker import Faker

POOL_SEED = 20240101  # pools are a fixed property of the generator, independent of the dataset seed

# ISO2 -> (faker locale, share of people, IDD prefix used in "00CC"-style numbers or None)
COUNTRIES: dict[str, tuple[str, float, str | None]] = {
    "US": ("en_US", 0.30, None),
    "GB": ("en_GB", 0.15, "00"),
    "DE": ("de_DE", 0.12, "00"),
    "FR": ("fr_FR", 0.10, "00"),
    "ES": ("es_ES", 0.08, "00"),
    "NL": ("nl_NL", 0.07, "00"),
    "IE": ("en_IE", 0.05, "00"),
    "CA": ("en_CA", 0.07, None),
    "AU": ("en_AU", 0.06, None),
}

# How people and CRM users write the country in free-text fields; index 0 is what Graph shows.
COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "US": ("United States", "USA", "US", "United States of America", "U.S.A."),
    "GB": ("United Kingdom", "UK", "GB", "Great Britain", "England"),
    "DE": ("Germany", "Deutschland", "DE", "GERMANY"),
    "FR": ("France", "FR", "FRANCE", "République française"),
    "ES": ("Spain", "España", "ES", "Espana"),
    "NL": ("Netherlands", "Nederland", "NL", "The Netherlands", "Holland"),
    "IE": ("Ireland", "IE", "Éire", "Republic of Ireland"),
    "CA": ("Canada", "CA", "CANADA"),
    "AU": ("Australia", "AU", "AUS"),
}

# Street-type words and the abbreviations people type instead (applied on one side only).
STREET_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("Street", "St"),
    ("Road", "Rd"),
    ("Avenue", "Ave"),
    ("Lane", "Ln"),
    ("Drive", "Dr"),
    ("Court", "Ct"),
    ("Place", "Pl"),
    ("Crescent", "Cres"),
    ("Boulevard", "Blvd"),
    ("straße", "str."),
    ("Straße", "Str."),
    ("strasse", "str."),
    ("Calle", "C/"),
    ("Avenida", "Av."),
    ("avenue", "av."),
    ("boulevard", "bd"),
    ("Plaza", "Pza."),
    ("laan", "ln"),
    ("straat", "str"),
)

SHARED_FREE_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com")
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
EXTRA_FREE_DOMAINS: dict[str, tuple[str, ...]] = {
    "US": ("aol.com", "comcast.net"),
    "GB": ("googlemail.com", "btinternet.com", "hotmail.co.uk", "yahoo.co.uk"),
    "DE": ("googlemail.com", "web.de", "gmx.de", "t-online.de"),
    "FR": ("orange.fr", "free.fr", "laposte.net"),
    "ES": ("telefonica.net", "yahoo.es"),
    "NL": ("ziggo.nl", "kpnmail.nl"),
    "IE": ("eircom.net",),
    "CA": ("rogers.com", "shaw.ca"),
    "AU": ("bigpond.com", "optusnet.com.au"),
}

RTL_LOCALES = ("ar_AA", "he_IL")
# full pool breadth per country (reached from ``FULL_SCALE`` people on); smaller scales get less (``_breadth``)
NAME_DRAWS = 4000
STREET_DRAWS = 1000
PLACE_DRAWS = 1000
POSTCODES_PER_CITY = 8
DOMAIN_DRAWS = 300
PHONE_PREFIXES = 30  # valid number prefixes per country and line type
PHONE_FREE_DIGITS = 4  # digits drawn per record at the end of a prefix
MIN_SCALE = 256
FULL_SCALE = 8192
# only these faker providers are loaded (the full set costs about 0.1 s per locale)
FAKER_PROVIDERS = (
    "faker.providers.person",
    "faker.providers.address",
    "faker.providers.company",
    "faker.providers.internet",
)


def pool_scale(people: int | None) -> int:
    """The pool scale for a dataset of ``people``: a power of two from ``MIN_SCALE`` to ``FULL_SCALE``
    (``None`` = full pools). Rounding keeps the number of distinct pools per process small."""
    if people is None or people >= FULL_SCALE:
        return FULL_SCALE
    scale = MIN_SCALE
    while scale < people:
        scale *= 2
    return scale


@dataclass(frozen=True)
class Breadth:
    names: int
    towns: int
    streets: int
    domains: int
    phone_prefixes: int


def _breadth(scale: int) -> Breadth:
    """How many draws each pool gets at ``scale`` (full breadth at ``FULL_SCALE``)."""

    def part(full: int, floor: int) -> int:
        return max(floor, min(full, full * scale // FULL_SCALE))

    return Breadth(
        names=part(NAME_DRAWS, 500),
        towns=part(PLACE_DRAWS, 60),
        streets=part(STREET_DRAWS, 150),
        domains=part(DOMAIN_DRAWS, 40),
        phone_prefixes=part(PHONE_PREFIXES, 6),
    )


def _faker(locale: str) -> Faker:
    from faker import Faker  # see the TYPE_CHECKING import above

    fake = Faker(locale, providers=list(FAKER_PROVIDERS))
    fake.seed_instance(POOL_SEED)
    return fake


@dataclass(frozen=True)
class PhoneTemplate:
    """One valid number prefix; the last ``PHONE_FREE_DIGITS`` digits are ``{}`` slots in every rendering."""

    e164: str
    international: str
    national: str


@dataclass(frozen=True)
class CountryPool:
    iso2: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    places: tuple[tuple[str, str, str], ...]  # (city, postal code, state/region); a city has several codes
    free_domains: tuple[str, ...]
    work_domains: tuple[str, ...]
    mobile_phones: tuple[PhoneTemplate, ...]
    landline_phones: tuple[PhoneTemplate, ...]
    idd: str | None


def _format_postcode(iso2: str, code: str) -> str:
    code = code.strip().upper()
    if iso2 == "CA" and len(code) == 6:
        return f"{code[:3]} {code[3:]}"
    if iso2 == "NL" and len(code) == 6:
        return f"{code[:4]} {code[4:]}"
    return code


def _template(number: phonenumbers.PhoneNumber) -> PhoneTemplate:
    def slotted(text: str) -> str:
        chars, left = list(text), PHONE_FREE_DIGITS
        for i in range(len(chars) - 1, -1, -1):
            if left and chars[i].isdigit():
                chars[i], left = "{}", left - 1
        return "".join(chars)

    fmt = phonenumbers.PhoneNumberFormat
    return PhoneTemplate(
        e164=slotted(phonenumbers.format_number(number, fmt.E164)),
        international=slotted(phonenumbers.format_number(number, fmt.INTERNATIONAL)),
        national=slotted(phonenumbers.format_number(number, fmt.NATIONAL)),
    )


def _phone_templates(iso2: str, kind: int, rng: random.Random, wanted: int) -> tuple[PhoneTemplate, ...]:
    """Valid prefixes found by varying the library's example number; kept only if any suffix stays valid."""
    example = phonenumbers.example_number_for_type(iso2, kind)
    digits = str(example.national_number)
    keep = 2 if len(digits) > 8 else 1
    # North American numbers do not tell mobiles from landlines
    accepted = {kind, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
    found: dict[str, PhoneTemplate] = {}
    for _ in range(wanted * 40):
        if len(found) >= wanted:
            break
        candidate = digits[:keep] + "".join(rng.choice("0123456789") for _ in digits[keep:])
        prefix = candidate[:-PHONE_FREE_DIGITS]
        if prefix in found:
            continue
        probes = [prefix + f"{rng.randrange(10**PHONE_FREE_DIGITS):0{PHONE_FREE_DIGITS}d}" for _ in range(4)]
        parsed = [
            phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(p))
            for p in probes
        ]
        if all(phonenumbers.is_valid_number(p) and phonenumbers.number_type(p) in accepted for p in parsed):
            found[prefix] = _template(parsed[0])
    if not found:
        raise RuntimeError(f"no valid phone prefixes found for {iso2}")
    return tuple(found.values())


def _draw(fake: Faker, method: str, n: int) -> tuple[str, ...]:
    fn = getattr(fake, method)
    return tuple(fn() for _ in range(n))


def _person_names(fake: Faker, attribute: str, n: int) -> tuple[str, ...]:
    """``n`` weighted draws from the locale's name list in one call (``first_name()`` per draw is slow)."""
    provider = next(
        p for p in fake.get_providers() if type(p).__module__.startswith("faker.providers.person")
    )
    return tuple(fake.random_elements(getattr(provider, attribute), length=n, use_weighting=True))


def _build_country_pool(iso2: str, scale: int) -> CountryPool:
    locale, _, idd = COUNTRIES[iso2]
    breadth = _breadth(scale)
    fake = _faker(locale)
    rng = random.Random(f"{POOL_SEED}-{iso2}")
    # several postal codes per city, so people of one city do not all share one code
    towns = [(fake.city(), fake.administrative_unit()) for _ in range(breadth.towns)]
    places = tuple(
        (city, _format_postcode(iso2, fake.postcode()), state)
        for city, state in towns
        for _ in range(POSTCODES_PER_CITY)
    )
    free = (
        tuple(fake.free_email_domain() for _ in range(40))
        + SHARED_FREE_DOMAINS * 4
        + EXTRA_FREE_DOMAINS[iso2] * 3
    )
    work = tuple(sorted({fake.domain_name() for _ in range(breadth.domains)}))
    mobile = phonenumbers.PhoneNumberType.MOBILE
    fixed = phonenumbers.PhoneNumberType.FIXED_LINE
    return CountryPool(
        iso2=iso2,
        first_names=_person_names(fake, "first_names", breadth.names),
        last_names=_person_names(fake, "last_names", breadth.names),
        streets=tuple(s for s in _draw(fake, "street_name", breadth.streets) if s.strip()),
        places=places,
        free_domains=free,
        work_domains=work,
        mobile_phones=_phone_templates(iso2, mobile, rng, breadth.phone_prefixes),
        landline_phones=_phone_templates(iso2, fixed, rng, breadth.phone_prefixes),
        idd=idd,
    )


# ---------------------------------------------------------------- on-disk cache of built pools
# Building needs faker, whose import alone takes about half a second; a cached copy needs only a JSON read.
# Entries are keyed by everything that shapes the pools (this module's source, library versions, scale), are
# written atomically (temporary file + rename) and are rebuilt whenever missing, unreadable or for another key.
CACHE_FORMAT = 1


def cache_dir() -> Path | None:
    """Where built pools are kept: ``$XDG_CACHE_HOME/idlink/synthetic`` (default ``~/.cache``); None (no
    caching) when there is no home directory to put it in."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "idlink" / "synthetic"


@functools.cache
def _cache_key() -> str:
    parts = [str(CACHE_FORMAT), str(POOL_SEED), hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]
    for dist in ("faker", "phonenumbers"):
        try:
            parts.append(f"{dist}={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}=?")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _cache_read(name: str) -> Any:
    directory = cache_dir()
    if directory is None:
        return None
    path = directory / f"{name}-{_cache_key()}.json"
    try:
        payload = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or payload.get("key") != _cache_key() or payload.get("name") != name:
        return None
    return payload.get("data")


def _cache_write(name: str, data: Any) -> None:
    """Best effort: a read-only or full disk only costs the next process a rebuild."""
    directory = cache_dir()
    if directory is None:
        return
    payload = orjson.dumps({"key": _cache_key(), "name": name, "data": data})
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the pools hold nothing secret
        os.replace(tmp, directory / f"{name}-{_cache_key()}.json")
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _encode_pool(pool: CountryPool) -> dict[str, Any]:
    out = {f.name: getattr(pool, f.name) for f in fields(CountryPool)}
    for kind in ("mobile_phones", "landline_phones"):
        out[kind] = [[t.e164, t.international, t.national] for t in out[kind]]
    return out


def _decode_pool(data: dict[str, Any]) -> CountryPool:
    return CountryPool(
        iso2=data["iso2"],
        first_names=tuple(data["first_names"]),
        last_names=tuple(data["last_names"]),
        streets=tuple(data["streets"]),
        places=tuple((city, postal, state) for city, postal, state in data["places"]),
        free_domains=tuple(data["free_domains"]),
        work_domains=tuple(data["work_domains"]),
        mobile_phones=tuple(PhoneTemplate(*t) for t in data["mobile_phones"]),
        landline_phones=tuple(PhoneTemplate(*t) for t in data["landline_phones"]),
        idd=data["idd"],
    )


@functools.cache
def _pools_at(scale: int) -> dict[str, CountryPool]:
    name = f"pools-{scale}"
    cached = _cache_read(name)
    if cached is not None:
        try:
            pools = {iso2: _decode_pool(cached[iso2]) for iso2 in COUNTRIES}
        except (KeyError, TypeError, ValueError):
            pools = None
        if pools is not None and all(pool.iso2 == iso2 for iso2, pool in pools.items()):
            return pools
    pools = {iso2: _build_country_pool(iso2, scale) for iso2 in COUNTRIES}
    _cache_write(name, {iso2: _encode_pool(pool) for iso2, pool in pools.items()})
    return pools


def country_pool(iso2: str, scale: int = FULL_SCALE) -> CountryPool:
    """The pools of one country at ``scale`` (see ``pool_scale``); built once per process and scale."""
    return _pools_at(scale)[iso2]


@functools.cache
def rtl_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """First and last names in Arabic and Hebrew script (people whose records are written right-to-left)."""
    cached = _cache_read("rtl")
    if isinstance(cached, list) and len(cached) == 2 and all(isinstance(part, list) for part in cached):
        return tuple(cached[0]), tuple(cached[1])
    built = _build_rtl_names()
    _cache_write("rtl", [list(built[0]), list(built[1])])
    return built


def _build_rtl_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    firsts: list[str] = []
    lasts: list[str] = []
    for locale in RTL_LOCALES:
        fake = _faker(locale)
        firsts.extend(_person_names(fake, "first_names", 300))
        lasts.extend(_person_names(fake, "last_names", 300))
    return tuple(firsts), tuple(lasts)


@functools.cache
def nickname_map() -> dict[str, tuple[str, ...]]:
    """Lower-case formal first name -> its nicknames (sorted, so draws are deterministic)."""
    lookup = NickNamer().nickname_lookup
    return {name: tuple(sorted(nicks)) for name, nicks in lookup.items() if nicks}


@functools.cache
def related_first_names() -> dict[str, frozenset[str]]:
    """Lower-case first name -> every name it is a nickname or formal form of (to keep 'clearly different'
    first names apart in family mailboxes)."""
    nn = NickNamer()
    related: dict[str, set[str]] = {}
    for name, nicks in nn.nickname_lookup.items():
        for nick in nicks:
            related.setdefault(name, set()).add(nick)
            related.setdefault(nick, set()).add(name)
    return {k: frozenset(v) for k, v in related.items()}


def all_pools(people: int | None = None) -> dict[str, CountryPool]:
    """Every country's pools, as broad as a dataset of ``people`` needs (``None`` = full pools)."""
    scale = pool_scale(people)
    return {iso2: country_pool(iso2, scale) for iso2 in COUNTRIES}
