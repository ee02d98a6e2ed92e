"""Fast start-up paths of the sandbox: pool scaling and the on-disk pool cache, and the bulk seeding loaders."""

from __future__ import annotations

import gc
import random
import string

import pytest

from sandbox import akamai, salesforce
from sandbox.context import SandboxConfig, SandboxContext
from sandbox.microsoft import graph
from sandbox.salesforce.ids import to_18
from sandbox.salesforce.store import _seed_id
from sandbox.synthetic import generate
from sandbox.synthetic import pools as synthetic_pools


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty pool cache and no pools built in this process yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    synthetic_pools._pools_at.cache_clear()
    synthetic_pools.rtl_names.cache_clear()
    yield tmp_path / "idlink" / "synthetic"
    synthetic_pools._pools_at.cache_clear()
    synthetic_pools.rtl_names.cache_clear()


# ---------------------------------------------------------------- pools
def test_pool_scale_grows_with_the_dataset_up_to_full_pools() -> None:
    scales = [synthetic_pools.pool_scale(n) for n in (1, 250, 257, 5000, 8192, 2_000_000, None)]
    assert scales == sorted(scales)
    assert scales[0] == synthetic_pools.MIN_SCALE and scales[-1] == synthetic_pools.FULL_SCALE
    assert scales[-2] == synthetic_pools.FULL_SCALE
    small, full = synthetic_pools._breadth(scales[0]), synthetic_pools._breadth(synthetic_pools.FULL_SCALE)
    assert small.names < full.names == synthetic_pools.NAME_DRAWS
    assert small.towns < full.towns == synthetic_pools.PLACE_DRAWS


def test_cached_pools_equal_freshly_built_ones_and_bad_cache_files_are_rebuilt(fresh_cache) -> None:
    scale = synthetic_pools.MIN_SCALE
    built = synthetic_pools.all_pools(10)
    rtl = synthetic_pools.rtl_names()
    files = sorted(p.name for p in fresh_cache.iterdir())
    assert len(files) == 2 and not any(name.endswith(".tmp") for name in files)  # written atomically

    synthetic_pools._pools_at.cache_clear()
    synthetic_pools.rtl_names.cache_clear()
    assert synthetic_pools.all_pools(10) == built  # read back from disk, tuples and templates included
    assert synthetic_pools.rtl_names() == rtl

    for path in fresh_cache.iterdir():
        path.write_bytes(b'{"key": "truncat')
    synthetic_pools._pools_at.cache_clear()
    synthetic_pools.rtl_names.cache_clear()
    assert synthetic_pools.all_pools(10) == built
    assert synthetic_pools.rtl_names() == rtl
    assert synthetic_pools.country_pool("DE", scale) is synthetic_pools.all_pools(10)["DE"]


def test_small_pools_are_still_realistic(fresh_cache) -> None:
    pools = synthetic_pools.all_pools(100)
    de, fr = pools["DE"], pools["FR"]
    assert len(set(de.first_names)) > 100 and len(set(de.places)) > 100
    assert any(not name.isascii() for name in de.last_names + fr.first_names)  # accents survive
    assert all(len(code) == 5 and code.isdigit() for _, code, _ in de.places)
    assert len(de.mobile_phones) >= 6 and len(de.landline_phones) >= 6


def test_generation_is_deterministic_with_a_cold_and_a_warm_pool_cache(fresh_cache) -> None:
    cold = generate(300, seed=4)
    synthetic_pools._pools_at.cache_clear()
    synthetic_pools.rtl_names.cache_clear()
    warm = generate(300, seed=4)
    assert cold.users == warm.users and cold.contacts == warm.contacts and cold.truth == warm.truth


# ---------------------------------------------------------------- seeding
def test_seed_ids_normalise_exactly_as_to_18() -> None:
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits
    for _ in range(20_000):
        length = rng.choice((14, 15, 17, 18, 18, 19))
        text = "".join(
            rng.choice(alphabet + "é_ -") if rng.random() < 0.02 else rng.choice(alphabet)
            for _ in range(length)
        )
        if length == 18 and rng.random() < 0.5:
            full = to_18(text[:15])
            if full:
                text = text[:15] + (full[15:].lower() if rng.random() < 0.3 else full[15:])
        assert _seed_id(text) == to_18(text)


def test_load_contacts_keeps_the_seed_rules_and_the_unique_indexes() -> None:
    ctx = SandboxContext(SandboxConfig())
    gc_was_enabled = gc.isenabled()
    loaded = salesforce.load_contacts(
        ctx,
        [
            {
                "attributes": {"type": "Contact"},
                "Id": "0035g00000AbCdE",
                "FirstName": "",
                "LastName": "Doe",
                "Email": "Jo@Example.com",
                "External_User_Id__c": "EXT-1",
                "CreatedDate": "2024-01-02T03:04:05Z",
            },
            {
                "LastName": "Roe",
                "Email": "jo@example.com",
                "IsDeleted": 0,
                "CreatedDate": "2024-01-01T00:00:00.000+0000",
                "LastModifiedDate": "2024-02-01T00:00:00.000+0000",
            },
            {"Id": "0035g00000AbCdE", "FirstName": "Jo", "LastName": "Doe", "External_User_Id__c": "ext-2"},
        ],
    )
    assert loaded == 3 and gc.isenabled() == gc_was_enabled
    records = ctx.state["salesforce"]["Contact"]
    assert len(records) == 2
    replaced = records[to_18("0035g00000AbCdE")]
    assert replaced["Name"] == "Jo Doe" and replaced["Email"] is None and "attributes" not in replaced
    other = next(r for r in records.values() if r["LastName"] == "Roe")
    assert other["Name"] == "Roe" and other["IsDeleted"] is False and other["FirstName"] is None
    assert other["SystemModstamp"] == other["LastModifiedDate"] == "2024-02-01T00:00:00.000+0000"
    store = salesforce.org_of(ctx).contacts
    assert store.find_by_external_id("External_User_Id__c", "EXT-2") == [replaced["Id"]]
    assert store.find_by_external_id("External_User_Id__c", "EXT-1") == []  # unindexed when replaced
    assert store._by_email == {"jo@example.com": {other["Id"]}}
    with pytest.raises(ValueError, match="malformed Id"):
        salesforce.load_contacts(ctx, [{"Id": "003-not-an-id!!"}])
    with pytest.raises(ValueError, match="not a datetime"):
        salesforce.load_contacts(ctx, [{"LastName": "X", "CreatedDate": "yesterday"}])


def test_load_entities_copies_sorts_and_numbers_like_entity_create() -> None:
    ctx = SandboxContext(SandboxConfig())
    given = [
        {"id": 20, "uuid": "u-20", "email": "b@example.com", "primaryAddress": {"city": "Berlin"}},
        {"id": 10, "uuid": "u-10", "email": "a@example.com", "consents": {"crmSync": {"granted": True}}},
        {"email": "c@example.com", "tags": ["x"]},
    ]
    assert akamai.load_entities(ctx, given) == 3
    t = akamai.tenant(ctx)
    assert [e["id"] for e in t.records] == [10, 20, 21]
    assert [e["uuid"] for e in t.records[:2]] == ["u-10", "u-20"]
    new = t.records[2]
    assert new["uuid"] and new["created"] == new["lastUpdated"] and new["tags"] == ["x"]
    given[0]["primaryAddress"]["city"] = "Bonn"
    given[2]["tags"].append("y")
    assert t.by_uuid["u-20"]["primaryAddress"]["city"] == "Berlin" and new["tags"] == ["x"]
    assert {"tags", "primaryAddress", "consents"} <= t.schema
    with pytest.raises(akamai.ApiFailure):
        akamai.load_entities(ctx, [{"uuid": "u-10"}])


def test_load_users_keeps_positions_and_fills_missing_ids() -> None:
    ctx = SandboxContext(SandboxConfig())
    assert graph.load_users(ctx, [{"id": "a", "displayName": "A"}, {"displayName": "B"}]) == 2
    store = graph.store(ctx)
    assert store.order[0] == "a" and len(store.users) == 2
    with pytest.raises(ValueError, match="not JSON objects"):
        graph.load_users(ctx, [{"id": "c"}, "nope"])
