"""Noise profiles: the rates at which the generator makes people hard to link. ``default`` is the sandbox's own
data; ``messy`` differs in every distribution linking depends on, so a model fitted to one is not thereby fitted
to the other: more typos and missing fields, more family mailboxes and same-name strangers, more contacts with a
work address instead of the personal one, and more names in non-Latin scripts."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoiseProfile:
    name: str
    family_mailbox_rate: float = 0.01  # units of two family members sharing one mailbox, per person drawn
    same_name_stranger_rate: float = 0.01  # units of two strangers with one full name, per person drawn
    non_latin_share: float = 0.003  # people whose names are written in a non-Latin script
    nickname_rate: float = 0.15  # a noisy record gives a nickname for the first name
    name_typo_rate: float = 0.08  # a noisy record mistypes a name
    street_typo_rate: float = 0.10  # a noisy record mistypes the street
    missing_first_name: tuple[float, float] = (0.01, 0.02)  # (identity, contact)
    address_share: tuple[float, float] = (0.65, 0.88)  # records with an address (identity, contact)
    missing_postal_code: float = 0.05
    mobile_share: tuple[float, float] = (0.65, 0.6)  # records with the mobile number (identity, contact)
    # a contact found only by phone or name and place holds a work address rather than the personal one
    work_email_share: float = 0.6
    # a contact-only person's address is a work one
    contact_only_work_email_share: float = 0.2


PROFILES = {
    "default": NoiseProfile("default"),
    "messy": NoiseProfile(
        "messy",
        family_mailbox_rate=0.04,
        same_name_stranger_rate=0.04,
        non_latin_share=0.03,
        nickname_rate=0.25,
        name_typo_rate=0.2,
        street_typo_rate=0.25,
        missing_first_name=(0.04, 0.08),
        address_share=(0.5, 0.75),
        missing_postal_code=0.15,
        mobile_share=(0.5, 0.45),
        work_email_share=0.85,
        contact_only_work_email_share=0.5,
    ),
}


def noise_profile(name: str) -> NoiseProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown noise profile {name!r} (one of {', '.join(PROFILES)})") from None
