"""Precision and recall of the linking marts against a synthetic dataset's ground truth.

- precision: share of active links that are true pairs.
- recall: share of linkable true pairs (evidence other than "none", identity consented) that the marts
  recognised: as the active link, or as a CRM duplicate of the linked contact (one person, several contacts;
  only one of them can hold the link).
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class LinkQuality:
    active_links: int
    true_links: int
    linkable_pairs: int
    recognised_pairs: int
    precision: float
    recall: float


def measure(con: duckdb.DuckDBPyConnection, truth, identity_consent: dict[str, str]) -> LinkQuality:
    true_pairs = {(p.identity_provider, p.identity_id, p.contact_id) for p in truth}
    linkable = {(p.identity_provider, p.identity_id, p.contact_id) for p in truth
                if p.evidence != "none" and identity_consent.get(p.identity_id) == "granted"}
    active = set(con.execute(
        "select identity_provider, identity_id, contact_id from marts.identity_contact_links "
        "where status = 'active'").fetchall())
    duplicates = set(con.execute(
        "select identity_provider, identity_id, duplicate_contact_id from marts.crm_duplicate_contacts"
    ).fetchall())
    true_links = len(active & true_pairs)
    recognised = len((active | duplicates) & linkable)
    return LinkQuality(
        active_links=len(active), true_links=true_links, linkable_pairs=len(linkable),
        recognised_pairs=recognised,
        precision=true_links / len(active) if active else 1.0,
        recall=recognised / len(linkable) if linkable else 1.0,
    )
