"""Prices and cost arithmetic: the shipped table (dated, sourced, overridable), a job's
estimated cost on a pool (low-priority discount included), a task's from its run time, a
pool's burn rate, and one-line errors for a bad price file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from factories import make_pool

from batchfed_lab.accounting.cost import job_cost, pool_burn_rate, task_cost
from batchfed_lab.accounting.demand import Demand
from batchfed_lab.accounting.prices import PriceTable, default_prices, load_prices
from batchfed_lab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_table_states_its_date_and_source_and_is_regenerated():
    table = default_prices()
    assert table.as_of == "2026-12-07" and "illustrative" in table.source
    p = table.price("standard_d2_v3", "westeurope")
    assert p is not None and p.dedicated == pytest.approx(0.1075) and p.low_priority == pytest.approx(0.0215)
    assert table.price("STANDARD_D2_V3", "WestEurope") == p and table.price("d2_v3", "westeurope") == p
    assert table.price("standard_d2_v3", "mars") is None
    check = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_prices.py"), "--check"], capture_output=True)
    assert check.returncode == 0, "prices.csv is stale: run .venv/bin/python docs/gen_prices.py"


def test_a_price_file_overrides_the_table(tmp_path, monkeypatch):
    f = tmp_path / "ours.csv"
    f.write_text(
        "# ours as of 2027-01-01\nvm_size,region,dedicated_per_hour,low_priority_per_hour\nStandard_D2_v3,westeurope,1.5,0.5\n"
    )
    assert load_prices(f).price("standard_d2_v3", "westeurope").dedicated == 1.5
    monkeypatch.setenv("BATCHFED_PRICES", str(f))
    table = default_prices()
    assert table.as_of == "2027-01-01" and table.price("standard_d2_v3", "westeurope").low_priority == 0.5


def test_a_bad_price_file_is_refused_in_one_line_naming_the_line_and_field(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("vm_size,region,dedicated_per_hour,low_priority_per_hour\nStandard_D2_v3,westeurope,cheap,0.1\n")
    with pytest.raises(ConfigError, match=r"^.*bad\.csv line 2: dedicated_per_hour: 'cheap' is not a price ≥ 0$"):
        load_prices(f)
    f.write_text("size,price\n")
    with pytest.raises(ConfigError, match="expected columns vm_size,region,dedicated_per_hour,low_priority_per_hour"):
        load_prices(f)


def test_a_jobs_cost_is_its_share_of_the_nodes_for_its_hours():
    table = PriceTable.from_rows([("standard_d4_v3", "westeurope", 0.2, 0.04)])
    pool = make_pool(vm_size="standard_d4_v3", location="westeurope")
    price = table.price_of(pool.facts)
    assert job_cost(Demand(cores=8, nodes=2, tasks=8), pool.facts, price, "dedicated", hours=3) == pytest.approx(2 * 0.2 * 3)
    assert job_cost(Demand(cores=2, nodes=1, tasks=2), pool.facts, price, "low_priority", hours=1) == pytest.approx(0.5 * 0.04)
    assert job_cost(Demand(cores=2), pool.facts, None, "dedicated", hours=1) is None


def test_a_tasks_cost_is_its_run_time_on_its_slot_and_a_pools_burn_rate_its_nodes():
    assert task_cost(seconds=1800, node_rate=0.4, slots_per_node=4) == pytest.approx(0.05)
    table = PriceTable.from_rows([("standard_d2_v3", "westeurope", 0.1, 0.02)])
    pool = make_pool(vm_size="standard_d2_v3", idle=2, running=1, lp_idle=5)
    assert pool_burn_rate(pool, table.price_of(pool.facts)) == pytest.approx(3 * 0.1 + 5 * 0.02)


def test_explain_costs_each_candidate_pool_with_the_low_priority_discount_where_it_applies():
    from batchfed_lab.accounting.cost import candidate_costs
    from batchfed_lab.config.jobs import JobSpecification
    from batchfed_lab.scheduler.types import Decision

    table = PriceTable.from_rows([("standard_d2_v3", "westeurope", 0.1, 0.02)])
    dedicated = make_pool("ded", vm_size="standard_d2_v3", idle=1)
    spot = make_pool("spot", vm_size="standard_d2_v3", idle=0, lp_idle=2)
    unknown = make_pool("mars", vm_size="standard_d2_v3", location="mars")
    job = JobSpecification(id="j", tasks=[{"command": "true"}] * 2, max_wall_time="3:00:00")
    chosen = Decision(pool=spot.key, node_kind="low_priority")
    costs = candidate_costs(job, [dedicated, spot, unknown], chosen, table, hours=3.0)
    assert costs[dedicated.key] == (0.1, pytest.approx(2 * 0.1 * 3))  # 2 tasks x 2 cores = 2 nodes
    assert costs[spot.key] == (0.02, pytest.approx(2 * 0.02 * 3))
    assert costs[unknown.key] == (None, None)
