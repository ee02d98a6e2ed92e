"""Steward decisions on identity-contact pairs, kept in the warehouse table link_decisions.decisions (created by
every dbt build: macro create_link_decision_tables). The link build honours the latest decision of each pair
over the rules and the match model (model int_link_decisions): `link` links the pair first (rule steward_link),
`never_link` and `unlink` keep it from being linked or reviewed again. Decisions are only ever added, so the
table is their history; rebuilding and retraining leave it untouched."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from warehouse import Connection

DECISIONS = ("link", "never_link", "unlink")
TABLE = "link_decisions.decisions"


class DecisionError(ValueError):
    """A decision that cannot be recorded (unknown pair, nothing to unlink, missing who or why)."""


@dataclass(frozen=True)
class Decision:
    identity_provider: str
    identity_id: str
    crm: str
    contact_id: str
    decision: str
    decided_by: str
    reason: str
    decided_at: datetime | None = None
    decision_id: str | None = None

    def as_dict(self) -> dict:
        return {**self.__dict__, "decided_at": self.decided_at.isoformat() if self.decided_at else None}


def _require_link_build(con: Connection) -> None:
    if not all(con.table_exists(*name.split(".")) for name in (TABLE, "intermediate.int_identities",
                                                               "intermediate.int_contacts")):
        raise DecisionError("the warehouse has no link build yet: run the linking (dbt build) first")


def _exists(con: Connection, sql: str, params: list) -> bool:
    return con.fetchone(sql, params) is not None


def record_decision(con: Connection, decision: Decision) -> Decision:
    """Validates and appends one decision; returns it with its id and time. A pair to link must exist on both
    sides; an unlink needs the pair's active link."""
    if decision.decision not in DECISIONS:
        raise DecisionError(f"decision must be one of {', '.join(DECISIONS)}, not {decision.decision!r}")
    if not decision.decided_by.strip() or not decision.reason.strip():
        raise DecisionError("say who decides (--by) and why (--reason)")
    _require_link_build(con)
    if not _exists(con, "select 1 from intermediate.int_identities where identity_provider = ? and identity_id = ?",
                   [decision.identity_provider, decision.identity_id]):
        raise DecisionError(f"no identity {decision.identity_provider}:{decision.identity_id} in the warehouse")
    if not _exists(con, "select 1 from intermediate.int_contacts where crm = ? and contact_id = ?",
                   [decision.crm, decision.contact_id]):
        raise DecisionError(f"no contact {decision.crm}:{decision.contact_id} in the warehouse")
    if decision.decision == "unlink" and not _exists(
            con, """select 1 from marts.identity_contact_links where status = 'active' and identity_provider = ?
                    and identity_id = ? and crm = ? and contact_id = ?""",
            [decision.identity_provider, decision.identity_id, decision.crm, decision.contact_id]):
        raise DecisionError("the pair has no active link to undo: record never_link to keep it from being linked")
    recorded = Decision(**{**decision.__dict__, "decided_at": datetime.now(UTC).replace(tzinfo=None),
                           "decision_id": str(uuid.uuid4())})
    con.execute(f"""insert into {TABLE} (decision_id, identity_provider, identity_id, crm, contact_id, decision,
                        decided_by, decided_at, reason) values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [recorded.decision_id, recorded.identity_provider, recorded.identity_id, recorded.crm,
                 recorded.contact_id, recorded.decision, recorded.decided_by, recorded.decided_at, recorded.reason])
    return recorded


def list_decisions(con: Connection, history: bool = False) -> list[Decision]:
    """The decision in force for every pair (the latest), or with `history` every decision, newest first."""
    _require_link_build(con)
    rows = con.execute(f"""select identity_provider, identity_id, crm, contact_id, decision, decided_by, reason,
            decided_at, decision_id
        from (select *, row_number() over (partition by identity_provider, identity_id, crm, contact_id
                                           order by decided_at desc, decision_id desc) as newness
              from {TABLE}) as decisions
        where {'true' if history else 'newness = 1'}
        order by decided_at desc, decision_id desc""")
    return [Decision(*row) for row in rows]
