"""Per-pool verdicts: hard constraints (SPEC §4.1) then the load filter (§4.2).

Hard constraints exclude a pool for this attempt; the load filter only skips
it now (it may have room later). Checks run in the original's order and the
first failure names the constraint with the required and the actual value.
Only the checks a job actually sets are built, once per decision, and each
judges a distinct value (a region, an image, a size) once per decision, so a
10,000-pool federation costs a few dict look-ups per pool.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import attrgetter
from typing import NamedTuple
from datetime import datetime, timezone

from ..config.units import format_mib
from .requirements import Requirements, normalize_size
from .types import PoolFacts, PoolSnapshot, Verdict

Failure = tuple  # ("excluded", constraint, required, actual, reason): a Verdict without its pool key
_MISS = object()


class HardCheck:
    """One hard constraint a job sets.

    ``judge(facts)`` returns ``(constraint, required, actual, reason)`` when the pool fails,
    else None, and reads only the fields ``depends_on(facts)`` picks. So a decision judges
    each distinct value once (``memo``): large federations repeat regions, images and sizes,
    and the per-pool cost becomes a field lookup and a dict hit. Calling the check gives the
    pool's :class:`Verdict` (or None), as explain's full table wants.
    """

    __slots__ = ("constraint", "required", "actual", "fields", "depends_on", "judge", "memo")

    def __init__(
        self,
        constraint: str,
        required: str,
        actual: Callable[[PoolFacts], object],
        fields: tuple[str, ...],
        judge: Callable[[PoolFacts], "tuple[str, object, object, str] | None"],
    ):
        self.constraint, self.required, self.actual = constraint, required, actual
        self.fields, self.depends_on, self.judge = fields, attrgetter(*fields), judge
        self.memo: dict[Hashable, Failure | None] = {}

    def failure(self, facts: PoolFacts) -> Failure | None:
        key = self.depends_on(facts)
        found = self.memo.get(key, _MISS)
        if found is _MISS:
            made = self.judge(facts)
            if made is not None:
                constraint, required, actual, reason = made
                made = ("excluded", constraint, str(required), str(actual), f"{constraint}: {reason}")
            found = self.memo[key] = made
        return found  # type: ignore[return-value]

    def __call__(self, facts: PoolFacts) -> Verdict | None:
        found = self.failure(facts)
        return None if found is None else _new_verdict(Verdict, (facts.key, *found))


_new_verdict = tuple.__new__  # a Verdict from a tuple, without a Python-level __new__ per pool


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _os(windows: bool) -> str:
    return "windows" if windows else "linux"


def _range(lo: float, hi: float | None, fmt: Callable[[float], str]) -> str:
    if hi is None:
        return f"≥ {fmt(lo)}"
    if hi == lo:
        return f"exactly {fmt(lo)}"
    return f"{fmt(lo)}–{fmt(hi)}"


def build_hard_checks(req: Requirements) -> list[HardCheck]:
    """The ordered checks this requirement set needs (unset constraints cost nothing).
    Each check's ``depends_on`` must pick every field its ``judge`` reads."""
    checks: list[HardCheck] = []

    def add(constraint: str, required: str, actual: Callable[[PoolFacts], object], *fields: str):
        def register(judge: Callable[[PoolFacts], "tuple[str, object, object, str] | None"]) -> None:
            checks.append(HardCheck(constraint, required, actual, fields, judge))

        return register

    if req.location is not None:
        loc = req.location

        @add("location", loc, lambda f: f.location, "location")
        def location(f: PoolFacts):
            if f.location != loc:
                return "location", loc, f.location, f"needs {loc}, pool is in {f.location}"
            return None

    if req.subnet_id is not None:
        subnet = req.subnet_id

        @add("virtual_network", subnet, lambda f: f.subnet_id or "none", "subnet_id")
        def virtual_network(f: PoolFacts):
            if (f.subnet_id or "").lower() != subnet:
                return "virtual_network", subnet, f.subnet_id or "none", "needs the named subnet, pool has " + (f.subnet_id or "no subnet")
            return None

    if req.custom_image_id is not None:
        image = req.custom_image_id

        @add("custom_image", image, lambda f: f.custom_image_id or "platform image", "custom_image_id")
        def custom_image(f: PoolFacts):
            # a platform-image pool simply does not match (the original crashed here)
            if (f.custom_image_id or "").lower() != image:
                actual = f.custom_image_id or "platform image"
                return "custom_image", image, actual, f"needs custom image {image}, pool uses {actual}"
            return None

    if req.windows is not None:
        want_windows = req.windows

        @add("windows", _os(want_windows), lambda f: _os(f.windows), "windows")
        def windows(f: PoolFacts):
            if f.windows != want_windows:
                return "windows", _os(want_windows), _os(f.windows), f"needs a {_os(want_windows)} pool, pool is {_os(f.windows)}"
            return None

    if req.native is not None:
        want_native = req.native

        @add("native", _yn(want_native), lambda f: _yn(f.native), "native")
        def native(f: PoolFacts):
            if f.native != want_native:
                return "native", _yn(want_native), _yn(f.native), f"needs native={_yn(want_native)}, pool has native={_yn(f.native)}"
            return None

    if not req.allow_autoscale:

        @add("autoscale", "no autoscale", lambda f: "autoscale" if f.autoscale else "fixed size", "autoscale")
        def autoscale_allow(f: PoolFacts):
            if f.autoscale:
                return "autoscale", "no autoscale", "autoscale", "autoscale pools not allowed"
            return None

    if req.autoscale_exclusive:

        @add("autoscale", "autoscale", lambda f: "autoscale" if f.autoscale else "fixed size", "autoscale")
        def autoscale_exclusive(f: PoolFacts):
            if not f.autoscale:
                return "autoscale", "autoscale", "fixed size", "needs an autoscale pool"
            return None

    if not req.allow_low_priority:

        @add("low_priority", "0 low-priority nodes", lambda f: f"{f.target_low_priority} low-priority nodes", "target_low_priority")
        def low_priority_allow(f: PoolFacts):
            if f.target_low_priority > 0:
                return "low_priority", "0 low-priority nodes", f"{f.target_low_priority} low-priority nodes", "low-priority pools not allowed"
            return None

    if req.low_priority_exclusive:

        @add(
            "low_priority", "low-priority nodes",
            lambda f: f"{f.target_low_priority} low-priority nodes" + (", autoscale" if f.autoscale else ""),
            "target_low_priority", "autoscale",
        )  # fmt: skip
        def low_priority_exclusive(f: PoolFacts):
            if f.target_low_priority == 0 and not f.autoscale:
                return "low_priority", "low-priority nodes", "none", "needs low-priority nodes, pool has none"
            return None

    if req.exclusive:

        @add("exclusive", "1 slot per node", lambda f: f"{f.task_slots_per_node} slots per node", "task_slots_per_node")
        def exclusive(f: PoolFacts):
            if f.task_slots_per_node != 1:
                slots = f.task_slots_per_node
                return "exclusive", "1 slot per node", f"{slots} slots per node", f"needs 1 task slot per node, pool has {slots}"
            return None

    if req.vm_size is not None:
        size = req.vm_size

        @add("vm_size", size, lambda f: f.vm_size.lower(), "vm_size")
        def vm_size(f: PoolFacts):
            if normalize_size(f.vm_size) != size:
                return "vm_size", size, f.vm_size.lower(), f"needs {size}, pool is {f.vm_size.lower()}"
            return None

    needs_size = (
        req.gpu is not None or req.infiniband is not None or req.cores_min is not None or req.memory_min_mib is not None
    )
    if needs_size:

        @add("size unknown", "known VM size", lambda f: f.vm_size if f.size is None else f"{f.vm_size} (known)", "vm_size", "size")
        def size_known(f: PoolFacts):
            if f.size is None:
                reason = f"{f.vm_size} is not in the catalog (set vm_size_override in pool.yaml)"
                return "size unknown", "known VM size", f.vm_size, reason
            return None

    # the size checks below run after size_known (f.size is set) and share its fields, so a
    # decision judges them as one run
    if req.gpu is not None:
        want_gpu = req.gpu

        @add("gpu", _yn(want_gpu), lambda f: f"{f.size.gpus} GPUs" if f.size else "unknown", "vm_size", "size")
        def gpu(f: PoolFacts):
            if (f.size.gpus > 0) != want_gpu:  # type: ignore[union-attr]
                return "gpu", _yn(want_gpu), f"{f.size.gpus} GPUs", "needs a GPU size" if want_gpu else "needs a size without GPUs"  # type: ignore[union-attr]
            return None

    if req.infiniband is not None:
        want_ib = req.infiniband

        @add("infiniband", _yn(want_ib), lambda f: _yn(f.size.rdma) if f.size else "unknown", "vm_size", "size")
        def infiniband(f: PoolFacts):
            if f.size.rdma != want_ib:  # type: ignore[union-attr]
                return "infiniband", _yn(want_ib), _yn(f.size.rdma), "needs an RDMA/InfiniBand size" if want_ib else "needs a size without RDMA"  # type: ignore[union-attr]
            return None

    if req.cores_min is not None:
        lo, hi = req.cores_min, req.cores_max
        want = _range(lo, hi, lambda c: f"{c:g}")

        @add("cores", want, lambda f: f.size.cores if f.size else "unknown", "vm_size", "size")
        def cores(f: PoolFacts):
            have = f.size.cores  # type: ignore[union-attr]
            if have < lo or (hi is not None and have > hi + 1e-9):
                return "cores", want, have, f"needs {want} cores, has {have}"
            return None

    if req.memory_min_mib is not None:
        mlo, mhi = req.memory_min_mib, req.memory_max_mib
        mwant = _range(mlo, mhi, format_mib)

        @add("memory", mwant, lambda f: format_mib(f.size.memory_mib) if f.size else "unknown", "vm_size", "size")
        def memory(f: PoolFacts):
            have = f.size.memory_mib  # type: ignore[union-attr]
            if have < mlo - 1e-9 or (mhi is not None and have > mhi + 1e-9):
                return "memory", mwant, format_mib(have), f"needs {mwant}, has {format_mib(have)}"
            return None

    if req.multi_instance:

        @add("multi_instance", "inter-node communication", lambda f: "enabled" if f.inter_node_communication else "disabled", "inter_node_communication")
        def inter_node(f: PoolFacts):
            if not f.inter_node_communication:
                return "multi_instance", "inter-node communication", "disabled", "multi-instance tasks need inter-node communication"
            return None

    if req.registries:
        needed = req.registries
        names = ", ".join(sorted(needed))

        @add("container_registries", names, lambda f: ", ".join(sorted(f.registry_logins)) or "none", "registry_logins")
        def registries(f: PoolFacts):
            missing = needed - f.registry_logins
            if missing:
                lacking = ", ".join(sorted(missing))
                return "container_registries", lacking, ", ".join(sorted(f.registry_logins)) or "none", f"pool has no login for {lacking}"
            return None

    return checks


Step = tuple[Callable[[PoolFacts], Hashable], dict, Callable[[PoolFacts], "Failure | None"]]


def decision_plan(checks: list[HardCheck]) -> list[Step]:
    """The hot path's form of ``checks``: ``(depends_on, memo, failure)`` steps, where a run of
    consecutive checks that read the same fields (the size checks) is one step with one
    look-up. ``memo.get(depends_on(facts))`` answers a value judged before; else
    ``failure(facts)`` judges it (the run's first failure, or None) and remembers it."""
    plan: list[Step] = []
    i = 0
    while i < len(checks):
        j = i + 1
        while j < len(checks) and checks[j].fields == checks[i].fields:
            j += 1
        run = checks[i:j]
        if len(run) == 1:
            plan.append((run[0].depends_on, run[0].memo, run[0].failure))
        else:
            plan.append(_fused(run))
        i = j
    return plan


def _fused(run: list[HardCheck]) -> Step:
    depends_on = run[0].depends_on
    memo: dict[Hashable, Failure | None] = {}

    def failure(facts: PoolFacts) -> Failure | None:
        found = None
        for check in run:
            found = check.failure(facts)
            if found is not None:
                break
        memo[depends_on(facts)] = found
        return found

    return depends_on, memo, failure


class Check(NamedTuple):
    """One cell of explain's pool × constraint table."""

    pool: str
    constraint: str
    passed: bool
    required: str
    actual: str


def constraint_table(facts: PoolFacts, checks: list[HardCheck]) -> list[Check]:
    """Every hard constraint the job sets, judged on one pool — not only the first failure
    (the hot path stops there; explain wants the whole row)."""
    out = []
    size_ok = True
    for check in checks:
        name = check.constraint
        if name in ("gpu", "infiniband", "cores", "memory") and not size_ok:
            out.append(Check(facts.key, name, False, check.required, "size unknown"))
            continue
        failed = check.failure(facts)
        if name == "size unknown":
            size_ok = failed is None
        out.append(Check(facts.key, name, failed is None, str(check.required), str(check.actual(facts))))
    return out


def hard_verdict(facts: PoolFacts, checks: list[HardCheck]) -> Verdict | None:
    for check in checks:
        verdict = check(facts)
        if verdict is not None:
            return verdict
    return None


def _skip(p: PoolSnapshot, constraint: str, required: str, actual: str, reason: str) -> Verdict:
    return Verdict(p.key, "skipped", constraint, required, actual, reason)


def load_verdict(p: PoolSnapshot, req: Requirements, now: float) -> Verdict | None:
    """Soft filter: a failing pool is skipped now and retried later (SPEC §4.2)."""
    if p.state != "active":
        return _skip(p, "state", "active", p.state, f"pool is {p.state}")
    if p.blackout_until is not None and now < p.blackout_until:
        left = p.blackout_until - now
        until = datetime.fromtimestamp(p.blackout_until, timezone.utc).strftime("%H:%M:%S")
        return _skip(p, "blackout", "no recent placement", f"until {until} UTC", f"blackout after a placement: {left:.0f}s left")
    autoscale_ok = req.allow_autoscale and p.facts.autoscale
    if not autoscale_ok:
        kinds = req.node_kinds
        schedulable = 0
        for k in kinds:  # a plain loop: this runs for every candidate pool of every decision
            schedulable += (p.dedicated if k == "dedicated" else p.low_priority).schedulable
        if schedulable == 0:
            label = " or ".join("dedicated" if k == "dedicated" else "low-priority" for k in kinds)
            return _skip(p, "nodes", f"schedulable {label} nodes", "0", f"no schedulable (idle or running) {label} nodes")
    if req.backlog_ratio is not None:
        slots = p.total_slots
        active = p.active_tasks
        if active is None:
            return _skip(p, "backlog", f"≤ {req.backlog_ratio:g}", "unknown", "active task count unknown")
        if slots > 0:
            ratio = active / slots
        elif p.facts.autoscale and p.allocation_state == "steady" and req.backlog_autoscale_exempt:
            ratio = 0.0
        else:
            return _skip(p, "backlog", f"≤ {req.backlog_ratio:g}", "no slots", "backlog ratio undefined: no schedulable slots")
        if ratio > req.backlog_ratio + 1e-12:
            return _skip(
                p, "backlog", f"≤ {req.backlog_ratio:g}", f"{ratio:.2f}",
                f"backlog {active} active / {slots} slots = {ratio:.2f} > {req.backlog_ratio:g}",
            )
    return None
