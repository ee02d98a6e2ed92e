"""Realtime fixtures: an inbox (bound as the sensors' resource) and stand-in assets for the sensors' job to select from.

The stand-ins mirror the asset keys and groups of the real code location, so the sensors can be evaluated
without dlt, dbt or any outside system.
"""
from __future__ import annotations

import dagster as dg
import pytest

from inbox import Inbox
from orchestration.defs import realtime
from orchestration.defs.resources import AlertResource, InboxResource


def _stand_in(key: list[str] | str, group: str, deps=()) -> dg.AssetsDefinition:
    @dg.asset(key=key, group_name=group, deps=list(deps))
    def _asset() -> None:
        return None

    return _asset


STAND_IN_ASSETS = [
    _stand_in("raw_b2c_users", "ingestion"),
    _stand_in("raw_salesforce_contact", "ingestion"),
    _stand_in("raw_akamai_users", "ingestion"),
    _stand_in("raw_dynamics_contact", "ingestion"),
    _stand_in("identity_contact_links", "linking",
              deps=["raw_b2c_users", "raw_salesforce_contact", "raw_akamai_users", "raw_dynamics_contact"]),
    _stand_in(["reverse_etl", "salesforce_contacts"], "reverse_etl", deps=["identity_contact_links"]),
]


@pytest.fixture
def stand_in_defs(inbox: Inbox) -> dg.Definitions:
    return dg.Definitions(assets=STAND_IN_ASSETS, sensors=[realtime.inbox_sensor],
                          resources={"inbox": InboxResource(path=str(inbox.path)), "alerts": AlertResource()})


@pytest.fixture
def recorded_run_config(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Replace the ingestion modules' run-config builders with recorders returning recognisable fragments."""
    calls: list[tuple] = []

    def targeted(identity_ids, contact_ids):
        calls.append(("targeted", list(identity_ids), list(contact_ids)))
        return {"ops": {"raw_b2c_users": {"config": {"identity_ids": list(identity_ids)}},
                        "raw_salesforce_contact": {"config": {"contact_ids": list(contact_ids)}}}}

    def akamai(uuids):
        calls.append(("akamai", list(uuids)))
        return {"ops": {"raw_akamai_users": {"config": {"identity_ids": list(uuids)}}}}

    def dynamics(contact_ids):
        calls.append(("dynamics", list(contact_ids)))
        return {"ops": {"raw_dynamics__contact": {"config": {"contact_ids": list(contact_ids)}}}}

    monkeypatch.setattr(realtime, "targeted_run_config", targeted)
    monkeypatch.setattr(realtime, "akamai_run_config", akamai)
    monkeypatch.setattr(realtime, "dynamics_run_config", dynamics)
    return calls
