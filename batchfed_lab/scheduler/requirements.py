"""From a job's constraints and task group to one flat, resolved set of requirements.

Resolution happens once per decision so the per-pool checks stay cheap:
implied GPU/IB from tasks, memory in MiB, variance bounds, defaults for
``native`` / ``windows`` taken from the submitter's pool.yaml when given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..config.constraints import FederationConstraints
from .types import TaskGroup


@dataclass(frozen=True, slots=True)
class Requirements:
    allow_autoscale: bool = True
    autoscale_exclusive: bool = False
    allow_low_priority: bool = True
    low_priority_exclusive: bool = False
    native: bool | None = None
    windows: bool | None = False
    location: str | None = None
    registries: frozenset[str] = frozenset()
    backlog_ratio: float | None = None
    backlog_autoscale_exempt: bool = True
    custom_image_id: str | None = None  # lower-cased
    subnet_id: str | None = None  # lower-cased
    vm_size: str | None = None  # lower-cased, without the standard_ prefix
    cores_min: int | None = None
    cores_max: float | None = None
    memory_min_mib: float | None = None
    memory_max_mib: float | None = None
    exclusive: bool = False
    gpu: bool | None = None
    infiniband: bool | None = None
    multi_instance: bool = False
    need: int = 1
    unit: Literal["slots", "nodes"] = "slots"
    data_regions: frozenset[str] = frozenset()  # where the job's inputs live (known regions)
    data_unknown: tuple[str, ...] = ()  # storage accounts of its inputs whose region is unknown
    data_hard: bool = False  # pool.location: data

    @property
    def data_text(self) -> str:
        """``data: inputs in westeurope`` — what explain shows for the data rule."""
        return f"data: inputs in {', '.join(sorted(self.data_regions)) or 'an unknown region'}"

    @property
    def node_kinds(self) -> tuple[Literal["dedicated", "low_priority"], ...]:
        if self.low_priority_exclusive:
            return ("low_priority",)
        if not self.allow_low_priority:
            return ("dedicated",)
        return ("dedicated", "low_priority")


DATA_LOCATION = "data"  # pool.location: data — the region of the job's inputs


def normalize_size(name: str) -> str:
    n = name.strip().lower()
    return n[len("standard_") :] if n.startswith("standard_") else n


def _upper(amount: float, variance: float | None) -> float | None:
    if variance is None:
        return None
    return amount * (1.0 + variance)


def resolve(
    constraints: FederationConstraints,
    group: TaskGroup,
    *,
    native_default: bool | None = None,
    windows_default: bool | None = False,
    data_regions: Mapping[str, str | None] | None = None,
) -> Requirements:
    """Resolve constraints for one task group.

    ``native_default`` / ``windows_default`` are what the submitter's pool.yaml
    says (SPEC §4.1 "from pool config"); with no pool.yaml, any native flag is
    accepted and Linux is assumed (task commands are shell commands).
    ``data_regions``: the storage accounts the job's inputs come from → their region (None
    when unknown); ``pool.location: data`` turns the preference for them into a constraint.
    """
    pool = constraints.pool
    data = dict(data_regions or {})
    data_hard = pool.location == DATA_LOCATION
    node = constraints.compute_node
    backlog = pool.max_active_task_backlog
    gpu = True if group.gpu else node.gpu
    ib = True if group.infiniband else node.infiniband
    return Requirements(
        allow_autoscale=pool.autoscale.allow,
        autoscale_exclusive=pool.autoscale.exclusive,
        allow_low_priority=pool.low_priority_nodes.allow,
        low_priority_exclusive=pool.low_priority_nodes.exclusive,
        native=pool.native if pool.native is not None else native_default,
        windows=pool.windows if pool.windows is not None else windows_default,
        location=pool.location.lower() if pool.location and not data_hard else None,
        registries=group.registries,
        backlog_ratio=backlog.ratio if backlog else None,
        backlog_autoscale_exempt=backlog.autoscale_exempt if backlog else True,
        custom_image_id=pool.custom_image_arm_id.lower() if pool.custom_image_arm_id else None,
        subnet_id=pool.virtual_network_arm_id.lower() if pool.virtual_network_arm_id else None,
        vm_size=normalize_size(node.vm_size) if node.vm_size else None,
        cores_min=node.cores.amount if node.cores else None,
        cores_max=_upper(node.cores.amount, node.cores.schedulable_variance) if node.cores else None,
        memory_min_mib=node.memory.amount_mib if node.memory else None,
        memory_max_mib=_upper(node.memory.amount_mib, node.memory.schedulable_variance) if node.memory else None,
        exclusive=node.exclusive,
        gpu=gpu,
        infiniband=ib,
        multi_instance=group.multi_instance,
        need=group.max_instances if group.multi_instance else group.total_instances,
        unit="nodes" if group.multi_instance else "slots",
        data_regions=frozenset(r.lower() for r in data.values() if r),
        data_unknown=tuple(sorted(a for a, r in data.items() if not r)),
        data_hard=data_hard,
    )
