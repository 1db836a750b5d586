"""Cost arithmetic (pure). Every figure is an ESTIMATE: list prices (see :mod:`.prices`)
times node-hours, without discounts, storage, network or idle time outside the jobs."""

from __future__ import annotations

from collections.abc import Sequence

from ..config.jobs import JobSpecification
from ..scheduler.types import Decision, PoolFacts, PoolSnapshot
from .demand import Demand, job_demand
from .prices import Price, PriceTable


def node_share(demand: Demand, facts: PoolFacts) -> float:
    """The nodes a job takes: its cores over the VM size's, else its node count."""
    if facts.size is not None and facts.size.cores > 0:
        return demand.cores / facts.size.cores
    return demand.nodes


def job_cost(demand: Demand, facts: PoolFacts, price: Price | None, node_kind: str | None, *, hours: float) -> float | None:
    """A job's estimated cost on a pool for ``hours`` (None when the price is unknown)."""
    if price is None:
        return None
    return node_share(demand, facts) * price.rate(node_kind) * hours


def task_cost(*, seconds: float, node_rate: float, slots_per_node: int) -> float:
    """A task's estimated cost: its run time on one task slot of its node."""
    return max(0.0, seconds) / 3600.0 * node_rate / max(1, slots_per_node)


def pool_burn_rate(snap: PoolSnapshot, price: Price | None) -> float | None:
    """What a pool's allocated nodes cost per hour now (every node state is billed)."""
    if price is None:
        return None
    d, lp = snap.dedicated, snap.low_priority
    return (d.idle + d.running + d.other) * price.dedicated + (lp.idle + lp.running + lp.other) * price.low_priority


def candidate_costs(
    job: JobSpecification, snaps: Sequence[PoolSnapshot], decision: Decision, prices: PriceTable, *, hours: float
) -> dict[str, tuple[float | None, float | None]]:
    """Pool key → (node price per hour, the job's estimated cost there) for ``hours``: on the
    chosen pool at the node kind the decision takes, elsewhere at dedicated prices unless the
    pool has only low-priority nodes (the low-priority discount shows where it applies)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for snap in snaps:
        f = snap.facts
        if snap.key == decision.pool and decision.node_kind is not None:
            kind: str = decision.node_kind
        else:
            kind = "low_priority" if f.target_dedicated == 0 and f.target_low_priority > 0 else "dedicated"
        price = prices.price_of(f)
        rate = None if price is None else price.rate(kind)
        out[snap.key] = (rate, job_cost(job_demand(job, f), f, price, kind, hours=hours))
    return out
