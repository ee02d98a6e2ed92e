"""Linking on the public FEBRL 4 data set: names and addresses full of typos are all that connect the sides."""
from __future__ import annotations

import pytest

from tests.dbt.febrl import build, febrl4

# Measured recall of the match model on this data (bench/record_linkage.py); a change that loses links fails here.
RECALL_FLOOR = 0.99


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data = febrl4()
    result = build(data, tmp_path_factory.mktemp("febrl"), ["build"])
    return data, result.run, result.links


def test_sources_without_any_email_or_phone_build_and_pass_every_data_test(built):
    _, run, _ = built
    assert run.returncode == 0, run.output[-4000:]
    assert not run.failures()


def test_every_link_is_a_true_pair_found_by_the_match_model(built):
    data, _, links = built
    assert links
    assert {(identity, contact) for identity, contact, _ in links} <= data.true_pairs
    assert {rule for _, _, rule in links} == {"match_model"}


def test_most_people_are_found_despite_typos_swapped_names_and_partial_streets(built):
    data, _, links = built
    found = {(identity, contact) for identity, contact, _ in links} & data.true_pairs
    assert len(found) / len(data.true_pairs) >= RECALL_FLOOR
