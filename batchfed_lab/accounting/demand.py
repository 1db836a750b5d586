"""What a placement takes (pure): cores, nodes and tasks of a job on the pool chosen for
it, and the hours it is charged for."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.jobs import JobSpecification
from ..scheduler.types import PoolFacts


@dataclass(frozen=True, slots=True)
class Demand:
    cores: float = 0.0
    nodes: float = 0.0
    tasks: int = 0

    def __add__(self, other: Demand) -> Demand:
        return Demand(self.cores + other.cores, self.nodes + other.nodes, self.tasks + other.tasks)

    def __sub__(self, other: Demand) -> Demand:
        return Demand(max(0.0, self.cores - other.cores), max(0.0, self.nodes - other.nodes), max(0, self.tasks - other.tasks))

    def of(self, unit: str) -> float:
        return float(getattr(self, unit))


def job_demand(job: JobSpecification, facts: PoolFacts) -> Demand:
    """Each task takes one slot per instance; a slot is the node's cores over its task slots
    (one core when the VM size is unknown); nodes are the slots over the slots per node."""
    slots = sum(t.num_instances for t in job.task_definitions)
    per_node = max(1, facts.task_slots_per_node)
    cores_per_slot = (facts.size.cores / per_node) if facts.size is not None else 1.0
    return Demand(cores=slots * cores_per_slot, nodes=math.ceil(slots / per_node), tasks=len(job.task_definitions))


def charged_hours(job: JobSpecification, assumed_hours: float) -> float:
    """The job's max_wall_time, else the assumed hours (a placement's run time is not known yet)."""
    return job.max_wall_time.total_seconds() / 3600.0 if job.max_wall_time else assumed_hours
