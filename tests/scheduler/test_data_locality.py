"""Data locality: pools in the region of a job's inputs are preferred among the eligible ones
(a soft rule after the hard constraints), and ``pool.location: data`` makes it hard. The
regions come in as data: storage account name → region (None when unknown)."""

from __future__ import annotations

import pytest
from factories import NOW, group, make_constraints, make_pool

from batchfed_lab.config.jobs import JobsConfig
from batchfed_lab.config.loading import validate
from batchfed_lab.errors import ConfigError
from batchfed_lab.scheduler import constraint_matrix, decide

EAST = make_pool("east", location="eastus", idle=8)
WEST = make_pool("west", location="westeurope", idle=2)


def test_without_inputs_the_policy_alone_chooses() -> None:
    assert decide(make_constraints(), group(1), [EAST, WEST], NOW).pool == EAST.key


def test_a_pool_in_the_inputs_region_is_preferred_and_explain_says_why() -> None:
    d = decide(make_constraints(), group(1), [EAST, WEST], NOW, data_regions={"acct": "westeurope"})
    assert d.pool == WEST.key
    assert "data: inputs in westeurope" in d.reason
    assert "data: inputs in westeurope" in (d.verdict_for(WEST.key) or ("", "", "", "", "", "")).reason


def test_the_preference_is_soft_when_no_pool_of_that_region_is_eligible() -> None:
    d = decide(make_constraints(), group(1), [EAST, WEST.__class__(WEST.facts)], NOW, data_regions={"acct": "westeurope"})
    assert d.pool == EAST.key  # west has no schedulable node: skipped by load
    assert "data: inputs in westeurope" in d.reason and "none eligible there" in d.reason


def test_location_data_makes_it_hard() -> None:
    d = decide(make_constraints(pool={"location": "data"}), group(1), [EAST, WEST], NOW, data_regions={"acct": "westeurope"})
    assert d.pool == WEST.key
    v = d.verdict_for(EAST.key)
    assert v is not None and v.status == "excluded" and v.constraint == "data"
    assert v.required == "westeurope" and v.actual == "eastus"


def test_location_data_blocks_when_the_inputs_region_is_unknown_and_names_the_account() -> None:
    d = decide(make_constraints(pool={"location": "data"}), group(1), [EAST, WEST], NOW, data_regions={"big": None})
    assert d.pool is None
    assert "the region of storage account big (unknown: set its location)" in d.reason


def test_explain_matrix_shows_the_data_row() -> None:
    rows = constraint_matrix(make_constraints(), group(1), [EAST, WEST], NOW, data_regions={"acct": "westeurope"})
    data = {r.pool: r for r in rows if r.constraint == "data"}
    assert data[WEST.key].passed and not data[EAST.key].passed


def test_location_data_needs_input_data() -> None:
    with pytest.raises(ConfigError, match=r"pool\.location: data needs input_data"):
        validate(
            JobsConfig,
            {
                "job_specifications": [
                    {"id": "j", "federation_constraints": {"pool": {"location": "data"}}, "tasks": [{"command": "x"}]}
                ]
            },
            "jobs.yaml",
        )
