"""The match model's estimator (expectation-maximisation in SQL, dbt_project/macros/matching/em.sql) recovers the m and
u probabilities and the match share that generated a set of comparison patterns, without labels.

Pairs are generated from known parameters for two blocking keys, the second holding one comparison out as a key
that compares its column does (a key needs at least three comparisons left for its two groups to be told apart); the expected count of every pattern is written as training's tables would hold it,
and `dbt run-operation fit_match_parameters` fits them from a generic start (no settled pairs to seed from).
"""
from __future__ import annotations

import itertools
import json
import math

import duckdb
import pytest

from tests.dbt.dbt_cli import run_dbt

# level 1 .. n per comparison (the last is 'different'); m: among matches, u: among non-matches
M = {"a": [0.80, 0.15, 0.05], "b": [0.90, 0.10], "c": [0.70, 0.20, 0.10], "d": [0.85, 0.15]}
U = {"a": [0.01, 0.04, 0.95], "b": [0.05, 0.95], "c": [0.02, 0.08, 0.90], "d": [0.10, 0.90]}
# key id -> (pairs, share of matches, comparisons the key holds out)
KEYS = {1: (100_000, 0.3, ()), 2: (50_000, 0.6, ("a",))}
TOLERANCE = 0.01  # absolute, on every m, u and match share

COMPARISONS = [
    {"name": name, "column": f"{name}_key",
     "levels": [{"name": f"level_{n}", "kind": "exact"} for n in range(1, len(M[name]))]}
    for name in M
]
SETTINGS = {"random_records": 10, "max_iterations": 400, "min_seed_pairs": 1000, "tolerance": 1e-7}


def _patterns() -> list[tuple[int, dict[str, int], int]]:
    """(key, level per comparison, expected pair count) of every combination of levels."""
    rows = []
    for key, (pairs, share, held_out) in KEYS.items():
        names = [name for name in M if name not in held_out]
        for levels in itertools.product(*(range(1, len(M[name]) + 1) for name in names)):
            match = share * math.prod(M[n][lv - 1] for n, lv in zip(names, levels))
            chance = (1 - share) * math.prod(U[n][lv - 1] for n, lv in zip(names, levels))
            rows.append((key, {**dict.fromkeys(held_out, 0), **dict(zip(names, levels))},
                         round(pairs * (match + chance))))
    return rows


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("em")
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema match_model")
        con.execute("create table match_model.training_patterns (pattern_id integer, key_id integer, a_level integer,"
                    " b_level integer, c_level integer, d_level integer, pairs bigint)")
        con.execute("create table match_model.training_pattern_levels (key_id integer, pattern_id integer,"
                    " comparison varchar, level integer)")
        for pattern_id, (key, levels, pairs) in enumerate(_patterns(), 1):
            con.execute("insert into match_model.training_patterns values (?, ?, ?, ?, ?, ?, ?)",
                        [pattern_id, key, levels["a"], levels["b"], levels["c"], levels["d"], pairs])
            for name, level in levels.items():
                if level:
                    con.execute("insert into match_model.training_pattern_levels values (?, ?, ?, ?)",
                                [key, pattern_id, name, level])
        con.execute("create table match_model.training_seed (comparison varchar, level integer, m double)")
        con.execute("create table match_model.training_u (comparison varchar, level integer, random_pairs bigint,"
                    " u double)")
        for name, u in U.items():
            for level, value in enumerate(u, 1):
                con.execute("insert into match_model.training_u values (?, ?, 1000, ?)", [name, level, value])
    variables = {"match_comparisons": COMPARISONS, "match_vetoes": [], "match_training": SETTINGS}
    run = run_dbt(["run-operation", "fit_match_parameters", "--vars", json.dumps(variables)], workdir / "target",
                  {"WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"})
    assert run.returncode == 0, run.output[-4000:]
    return duckdb.connect(str(warehouse), read_only=True)


def test_em_recovers_the_m_probabilities_of_every_level(fitted):
    m = {(name, level): value for name, level, value in fitted.execute(
        "select comparison, level, m from match_model.training_m").fetchall()}
    for name, expected in M.items():
        for level, value in enumerate(expected, 1):
            assert m[name, level] == pytest.approx(value, abs=TOLERANCE), (name, level)


def test_each_key_recovers_its_share_of_matches_and_its_u_probabilities(fitted):
    estimates = {(key, name, level): (m, u) for key, name, level, m, u in fitted.execute(
        "select key_id, comparison, level, m, u from match_model.training_estimates").fetchall()}
    for key, (_, share, held_out) in KEYS.items():
        assert estimates[key, "", 0][0] == pytest.approx(share, abs=TOLERANCE)
        for name in M:
            assert ((key, name, 1) in estimates) == (name not in held_out)
            for level, value in enumerate(U[name], 1):
                if name not in held_out:
                    assert estimates[key, name, level][1] == pytest.approx(value, abs=TOLERANCE), (key, name, level)


def test_match_weights_are_log2_of_m_over_u(fitted):
    for name, level, weight in fitted.execute(
            "select comparison, level, match_weight from match_model.training_levels").fetchall():
        assert weight == pytest.approx(math.log2(M[name][level - 1] / U[name][level - 1]), abs=0.05), (name, level)
