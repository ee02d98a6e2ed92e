"""Synthetic identities and CRM contacts with ground truth, in each API's native JSON shape.

``generate(size, seed)`` invents about ``size / 0.8`` people and writes each of them into the systems
they use: Azure AD B2C (Microsoft Graph user objects) or Akamai Identity Cloud (entity records), and
Salesforce (Contact records). It returns the records plus the truth: every (identity, contact) pair that
is the same person, with the strongest evidence the two records share, and hard negatives that look alike
but are different people.

Distribution (shares are of people unless stated):
- 45% identity + contact, 35% identity only, 20% contact only (~``size`` identities, ~0.85 * ``size``
  contacts).
- Of identities, ``akamai_share`` live in Akamai and ``scim_share`` in a SCIM 2.0 directory instead of B2C.
- ``dynamics_share`` of the people also have a Dynamics 365 contact, whether or not they have a Salesforce one,
  so a person may be in Salesforce, Dynamics, both or neither (truth pairs name their ``crm``). Dynamics records
  draw from a random stream of their own: the other systems' records of a seed are the same with or without.
- People who have both sides are written to steer their evidence: ~5% pre-linked (the contact's
  External_User_Id__c holds the identity id, or the identity's CrmContactId holds the contact id, or both),
  ~53% same email (case/space noise on one side), ~10% same mailbox (Gmail dots, googlemail.com, ``+tag``),
  ~12% personal vs work email with the same phone, ~14% different emails and only names + address
  (1-2 typos in names and street, abbreviations, now and then a mistyped postal code so only city + country
  agree; the FEBRL-like case), ~6% nothing usable (moved, no phone).
  The label in ``truth`` is recomputed from the written values (``evidence``), not from the plan.
- CRM duplicates: 7% of people with a contact have two or three contacts (different modification dates; when
  the person has an identity, one duplicate may already carry its id).
- Noise on one side or the other: email case/spaces; nicknames (``nicknames`` data), accents on one side only
  (José/Jose, Müller/Mueller/Muller), case and whitespace in names, 1-2 character typos, street
  abbreviations, postal-code spacing, free-text country names; phones as national (spaces, dashes, dots,
  parentheses, compact),
  +CC, 00CC or E.164 — national and 00CC spellings are only used when the record also states its country
  (B2C users always do, through usageLocation).
- Missing fields: phone (~35% of identities, ~30% of contacts), address (~35% / ~12%), first name (~1.5%).
- Hard negatives (~1% of people each): shared family mailboxes (two family members, clearly different first
  names, one email; reason ``family_mailbox``) and same-name strangers (same full name, different email, phone
  and place; reason ``same_name_stranger``).
- Consent of identities: granted ~70%, withdrawn ~10%, missing ~20% (attribute absent).
- ~0.3% of people write their names in Arabic or Hebrew script (``rtl_text``); ~0.5% of records are bad:
  ``malformed_email``, ``oversized_field`` (a 100 kB name), ``control_characters``, ``emoji``,
  ``empty_strings``. Every one is listed in ``defects`` with the record's id.
- Countries US, GB, DE, FR, ES, NL, IE, CA, AU with their own names, streets, cities, postal codes and valid
  phone numbers (pools built from faker once per process, as broad as ``size`` needs; see ``pools``).

Akamai entity shape (``akamai_users``)::

    {"id": int, "uuid": str, "email": str | None, "emailVerified": ISO timestamp | None,
     "givenName": str | None, "familyName": str | None, "mobileNumber": str | None,
     "primaryAddress": {"address1", "city", "zip", "country"} (values may be None),
     "created": "2024-01-01 00:00:00.000000 +0000", "lastUpdated": same format,
     "consents": {"crmSync": {"granted": bool, "updated": timestamp}} ({} when consent is missing),
     "crmContactId": Salesforce Contact Id when pre-linked, else None}

Everything is drawn from one seeded generator: the same seed gives the same dataset (in any process).
Records are shuffled, as APIs return them in no meaningful order.

SCIM user shape (``scim_users``): RFC 7643 User resources (``userName`` = the email, ``name``, ``emails``,
``phoneNumbers``, ``addresses``, ``active``, ``meta``) with the enterprise extension (``employeeNumber``) and
idlink's extension ``urn:ietf:params:scim:schemas:extension:idlink:2.0:User`` holding ``crmSyncConsent``
(absent when consent is missing) and ``crmContactId`` when pre-linked.

Files (``write_dataset``): users.jsonl, contacts.jsonl, akamai_users.jsonl, scim_users.jsonl (native shapes), truth.jsonl
(TruthPair fields), negatives.jsonl (Negative fields), consent.jsonl ({"identity_id", "consent"}),
defects.jsonl (Defect fields).
CLI: ``python -m sandbox.synthetic --size N [--seed S] [--akamai-share F] --out DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

from sandbox.synthetic import profiles
from sandbox.synthetic.build import Builder

DEFAULT_EXTENSIONS_APP_ID = "b2c0e5a1-5e1d-4c2b-9a7f-3c1d2e4f5a6b"
DEFAULT_TENANT = "idlinksandbox.onmicrosoft.com"


class TruthPair(NamedTuple):
    identity_provider: str  # "b2c" | "akamai" | "scim"
    identity_id: str
    contact_id: str
    evidence: str  # "id" | "email" | "mailbox" | "phone" | "name_place" | "none"
    crm: str = "salesforce"  # "salesforce" | "dynamics": which CRM holds the contact


class Negative(NamedTuple):
    identity_provider: str
    identity_id: str
    contact_id: str
    reason: str  # "family_mailbox" | "same_name_stranger"


class Defect(NamedTuple):
    system: str  # "b2c" | "akamai" | "scim" | "salesforce"
    record_id: str
    # "malformed_email" | "oversized_field" | "control_characters" | "emoji" | "empty_strings" | "rtl_text"
    kind: str


@dataclass
class SyntheticData:
    users: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    akamai_users: list[dict] = field(default_factory=list)
    scim_users: list[dict] = field(default_factory=list)
    dynamics_contacts: list[dict] = field(default_factory=list)
    truth: list[TruthPair] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    identity_consent: dict[str, str] = field(default_factory=dict)
    defects: list[Defect] = field(default_factory=list)


def generate(
    size: int,
    seed: int = 7,
    extensions_app_id: str = DEFAULT_EXTENSIONS_APP_ID,
    tenant: str = DEFAULT_TENANT,
    akamai_share: float = 0.0,
    scim_share: float = 0.0,
    dynamics_share: float = 0.0,
    noise_profile: str = "default",
) -> SyntheticData:
    """About ``size`` identities and ``size`` contacts with ground truth; deterministic for ``seed`` and
    ``noise_profile`` (sandbox.synthetic.profiles: ``default`` or ``messy``)."""
    if size < 0:
        raise ValueError("size must be >= 0")
    if not 0.0 <= dynamics_share <= 1.0:
        raise ValueError("dynamics_share must be between 0 and 1")
    if not 0.0 <= akamai_share <= 1.0 or not 0.0 <= scim_share <= 1.0 or akamai_share + scim_share > 1.0:
        raise ValueError("akamai_share and scim_share must be between 0 and 1 and add up to at most 1")
    data = SyntheticData()
    people = round(size / 0.8)
    builder = Builder(
        seed=seed,
        extensions_app_id=extensions_app_id,
        tenant=tenant,
        akamai_share=akamai_share,
        scim_share=scim_share,
        dynamics_share=dynamics_share,
        out=data,
        truth_pair=TruthPair,
        negative=Negative,
        defect=Defect,
        people=people,
        profile=profiles.noise_profile(noise_profile),
    )
    builder.run(people=people)
    return data


_FILES = ("users", "contacts", "akamai_users", "scim_users", "dynamics_contacts", "truth", "negatives", "consent",
          "defects")


def _rows(data: SyntheticData, name: str) -> Iterable[object]:
    if name == "truth":
        return (p._asdict() for p in data.truth)
    if name == "negatives":
        return (n._asdict() for n in data.negatives)
    if name == "defects":
        return (d._asdict() for d in data.defects)
    if name == "consent":
        return ({"identity_id": k, "consent": v} for k, v in data.identity_consent.items())
    return getattr(data, name)


def write_dataset(data: SyntheticData, out_dir: str | Path) -> dict[str, Path]:
    """Write every part as JSON lines (one object per line), streaming; returns {part name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in _FILES:
        path = out / f"{name}.jsonl"
        with path.open("wb", buffering=1 << 20) as fh:
            chunk: list[bytes] = []
            for row in _rows(data, name):
                chunk.append(orjson.dumps(row))
                if len(chunk) >= 10_000:
                    fh.write(b"\n".join(chunk) + b"\n")
                    chunk.clear()
            if chunk:
                fh.write(b"\n".join(chunk) + b"\n")
        paths[name] = path
    return paths


def _read_jsonl(path: Path) -> Iterable[dict]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)


def load_truth(out_dir: str | Path) -> list[TruthPair]:
    """Truth pairs written by ``write_dataset``."""
    return [TruthPair(**row) for row in _read_jsonl(Path(out_dir) / "truth.jsonl")]


def load_negatives(out_dir: str | Path) -> list[Negative]:
    """Hard negatives written by ``write_dataset``."""
    return [Negative(**row) for row in _read_jsonl(Path(out_dir) / "negatives.jsonl")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic identity/CRM dataset with ground truth.")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--akamai-share", type=float, default=0.0)
    parser.add_argument("--scim-share", type=float, default=0.0)
    parser.add_argument("--dynamics-share", type=float, default=0.0)
    parser.add_argument("--noise-profile", choices=sorted(profiles.PROFILES), default="default")
    parser.add_argument("--extensions-app-id", default=DEFAULT_EXTENSIONS_APP_ID)
    parser.add_argument("--tenant", default=DEFAULT_TENANT)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = generate(args.size, args.seed, args.extensions_app_id, args.tenant, args.akamai_share, args.scim_share,
                    args.dynamics_share, args.noise_profile)
    generated = time.perf_counter()
    paths = write_dataset(data, args.out)
    print(
        f"{len(data.users)} B2C users, {len(data.akamai_users)} Akamai users, {len(data.scim_users)} SCIM users, "
        f"{len(data.contacts)} Salesforce contacts, {len(data.dynamics_contacts)} Dynamics contacts, "
        f"{len(data.truth)} truth pairs, {len(data.negatives)} negatives: generated in "
        f"{generated - started:.1f} s, written in {time.perf_counter() - generated:.1f} s to {args.out}",
        file=sys.stderr,
    )
    print(orjson.dumps({k: str(v) for k, v in paths.items()}).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
