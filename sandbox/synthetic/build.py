"""The engine behind ``sandbox.synthetic.generate``: invents people, writes each into the systems they use
with realistic noise, and derives the ground truth from what was written (see the docs of ``synthetic``).

Work is done person by person: a person's records are rendered, their comparable signals computed, truth pairs
and negatives emitted, and the signals dropped, so memory holds little more than the output records.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import gc
import random
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox.synthetic.evidence import Signals, evidence, normalise_city, normalise_email, normalise_postal
from sandbox.synthetic.noise import (
    INTERNATIONAL_STYLES,
    NATIONAL_STYLES,
    abbreviate_street,
    case_and_space,
    drop_accents,
    email_case_and_space,
    fill,
    mailbox_variant,
    nickname_of,
    render_phone,
    strip_accents,
    transliterate_german,
    typo,
)
from sandbox.synthetic.pools import (
    COUNTRIES,
    COUNTRY_NAMES,
    GMAIL_DOMAINS,
    CountryPool,
    PhoneTemplate,
    all_pools,
    related_first_names,
    rtl_names,
)
from sandbox.synthetic.profiles import PROFILES, NoiseProfile

SALESFORCE_API_VERSION = "62.0"
SCIM_CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SCIM_IDLINK_USER = "urn:ietf:params:scim:schemas:extension:idlink:2.0:User"
# The applications people registered through (client ids, as B2C app registrations spell them): the field mapping
# may hold an entry per client. A few identities have none (created by an administrator or an import).
WEB_SHOP_CLIENT = "3f9e2a41-7c55-4b1e-9d0a-5a1c2e7b8d10"
MOBILE_APP_CLIENT = "b8d2c6f0-1e4a-4f3b-8a9c-0d7e6f5a4b3c"
_CLIENT_SHARES = ((WEB_SHOP_CLIENT, 0.6), (MOBILE_APP_CLIENT, 0.3))
_EPOCH_START = 1_546_300_800  # 2019-01-01
_AS_OF = 1_764_547_200  # 2025-12-01: nothing is created or modified after this
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SF_SUFFIX = string.ascii_uppercase + "012345"
_OVERSIZED = 100_000

# people who have both an identity and a contact: planned evidence (the label is recomputed afterwards)
_SCENARIOS = (
    ("prelinked", 0.05),
    ("email", 0.53),
    ("mailbox", 0.10),
    ("phone", 0.12),
    ("name_place", 0.14),
    ("none", 0.06),
)
_DEFECT_KINDS = ("malformed_email", "oversized_field", "control_characters", "emoji", "empty_strings")
_EMOJI = ("😀", "🌸", "🎉", "👍🏽", "❤️", "🚀")
_CONTROL = ("\x00", "\x07", "\x1b[0m", "\x08", "\r\n", "\x0b")


def _cumulative(items: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    total, out = 0.0, []
    for name, share in items:
        total += share
        out.append((name, total))
    return tuple(out)


_SCENARIO_CUM = _cumulative(_SCENARIOS)
_COUNTRY_CODES = tuple(COUNTRIES)
_COUNTRY_EDGES = tuple(
    edge for _, edge in _cumulative(tuple((iso2, spec[1]) for iso2, spec in COUNTRIES.items()))
)


_B62_SQUARE = 62**2
_B62_PAIRS = tuple(a + b for a in _B62 for b in _B62)  # pairs, not triples: 3844 strings build at once
_UPPER_FLAGS = str.maketrans({c: "1" if c in string.ascii_uppercase else "0" for c in _B62})


class FastRandom(random.Random):
    """``random.Random`` whose ``choice``/``randrange`` scale one ``random()`` draw instead of rejection
    sampling: the tiny bias is irrelevant for test data and makes millions of records much cheaper."""

    def choice(self, seq):  # type: ignore[override]
        return seq[int(self.random() * len(seq))]

    def _randbelow(self, n: int) -> int:  # used by shuffle()
        return int(self.random() * n)

    def randrange(self, start, stop=None, step=1):  # type: ignore[override]
        if stop is None:
            return int(self.random() * start)
        return start + int(self.random() * (stop - start))


# 5-character case pattern ("1" = upper case) -> its checksum character
_SUFFIX_BY_FLAGS = {flags: _SF_SUFFIX[int(flags[::-1], 2)] for flags in (f"{bits:05b}" for bits in range(32))}


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 15 case-sensitive characters plus the case-encoding checksum
    (each 5-character chunk's upper-case positions, as a 5-bit index into A-Z0-5)."""
    high, rest = divmod(number % _B62_SQUARE**3, _B62_SQUARE**2)
    middle, low = divmod(rest, _B62_SQUARE)
    id15 = f"{prefix}5g0000{_B62_PAIRS[high]}{_B62_PAIRS[middle]}{_B62_PAIRS[low]}"
    flags = id15.translate(_UPPER_FLAGS)
    suffix = _SUFFIX_BY_FLAGS
    return f"{id15}{suffix[flags[:5]]}{suffix[flags[5:10]]}{suffix[flags[10:]]}"


def _uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# Timestamps are rendered from cached parts (``time.strftime`` per value is a tenth of a million-person run):
# the date of each day and every "MM:SS" are strings made once.
_DATES: dict[int, str] = {}
_HOURS = tuple(f"{h:02d}" for h in range(24))
_MINUTES_SECONDS = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_UNIX_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def _date_and_time(ts: int) -> tuple[str, str]:
    """("YYYY-MM-DD", "HH:MM:SS") of a non-negative epoch second in UTC (as ``time.gmtime`` would give)."""
    day, second = divmod(ts, 86400)
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = datetime.date.fromordinal(_UNIX_EPOCH_ORDINAL + day).isoformat()
    hour, rest = divmod(second, 3600)
    return date, f"{_HOURS[hour]}:{_MINUTES_SECONDS[rest]}"


def _markets(consent: str, created: int) -> bool:
    """Whether a synthetic identity also consents to marketing: about two thirds of those consenting to CRM sync,
    derived from values already drawn so the rest of the data stays as it was for each seed."""
    return consent == "granted" and created % 3 != 0


def _ts_graph(ts: int) -> str:
    date, clock = _date_and_time(ts)
    return f"{date}T{clock}Z"


def _ts_salesforce(ts: int) -> str:
    date, clock = _date_and_time(ts)
    return f"{date}T{clock}.000+0000"


def _ts_akamai(ts: int) -> str:
    date, clock = _date_and_time(ts)
    return f"{date} {clock}.000000 +0000"


@functools.lru_cache(maxsize=100_000)
def _ascii_token(text: str) -> str:
    return "".join(c for c in transliterate_german(text).lower() if c.isalnum() and c.isascii())


@dataclass(slots=True)
class Person:
    iso2: str
    pool: CountryPool
    first: str
    last: str
    street: str
    place: tuple[str, str, str]
    mobile: tuple[PhoneTemplate, str]
    landline: tuple[PhoneTemplate, str] | None
    email: str = ""
    alt_email: str = ""
    rtl: bool = False


@dataclass(slots=True)
class View:
    """One record's values before they are shaped into an API object."""

    first: str | None
    last: str | None
    email: str | None
    email_ok: bool
    mobile: tuple[str, str] | None  # (as written, E.164)
    landline: tuple[str, str] | None
    street: str | None
    city: str | None
    postal: str | None
    state: str | None
    country: str | None  # free text as written
    names_ok: bool
    provider: str = "salesforce"  # "b2c" | "akamai" | "scim" for identities
    defect: str | None = None

    def signals(self, iso2: str) -> Signals:
        """Only computed for people with both an identity and a contact: the truth needs nothing else."""
        country_known = self.provider == "b2c" or self.country is not None
        mobile, landline = self.mobile, self.landline
        if mobile:
            phones = (mobile[1], landline[1]) if landline else (mobile[1],)
        else:
            phones = (landline[1],) if landline else ()
        return Signals(
            normalise_email(self.email) if self.email and self.email_ok else None,
            phones,
            self.names_ok,
            normalise_postal(self.postal) if self.postal else None,
            normalise_city(self.city) if self.city else None,
            iso2 if country_known else None,
        )


class Builder:
    def __init__(
        self,
        *,
        seed: int,
        extensions_app_id: str,
        tenant: str,
        akamai_share: float,
        scim_share: float = 0.0,
        dynamics_share: float = 0.0,
        out: Any,
        truth_pair: Callable,
        negative: Callable,
        defect: Callable,
        people: int | None = None,
        profile: NoiseProfile = PROFILES["default"],
    ) -> None:
        self.profile = profile
        self.rng = FastRandom(seed)
        self.pools = all_pools(people)  # as broad as ``people`` needs (None = full pools)
        self.tenant = tenant
        app = extensions_app_id.replace("-", "")
        self.consent_attr = f"extension_{app}_CrmSyncConsent"
        self.marketing_attr = f"extension_{app}_MarketingConsent"
        self.contact_attr = f"extension_{app}_CrmContactId"
        self.client_attr = f"extension_{app}_SignUpClientId"
        # clients and sign-ins draw from a stream of their own: every other value of a seed stays the same
        self.client_rng = FastRandom(seed * 7919 + 211)
        self.akamai_share = akamai_share
        self.scim_share = scim_share
        self.scim_user_names: set[str] = set()
        self.dynamics_share = dynamics_share
        self.dynamics_rng = FastRandom(seed * 7919 + 365)
        self.dynamics_version = 1_000
        self.out = out
        self.truth_pair, self.negative, self.defect = truth_pair, negative, defect
        self.mailboxes: set[str] = set()  # canonical mailboxes in use: one person (or family) each
        self.contact_seq = self.rng.randrange(62**5)
        self.account_ids = [salesforce_id("001", self.rng.randrange(62**6)) for _ in range(500)]
        self.akamai_seq = self.rng.randrange(10_000, 1_000_000)
        self.rtl_first, self.rtl_last = rtl_names()
        self.related = related_first_names()
        big = "".join(self.rng.choices(string.ascii_letters, k=_OVERSIZED))
        self.oversized = [big[i:] + big[:i] for i in (0, 7, 13, 29)]

    # ---------------------------------------------------------------- people
    def run(self, people: int) -> None:
        # millions of new dicts would trigger the cycle collector over and over; none of them form cycles
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._run(people)
        finally:
            if enabled:
                gc.enable()

    def _run(self, people: int) -> None:
        rng = self.rng
        made = 0
        while made < people:
            r = rng.random()
            if r < self.profile.family_mailbox_rate and made + 2 <= people:
                self._family_mailbox()
                made += 2
            elif r < self.profile.family_mailbox_rate + self.profile.same_name_stranger_rate and made + 2 <= people:
                self._same_name_strangers()
                made += 2
            else:
                self._single()
                made += 1
        # records arrive in no particular order in real systems
        _shuffle(self.out.users, rng.random)
        _shuffle(self.out.contacts, rng.random)
        _shuffle(self.out.akamai_users, rng.random)
        _shuffle(self.out.scim_users, rng.random)
        _shuffle(self.out.dynamics_contacts, self.dynamics_rng.random)

    def _country(self) -> str:
        return _COUNTRY_CODES[bisect.bisect(_COUNTRY_EDGES, self.rng.random() * _COUNTRY_EDGES[-1])]

    def _person(self, iso2: str | None = None, first: str | None = None, last: str | None = None) -> Person:
        # the draws of ``_draw`` written out: this runs once per person
        rnd = self.rng.random
        iso2 = iso2 or self._country()
        pool = self.pools[iso2]
        rtl = first is None and rnd() < self.profile.non_latin_share
        if rtl:
            seq = self.rtl_first
            first = seq[int(rnd() * len(seq))]
            seq = self.rtl_last
            last = seq[int(rnd() * len(seq))]
        seq = pool.mobile_phones
        mobile = seq[int(rnd() * len(seq))]
        landline = None
        if rnd() < 0.3:
            seq = pool.landline_phones
            landline = seq[int(rnd() * len(seq))]
        if not first:
            seq = pool.first_names
            first = seq[int(rnd() * len(seq))]
        if not last:
            seq = pool.last_names
            last = seq[int(rnd() * len(seq))]
        seq = pool.streets
        street = _street(iso2, seq[int(rnd() * len(seq))], 1 + int(rnd() * 249))
        seq = pool.places
        place = seq[int(rnd() * len(seq))]
        return Person(
            iso2,
            pool,
            first,
            last,
            street,
            place,
            (mobile, f"{int(rnd() * 10_000):04d}"),
            (landline, f"{int(rnd() * 10_000):04d}") if landline else None,
            "",
            "",
            rtl,
        )

    def _claim(self, local: str, domain: str) -> str:
        """A new address whose mailbox nobody else uses (digits appended on collision, as providers do)."""
        rng = self.rng
        local = local.strip(".") or "user"
        email = f"{local}@{domain}"
        gmail = domain in GMAIL_DOMAINS
        while True:
            # locals are generated lower-case without "+", so the mailbox is the address (minus Gmail dots)
            key = f"{email.partition('@')[0].replace('.', '')}@gmail.com" if gmail else email
            if key not in self.mailboxes:
                self.mailboxes.add(key)
                return email
            email = f"{local}{rng.randrange(1, 10_000)}@{domain}"

    def _personal_email(self, p: Person, gmail: bool = False) -> str:
        rng = self.rng
        f, l = (_ascii_token(p.first), _ascii_token(p.last)) if not p.rtl else ("", "")
        if not f or not l:
            local = f"user{rng.randrange(100, 100_000)}"
        else:
            r = rng.random()
            if r < 0.35:
                local = f"{f}.{l}"
            elif r < 0.55:
                local = f"{f}{l}"
            elif r < 0.7:
                local = f"{f[0]}{l}"
            elif r < 0.8:
                local = f"{f}_{l}"
            elif r < 0.9:
                local = f"{f}.{l}{rng.randrange(1, 100)}"
            else:
                local = f"{l}{f[0]}{rng.randrange(60, 100)}"
        domains = p.pool.free_domains
        domain = "gmail.com" if gmail else domains[int(rng.random() * len(domains))]
        return self._claim(local, domain)

    def _work_email(self, p: Person) -> str:
        f, l = _ascii_token(p.first) or "info", _ascii_token(p.last) or "staff"
        local = f"{f}.{l}" if self.rng.random() < 0.7 else f"{f[0]}{l}"
        domains = p.pool.work_domains
        return self._claim(local, domains[int(self.rng.random() * len(domains))])

    # ---------------------------------------------------------------- units of people
    def _single(self) -> None:
        rng = self.rng
        r = rng.random()
        p = self._person()
        if r < 0.45:
            scenario = _pick(_SCENARIO_CUM, rng.random())
            p.email = self._personal_email(p, gmail=scenario == "mailbox" and rng.random() < 0.6)
            self._both(p, scenario)
        elif r < 0.80:
            p.email = self._personal_email(p)
            view = self._view(p, "identity", p.email, noisy=False)
            identity_id, provider = self._identity(p, view, crm_contact_id=None)
            self._maybe_dynamics(p, p.email, (provider, identity_id, view.signals(p.iso2)))
        else:
            personal = rng.random() < 1 - self.profile.contact_only_work_email_share
            p.email = self._personal_email(p) if personal else self._work_email(p)
            for _ in range(self._contact_count()):
                view = self._view(p, "contact", _maybe(rng, p.email, 0.95), noisy=rng.random() < 0.5)
                self._contact(p, view, external_id=None)
            self._maybe_dynamics(p, p.email, None)

    @contextmanager
    def _drawing_from(self, rng: FastRandom) -> Iterator[None]:
        """Render with another generator: the Dynamics records of a person draw from their own stream, so
        a dataset with Dynamics has exactly the B2C, Akamai and Salesforce records of the same seed without."""
        saved, self.rng = self.rng, rng
        try:
            yield
        finally:
            self.rng = saved

    def _maybe_dynamics(self, p: Person, email: str | None, identity: tuple[str, str, Any] | None) -> None:
        """A Dynamics contact for ``dynamics_share`` of the people (whether or not they are in Salesforce), with
        its truth pair when the person has an identity."""
        drng = self.dynamics_rng
        if not self.dynamics_share or drng.random() >= self.dynamics_share:
            return
        with self._drawing_from(drng):
            view = self._view(p, "contact", _maybe(drng, email, 0.9) if email else None, noisy=drng.random() < 0.5)
            carries = identity is not None and drng.random() < 0.05
            contact_id = self._dynamics_contact(view, identity[1] if identity and carries else None)
        if identity is not None:
            provider, identity_id, id_sig = identity
            self.out.truth.append(self.truth_pair(provider, identity_id, contact_id,
                                                  evidence(id_sig, view.signals(p.iso2), carries), "dynamics"))

    def _dynamics_contact(self, view: View, identity_id: str | None) -> str:
        """A contact in the Dataverse Web API's shape (``GET contacts``)."""
        rng = self.rng
        created = _EPOCH_START + int(rng.random() * (_AS_OF - _EPOCH_START))
        modified = min(_AS_OF, created + int(rng.random() * (600 * 86400)))
        self.dynamics_version += 1 + int(rng.random() * 3)
        contact_id = _uuid4(rng)
        phone, mobile = (view.landline[0] if view.landline else None), (view.mobile[0] if view.mobile else None)
        self.out.dynamics_contacts.append({
            "contactid": contact_id,
            "firstname": view.first,
            "lastname": view.last,
            "emailaddress1": view.email,
            "telephone1": phone,
            "mobilephone": mobile,
            "address1_line1": view.street,
            "address1_city": view.city,
            "address1_postalcode": view.postal,
            "address1_stateorprovince": view.state,
            "address1_country": view.country,
            "idlink_identityid": identity_id,
            "_parentcustomerid_value": None,
            "createdon": _ts_graph(created),
            "modifiedon": _ts_graph(modified),
            "versionnumber": self.dynamics_version,
            "statecode": 0,
            "merged": False,
            "_masterid_value": None,
        })
        if view.defect:
            self.out.defects.append(self.defect("dynamics", contact_id, view.defect))
        return contact_id

    def _contact_count(self) -> int:
        r = self.rng.random()
        return 3 if r < 0.02 else 2 if r < 0.07 else 1

    def _both(self, p: Person, scenario: str) -> None:
        rng = self.rng
        noisy_contact = rng.random() < 0.6  # typos, nicknames and dropped accents go on one side only
        id_email, c_email = p.email, p.email
        id_kw: dict[str, Any] = {}
        c_kw: dict[str, Any] = {}
        if scenario == "email":
            if rng.random() < 0.5:
                c_email = email_case_and_space(p.email, rng)
            else:
                id_email = email_case_and_space(p.email, rng) if rng.random() < 0.3 else p.email
        elif scenario == "mailbox":
            variant = mailbox_variant(p.email, rng)
            if rng.random() < 0.5:
                c_email = variant
            else:
                id_email = variant
        elif scenario in ("phone", "name_place", "none"):
            c_email = self._work_email(p) if rng.random() < self.profile.work_email_share else self._personal_email(p)
            c_email = _maybe(rng, c_email, 0.9)
            if scenario == "phone":
                id_kw["phone"] = c_kw["phone"] = "mobile"
            elif scenario == "name_place":
                id_kw.update(phone=None, address=True)
                c_kw.update(address=True, febrl=True)
                noisy_contact = True
            else:
                id_kw.update(phone=None, address=False)
                c_kw.update(phone="landline_only", moved=True)
        elif scenario == "prelinked" and rng.random() < 0.5:
            c_email = self._work_email(p)
        id_view = self._view(p, "identity", id_email, noisy=not noisy_contact, **id_kw)
        contacts = [self._view(p, "contact", c_email, noisy=noisy_contact, **c_kw)]
        for _ in range(self._contact_count() - 1):  # CRM duplicates of the same person
            r = rng.random()
            dup_email = (
                p.email
                if r < 0.3
                else c_email
                if r < 0.55
                else None
                if r < 0.75
                else email_case_and_space(p.email, rng)
            )
            contacts.append(self._view(p, "contact", dup_email, noisy=rng.random() < 0.5))

        link_identity = link_contact = False
        if scenario == "prelinked":
            r = rng.random()
            link_contact, link_identity = r < 0.6, r >= 0.4
        elif len(contacts) > 1 and rng.random() < 0.3:
            link_contact = True  # one duplicate already carries the identity id
        contact_ids = [self._next_contact_id() for _ in contacts]
        linked_index = rng.randrange(len(contacts))
        identity_id, provider = self._identity(
            p, id_view, crm_contact_id=contact_ids[linked_index] if link_identity else None
        )
        id_sig = id_view.signals(p.iso2)
        for i, (cid, view) in enumerate(zip(contact_ids, contacts)):
            carries = link_contact and i == linked_index
            self._contact(p, view, external_id=identity_id if carries else None, contact_id=cid)
            c_sig = view.signals(p.iso2)
            prelinked = (link_identity or link_contact) and i == linked_index
            self.out.truth.append(
                self.truth_pair(provider, identity_id, cid, evidence(id_sig, c_sig, prelinked))
            )
        self._maybe_dynamics(p, c_email, (provider, identity_id, id_sig))

    def _family_mailbox(self) -> None:
        """Two family members share one email; first names clearly differ. One or both have an identity."""
        rng = self.rng
        a = self._person()
        b = self._person(a.iso2, first=self._different_first_name(a), last=a.last)
        b.street, b.place = a.street, a.place
        family_local = f"{_ascii_token(a.last) or 'family'}{rng.choice(('family', 's', 'home', ''))}"
        shared = self._claim(family_local, rng.choice(a.pool.free_domains))
        a.email = b.email = shared
        plan = [(a, True, rng.random() < 0.5), (b, rng.random() < 0.4, True)]
        self._unit(plan, "family_mailbox", shared_email=shared)

    def _same_name_strangers(self) -> None:
        """Two people with the same full name and nothing else in common."""
        rng = self.rng
        a = self._person()
        b = self._person(first=a.first, last=a.last)
        b.rtl = a.rtl
        while b.place[0] == a.place[0] or normalise_postal(b.place[1]) == normalise_postal(a.place[1]):
            b.place = rng.choice(b.pool.places)
        a.email, b.email = self._personal_email(a), self._personal_email(b)
        plan = [(a, True, rng.random() < 0.4), (b, rng.random() < 0.3, True)]
        self._unit(plan, "same_name_stranger", shared_email=None)

    def _different_first_name(self, a: Person) -> str:
        pool = a.pool.first_names
        banned = self.related.get(a.first.lower(), frozenset())
        while True:
            name = self.rng.choice(pool)
            folded = strip_accents(name).lower()
            if (
                folded[:1] != strip_accents(a.first).lower()[:1]
                and name.lower() not in banned
                and len(name) > 2
            ):
                return name

    def _unit(self, plan: list[tuple[Person, bool, bool]], reason: str, shared_email: str | None) -> None:
        """Records of look-alike people: one's identity against another's contact is a negative."""
        rng = self.rng
        identities: list[tuple[str, str] | None] = []
        contacts: list[list[str]] = []
        for p, has_identity, has_contact in plan:
            ident = None
            id_sig = None
            if has_identity:
                view = self._view(p, "identity", p.email, noisy=False, clean=True)
                identity_id, provider = self._identity(p, view, crm_contact_id=None)
                ident, id_sig = (provider, identity_id), view.signals(p.iso2)
            own_contacts = []
            if has_contact:
                email = p.email if shared_email else _maybe(rng, p.email, 0.9)
                view = self._view(p, "contact", email, noisy=False, clean=True)
                cid = self._next_contact_id()
                self._contact(p, view, external_id=None, contact_id=cid)
                c_sig = view.signals(p.iso2)
                own_contacts.append(cid)
                if ident and id_sig is not None:
                    self.out.truth.append(
                        self.truth_pair(ident[0], ident[1], cid, evidence(id_sig, c_sig, False))
                    )
            identities.append(ident)
            contacts.append(own_contacts)
        for i, ident in enumerate(identities):
            if ident is None:
                continue
            for j, own in enumerate(contacts):
                if i != j:
                    for cid in own:
                        self.out.negatives.append(self.negative(ident[0], ident[1], cid, reason))

    # ---------------------------------------------------------------- record values
    def _view(
        self,
        p: Person,
        side: str,
        email: str | None,
        *,
        noisy: bool,
        phone: str | None = "random",
        address: bool | None = None,
        febrl: bool = False,
        moved: bool = False,
        clean: bool = False,
    ) -> View:
        rng = self.rng
        rnd = rng.random
        profile = self.profile
        identity = side == "identity"
        provider = "salesforce"
        # one draw only when another provider is in use: the B2C-only dataset of a seed never changes
        if identity and (self.akamai_share or self.scim_share):
            r = rnd()
            provider = "akamai" if r < self.akamai_share else "scim" if r < self.akamai_share + self.scim_share \
                else "b2c"
        elif identity:
            provider = "b2c"
        first: str | None = p.first
        last: str | None = p.last
        names_ok = True
        if noisy and not p.rtl:
            nicknamed = False
            if rnd() < profile.nickname_rate:
                nick = nickname_of(first, rng)
                if nick:
                    first, nicknamed = nick, True
            if rnd() < 0.6 and not (first.isascii() and last.isascii()):
                first, last = drop_accents(first, rng), drop_accents(last, rng)
            if febrl or rnd() < profile.name_typo_rate:
                edits = 1 if rnd() < 0.7 else 2
                if rnd() < 0.5 and not nicknamed:  # a nickname is not mistyped as well
                    first = typo(first, rng, edits)
                else:
                    last = typo(last, rng, edits)
        r = rnd()
        if r < 0.14:  # case and stray spaces, as typed into forms
            if r < 0.08:
                first = case_and_space(first, rng)
            else:
                last = case_and_space(last, rng)
        if not clean and rnd() < profile.missing_first_name[0 if identity else 1]:
            first, names_ok = None, False

        if address is None:
            address = rnd() < profile.address_share[0 if identity else 1]
        street = city = postal = state = country = None
        if address:
            if moved:
                place = _draw(p.pool.places, rnd)
                street = _street(p.iso2, _draw(p.pool.streets, rnd), 1 + int(rnd() * 249))
            else:
                place = p.place
                street = p.street
                if noisy or febrl:
                    if rnd() < 0.3:
                        street = abbreviate_street(street, rng)
                    if febrl or rnd() < profile.street_typo_rate:
                        street = typo(street, rng, 1 if rnd() < 0.7 else 2)
            city, postal, state = place
            r = rnd()
            if r < 0.3:
                if noisy and r < 0.15 and not city.isascii():
                    city = drop_accents(city, rng)
                elif r >= 0.22:
                    city = city.upper() if r < 0.26 else city.lower()
            r = rnd()
            missing = profile.missing_postal_code
            if r < 0.15 + missing:  # postal codes typed without their space, in lower case, or left out
                postal = None if r < missing else postal.replace(" ", "") if " " in postal else postal.lower()
            elif febrl and r < 0.25 + missing:
                postal = _digit_typo(postal, rng)  # then only city + country still agree
            names = COUNTRY_NAMES[p.iso2]
            country = names[0] if identity or rnd() < 0.5 else _draw(names, rnd)
        # B2C users always state usageLocation, so a national spelling can be read back there
        country_known = provider == "b2c" or country is not None
        mobile = landline = None
        if phone == "random":
            has_mobile = rnd() < profile.mobile_share[0 if identity else 1]
            has_landline = p.landline is not None and rnd() < 0.5
        elif phone == "mobile":
            has_mobile, has_landline = True, p.landline is not None and rnd() < 0.3
        elif phone == "landline_only":
            has_mobile, has_landline = False, p.landline is not None and rnd() < 0.5
        else:
            has_mobile = has_landline = False
        if has_mobile:
            mobile = self._phone(p, p.mobile, country_known, identity)
        if has_landline and p.landline:
            landline = self._phone(p, p.landline, country_known, identity)
        view = View(
            first,
            last,
            email,
            True,
            mobile,
            landline,
            street,
            city,
            postal,
            state,
            country,
            names_ok,
            provider,
        )
        if not clean and rnd() < 0.005:
            self._corrupt(view)
        if p.rtl and view.defect is None:
            view.defect = "rtl_text"
        return view

    def _phone(
        self, p: Person, number: tuple[PhoneTemplate, str], country_known: bool, identity: bool
    ) -> tuple[str, str]:
        rng = self.rng
        template, digits = number
        if identity and rng.random() < 0.6:
            style = "e164"  # what B2C's phone sign-up and MFA store
        elif country_known and rng.random() < 0.6:
            style = NATIONAL_STYLES[int(rng.random() * len(NATIONAL_STYLES))]
        else:
            style = INTERNATIONAL_STYLES[int(rng.random() * len(INTERNATIONAL_STYLES))]
            if style == "idd" and (p.pool.idd is None or not country_known):
                style = "intl"  # 00CC only reads back as international where 00 is the local exit code
        return render_phone(template, digits, style, p.pool.idd), fill(template.e164, digits)

    def _corrupt(self, view: View) -> None:
        """Turn the record into one of the bad records ingestion must flag without losing the rest."""
        rng = self.rng
        kind = rng.choice(_DEFECT_KINDS)
        if kind == "malformed_email":
            local, _, domain = (view.email or "no.email@example.com").strip().partition("@")
            view.email = rng.choice(
                (
                    f"{local}@@{domain}",
                    f"{local} {domain}",
                    f"{local}@{domain.split('.')[0]}",
                    f"{local}..x@{domain}",
                    f"{local}@{domain}@{domain}",
                    f"{local}.{domain}",
                )
            )
            view.email_ok = False
        elif kind == "oversized_field":
            view.first = rng.choice(self.oversized)
            view.names_ok = False
        elif kind == "control_characters":
            ctrl = rng.choice(_CONTROL)
            name = view.last or ""
            cut = rng.randrange(len(name) + 1)
            view.last = name[:cut] + ctrl + name[cut:]
            view.names_ok = False
        elif kind == "emoji":
            view.first = f"{view.first or ''} {rng.choice(_EMOJI)}".strip()
            view.names_ok = False
        else:
            view.first = view.last = view.email = ""
            view.email_ok = view.names_ok = False
            view.mobile = view.landline = None
        view.defect = kind

    # ---------------------------------------------------------------- native shapes
    def _next_contact_id(self) -> str:
        self.contact_seq += 1 + (self.rng.random() < 0.1)  # deleted records leave gaps
        return salesforce_id("003", self.contact_seq)

    def _identity(self, p: Person, view: View, crm_contact_id: str | None) -> tuple[str, str]:
        rng = self.rng
        created = _EPOCH_START + int(rng.random() * (_AS_OF - _EPOCH_START))
        r = rng.random()
        consent = "granted" if r < 0.7 else "withdrawn" if r < 0.8 else "missing"
        out = self.out
        provider = view.provider
        if provider == "akamai":
            record = self._akamai_user(view, created, consent, crm_contact_id)
            out.akamai_users.append(record)
            identity_id = record["uuid"]
        elif provider == "scim":
            record = self._scim_user(view, created, consent, crm_contact_id)
            out.scim_users.append(record)
            identity_id = record["id"]
        else:
            record = self._graph_user(p, view, created, consent, crm_contact_id)
            out.users.append(record)
            identity_id = record["id"]
        out.identity_consent[identity_id] = consent
        if view.defect:
            out.defects.append(self.defect(provider, identity_id, view.defect))
        return identity_id, provider

    def _signup_client(self) -> str | None:
        r = self.client_rng.random()
        for client, share in _CLIENT_SHARES:
            if r < share:
                return client
            r -= share
        return None

    def _graph_user(
        self, p: Person, view: View, created: int, consent: str, crm_contact_id: str | None
    ) -> dict:
        rng = self.rng
        uid = _uuid4(rng)
        upn = f"{uid}@{self.tenant}"
        email = view.email or ""
        first, last = view.first, view.last
        display = (f"{first} {last}" if last else first) if first else (last or "unknown")
        user = {
            "id": uid,
            "displayName": display,
            "givenName": view.first,
            "surname": view.last,
            "mail": email.strip() if email and rng.random() < 0.1 else None,
            "otherMails": [email.strip()] if email and rng.random() < 0.15 else [],
            "mobilePhone": view.mobile[0] if view.mobile else None,
            "businessPhones": [view.landline[0]] if view.landline else [],
            "streetAddress": view.street,
            "city": view.city,
            "postalCode": view.postal,
            "state": view.state,
            "country": view.country,
            "usageLocation": p.iso2,
            "accountEnabled": True,
            "createdDateTime": _ts_graph(created),
            "userPrincipalName": upn,
            "identities": [
                {"signInType": "emailAddress", "issuer": self.tenant, "issuerAssignedId": email},
                {"signInType": "userPrincipalName", "issuer": self.tenant, "issuerAssignedId": upn},
            ],
        }
        if consent != "missing":
            user[self.consent_attr] = consent == "granted"
            user[self.consent_attr + "At"] = _ts_graph(created)
        if _markets(consent, created):
            user[self.marketing_attr] = True
            user[self.marketing_attr + "At"] = _ts_graph(created)
        if crm_contact_id:
            user[self.contact_attr] = crm_contact_id
        client = self._signup_client()
        if client:
            user[self.client_attr] = client
        return user

    def _akamai_clients(self, created: int) -> tuple[list[dict], int | None]:
        """The ``clients`` plural (the client registered through first, sometimes a second one signed in to
        later) and the time of the last sign-in, if any."""
        crng = self.client_rng
        client = self._signup_client()
        if client is None:
            return [], None
        last_login = min(_AS_OF, created + int(crng.random() * 300 * 86400))
        clients = [{"clientId": client, "name": client, "firstLogin": _ts_akamai(created),
                    "lastLogin": _ts_akamai(last_login)}]
        if crng.random() < 0.2:
            other = MOBILE_APP_CLIENT if client == WEB_SHOP_CLIENT else WEB_SHOP_CLIENT
            first = min(last_login, created + 86400)
            clients.append({"clientId": other, "name": other, "firstLogin": _ts_akamai(first),
                            "lastLogin": _ts_akamai(last_login)})
        return clients, last_login

    def _akamai_user(self, view: View, created: int, consent: str, crm_contact_id: str | None) -> dict:
        rng = self.rng
        self.akamai_seq += 1
        updated = min(_AS_OF, created + rng.randrange(0, 400 * 86400))
        verified = _ts_akamai(created + rng.randrange(60, 3 * 86400)) if rng.random() < 0.85 else None
        consents = (
            {}
            if consent == "missing"
            else {"crmSync": {"granted": consent == "granted", "updated": _ts_akamai(updated)}}
        )
        if _markets(consent, created):
            consents["marketing"] = {"granted": True, "updated": _ts_akamai(updated)}
        clients, last_login = self._akamai_clients(created)
        return {
            "id": self.akamai_seq,
            "uuid": _uuid4(rng),
            "email": view.email,
            "emailVerified": verified,
            "givenName": view.first,
            "familyName": view.last,
            "mobileNumber": view.mobile[0] if view.mobile else (view.landline[0] if view.landline else None),
            "primaryAddress": {
                "address1": view.street,
                "city": view.city,
                "zip": view.postal,
                "country": view.country,
            },
            "created": _ts_akamai(created),
            "lastUpdated": _ts_akamai(updated),
            "consents": consents,
            "crmContactId": crm_contact_id,
            "clients": clients,
            "lastLogin": _ts_akamai(last_login) if last_login is not None else None,
        }

    def _scim_user(self, view: View, created: int, consent: str, crm_contact_id: str | None) -> dict:
        """A SCIM 2.0 User with the enterprise extension and idlink's extension (consent, carried CRM id)."""
        rng = self.rng
        updated = min(_AS_OF, created + rng.randrange(0, 400 * 86400))
        email = (view.email or "").strip()
        # userName is unique in a directory: a mailbox someone else signs in with gets a login name of its own
        user_name = email if email and email.lower() not in self.scim_user_names else f"u{rng.getrandbits(32):08x}"
        self.scim_user_names.add(user_name.lower())
        extension: dict[str, Any] = {}
        if consent != "missing":
            extension["crmSyncConsent"] = consent == "granted"
        if crm_contact_id:
            extension["crmContactId"] = crm_contact_id
        client = self._signup_client()
        if client:
            extension["clientId"] = client
        user: dict[str, Any] = {
            "schemas": [SCIM_CORE_USER, SCIM_ENTERPRISE_USER, SCIM_IDLINK_USER],
            "id": f"{rng.getrandbits(128):032x}",
            "externalId": f"{rng.getrandbits(48):012x}",
            "userName": user_name,
            "name": {"givenName": view.first, "familyName": view.last},
            "displayName": " ".join(part for part in (view.first, view.last) if part) or None,
            "active": True,
            "emails": [{"value": email, "type": "work", "primary": True}] if email else [],
            "phoneNumbers": [{"value": phone[0], "type": kind} for phone, kind in
                             ((view.mobile, "mobile"), (view.landline, "work")) if phone],
            "addresses": ([{"streetAddress": view.street, "locality": view.city, "postalCode": view.postal,
                            "region": view.state, "country": view.country, "type": "work", "primary": True}]
                          if view.street or view.city else []),
            SCIM_ENTERPRISE_USER: {"employeeNumber": str(rng.randrange(10_000, 999_999))},
            "meta": {"resourceType": "User", "created": _ts_graph(created), "lastModified": _ts_graph(updated)},
        }
        if extension:
            user[SCIM_IDLINK_USER] = extension
        return user

    def _contact(self, p: Person, view: View, external_id: str | None, contact_id: str | None = None) -> None:
        rng = self.rng
        cid = contact_id or self._next_contact_id()
        rnd = rng.random
        created = _EPOCH_START + int(rnd() * (_AS_OF - _EPOCH_START))
        modified = _ts_salesforce(min(_AS_OF, created + int(rnd() * (600 * 86400))))
        phone, mobile = (
            (view.landline[0] if view.landline else None),
            (view.mobile[0] if view.mobile else None),
        )
        if phone is None and mobile and rng.random() < 0.4:
            phone, mobile = mobile, None  # many CRMs keep the only number in Phone
        self.out.contacts.append(
            {
                "attributes": {
                    "type": "Contact",
                    "url": f"/services/data/v{SALESFORCE_API_VERSION}/sobjects/Contact/{cid}",
                },
                "Id": cid,
                "AccountId": self.account_ids[int(rnd() * len(self.account_ids))],
                "FirstName": view.first,
                "LastName": view.last,
                "Email": view.email,
                "Phone": phone,
                "MobilePhone": mobile,
                "MailingStreet": view.street,
                "MailingCity": view.city,
                "MailingPostalCode": view.postal,
                "MailingState": view.state,
                "MailingCountry": view.country,
                "External_User_Id__c": external_id,
                "CreatedDate": _ts_salesforce(created),
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
                "IsDeleted": False,
            }
        )
        if view.defect:
            self.out.defects.append(self.defect("salesforce", cid, view.defect))


def _digit_typo(code: str, rng: random.Random) -> str:
    positions = [i for i, c in enumerate(code) if c.isdigit()]
    if not positions:
        return code
    i = rng.choice(positions)
    return f"{code[:i]}{(int(code[i]) + rng.choice((1, 9))) % 10}{code[i + 1 :]}"


def _draw(seq, rnd):
    return seq[int(rnd() * len(seq))]


def _shuffle(items: list, rnd: Callable[[], float]) -> None:
    """Shuffle in place by sorting on one random key per item (``random.shuffle`` swaps in a Python loop)."""
    keys = [rnd() for _ in items]
    order = sorted(range(len(items)), key=keys.__getitem__)
    items[:] = [items[i] for i in order]


def _street(iso2: str, name: str, number: int) -> str:
    return f"{name} {number}" if iso2 in ("DE", "NL", "ES") else f"{number} {name}"


def _maybe(rng: random.Random, value: str, keep: float) -> str | None:
    return value if rng.random() < keep else None


def _pick(cumulative: tuple[tuple[str, float], ...], r: float) -> str:
    for name, edge in cumulative:
        if r < edge:
            return name
    return cumulative[-1][0]
