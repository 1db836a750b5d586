"""Plain, immutable inputs and outputs of the scheduler.

The scheduler sees the world only through these types: the Batch adapter
builds :class:`PoolSnapshot` objects from the service, the config layer builds
:class:`TaskGroup` summaries from jobs.yaml, and the scheduler returns a
:class:`Decision` with a :class:`Verdict` for every pool. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, NamedTuple, overload

NodeKind = Literal["dedicated", "low_priority"]
VerdictStatus = Literal["chosen", "eligible", "excluded", "skipped"]


@dataclass(frozen=True, slots=True)
class VmSize:
    """Facts of one VM size (from the catalog, a per-pool override or the service)."""

    name: str
    cores: int
    memory_mib: int
    gpus: int = 0
    rdma: bool = False
    family: str = ""

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


@dataclass(frozen=True, slots=True)
class NodeCounts:
    """Nodes of one kind (dedicated or low-priority) in a pool, by state.

    Only ``idle`` and ``running`` nodes are schedulable (SPEC §1). ``other``
    counts every other state (starting, rebooting, preempted, offline, ...).
    """

    idle: int = 0
    running: int = 0
    other: int = 0
    # of ``other``: nodes the service gave up on, which re-placement watches
    unusable: int = 0
    start_failed: int = 0

    @property
    def schedulable(self) -> int:
        return self.idle + self.running

    @property
    def total(self) -> int:
        return self.idle + self.running + self.other


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What a pool *is*: changes rarely (pool config, size catalog)."""

    pool_id: str
    service_url: str
    account: str
    location: str
    vm_size: str
    size: VmSize | None  # None → "size unknown"
    task_slots_per_node: int = 1
    autoscale: bool = False
    inter_node_communication: bool = False
    native: bool = False  # a pool with no native flag is non-native (SPEC §4.1)
    windows: bool = False
    custom_image_id: str | None = None
    subnet_id: str | None = None
    registry_logins: frozenset[str] = frozenset()
    target_dedicated: int = 0
    target_low_priority: int = 0
    identity: str | None = None  # ARM id of the managed identity its tasks reach storage with
    # unique across a federation (the same pool id may exist in two accounts);
    # computed once because every verdict and sort uses it
    key: str = field(init=False, repr=False, compare=False)
    # how ties between equally good pools are broken (SPEC §4.3): by pool id, then the key,
    # which only separates the same pool id in two accounts
    tie_key: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", pool_key(self.service_url, self.pool_id))
        object.__setattr__(self, "tie_key", (self.pool_id.lower(), self.key))
        object.__setattr__(self, "location", self.location.lower())


@lru_cache(maxsize=4096)  # a handful of accounts, asked for every pool of every decision
def url_key(service_url: str) -> str:
    """A Batch service URL as the federation compares it: no trailing slash, lower case."""
    return service_url.rstrip("/").lower()


def pool_key(service_url: str, pool_id: str) -> str:
    return f"{url_key(service_url)}#{pool_id}"


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """A pool's facts plus its load at one moment."""

    facts: PoolFacts
    dedicated: NodeCounts = NodeCounts()
    low_priority: NodeCounts = NodeCounts()
    active_tasks: int | None = None  # None → unknown (then a backlog ratio cannot be judged)
    allocation_state: str = "steady"  # steady | resizing | stopping
    state: str = "active"  # active | deleting
    blackout_until: float | None = None  # epoch seconds; not a candidate before it

    @property
    def key(self) -> str:
        return self.facts.key

    @property
    def pool_id(self) -> str:
        return self.facts.pool_id

    def slots(self, kind: NodeKind) -> int:
        nodes = self.dedicated if kind == "dedicated" else self.low_priority
        return nodes.schedulable * self.facts.task_slots_per_node

    @property
    def total_slots(self) -> int:
        return (self.dedicated.schedulable + self.low_priority.schedulable) * self.facts.task_slots_per_node


@dataclass(frozen=True, slots=True)
class TaskGroup:
    """Summary of the tasks carried by one add action (what placement needs)."""

    total_instances: int  # slots needed: one per task, N per N-instance task
    max_instances: int = 1  # the largest multi-instance count (nodes needed)
    multi_instance: bool = False
    gpu: bool = False  # some task asks for GPUs
    infiniband: bool = False  # some task asks for RDMA/IB
    registries: frozenset[str] = frozenset()  # registry logins the images need
    task_count: int = 0


class Verdict(NamedTuple):
    """Why a pool is or is not the answer. ``constraint`` names the first failing rule."""

    pool: str  # pool key
    status: VerdictStatus
    constraint: str | None = None
    required: str | None = None
    actual: str | None = None
    reason: str = "eligible"

    @property
    def pool_id(self) -> str:
        return self.pool.rsplit("#", 1)[-1]


class Verdicts(Sequence[Verdict]):
    """A decision's verdicts, one per pool in pool-key order, built when first read.

    A placement reads none of them (a blocked action's record and explain read them all),
    and each is an object the garbage collector tracks (it never untracks a NamedTuple):
    one per pool of a 10,000-pool federation made its older generations sweep every pool,
    which cost more than judging the pools.
    """

    __slots__ = ("_build", "_table")

    def __init__(self, build: Callable[[], tuple[Verdict, ...]]) -> None:
        self._build: Callable[[], tuple[Verdict, ...]] | None = build
        self._table: tuple[Verdict, ...] = ()

    @property
    def table(self) -> tuple[Verdict, ...]:
        build = self._build
        if build is not None:  # two threads may both build it: the same pure result
            self._table, self._build = build(), None  # let go of the pools and the checks
        return self._table

    @overload
    def __getitem__(self, i: int) -> Verdict: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Verdict, ...]: ...
    def __getitem__(self, i: int | slice) -> Verdict | tuple[Verdict, ...]:
        return self.table[i]

    def __len__(self) -> int:
        return len(self.table)

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self.table)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Verdicts):
            return self.table == other.table
        if isinstance(other, tuple):
            return self.table == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.table)

    def __repr__(self) -> str:
        return repr(self.table)


@dataclass(frozen=True, slots=True)
class Decision:
    """The scheduler's answer for one task group."""

    pool: str | None  # chosen pool key, or None → blocked
    node_kind: NodeKind | None = None
    unit: Literal["slots", "nodes"] = "slots"
    required: int = 0
    capacity: int = 0
    rule: str | None = None  # idle-fit | schedulable-fit | steady-autoscale | backlog
    reason: str = ""
    verdicts: Sequence[Verdict] = ()  # Verdicts from decide(): built when first read

    @property
    def placed(self) -> bool:
        return self.pool is not None

    def verdict_for(self, key: str) -> Verdict | None:
        for v in self.verdicts:
            if v.pool == key:
                return v
        return None
