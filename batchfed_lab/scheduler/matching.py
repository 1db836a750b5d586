"""Per-pool verdicts: hard constraints (SPEC §4.1) then the load filter (§4.2).

Hard constraints exclude a pool for this attempt; the load filter only skips
it now (it may have room later). Checks run in the original's order and the
first failure names the constraint with the required and the actual value.
Only the checks a job actually sets are built, once per decision, so a
10,000-pool federation costs a few closures per pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple
from datetime import datetime, timezone

from ..config.units import format_mib
from .requirements import Requirements, normalize_size
from .types import PoolFacts, PoolSnapshot, Verdict

HardCheck = Callable[[PoolFacts], "Verdict | None"]


def _fail(facts: PoolFacts, constraint: str, required: object, actual: object, reason: str) -> Verdict:
    return Verdict(facts.key, "excluded", constraint, str(required), str(actual), f"{constraint}: {reason}")


_new_verdict = tuple.__new__


class _Failures:
    """Failing verdicts differ only by pool key for equal actual values, so the
    text is formatted once per distinct value (large federations repeat sizes,
    regions and images)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[object, tuple[str, str, str, str, str]] = {}

    def get(self, facts: PoolFacts, actual_key: object, make: Callable[[], tuple[str, object, object, str]]) -> Verdict:
        parts = self._cache.get(actual_key)
        if parts is None:
            constraint, required, actual, reason = make()
            parts = self._cache[actual_key] = ("excluded", constraint, str(required), str(actual), f"{constraint}: {reason}")
        return _new_verdict(Verdict, (facts.key, *parts))  # tuple.__new__: no Python-level __new__ per pool


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
    """The ordered checks this requirement set needs (unset constraints cost nothing)."""
    checks: list[HardCheck] = []

    def add(check: HardCheck, constraint: str, required: str, actual: Callable[[PoolFacts], object]) -> None:
        # what explain's pool × constraint table shows for this check, passing or not
        check.constraint, check.required, check.actual = constraint, required, actual  # type: ignore[attr-defined]
        checks.append(check)

    if req.location is not None:
        loc = req.location
        location_fails = _Failures()

        def location(f: PoolFacts) -> Verdict | None:
            if f.location != loc:
                return location_fails.get(f, f.location, lambda: ("location", loc, f.location, f"needs {loc}, pool is in {f.location}"))
            return None

        add(location, "location", loc, lambda f: f.location)

    if req.subnet_id is not None:
        subnet = req.subnet_id
        subnet_fails = _Failures()

        def virtual_network(f: PoolFacts) -> Verdict | None:
            if (f.subnet_id or "").lower() != subnet:
                return subnet_fails.get(
                    f, f.subnet_id,
                    lambda: ("virtual_network", subnet, f.subnet_id or "none", "needs the named subnet, pool has " + (f.subnet_id or "no subnet")),
                )
            return None

        add(virtual_network, "virtual_network", subnet, lambda f: f.subnet_id or "none")

    if req.custom_image_id is not None:
        image = req.custom_image_id
        image_fails = _Failures()

        def custom_image(f: PoolFacts) -> Verdict | None:
            # a platform-image pool simply does not match (the original crashed here)
            if (f.custom_image_id or "").lower() != image:
                actual = f.custom_image_id or "platform image"
                return image_fails.get(f, actual, lambda: ("custom_image", image, actual, f"needs custom image {image}, pool uses {actual}"))
            return None

        add(custom_image, "custom_image", image, lambda f: f.custom_image_id or "platform image")

    if req.windows is not None:
        want_windows = req.windows

        def windows(f: PoolFacts) -> Verdict | None:
            if f.windows != want_windows:
                return _fail(f, "windows", _os(want_windows), _os(f.windows), f"needs a {_os(want_windows)} pool, pool is {_os(f.windows)}")
            return None

        add(windows, "windows", _os(want_windows), lambda f: _os(f.windows))

    if req.native is not None:
        want_native = req.native

        def native(f: PoolFacts) -> Verdict | None:
            if f.native != want_native:
                return _fail(f, "native", _yn(want_native), _yn(f.native), f"needs native={_yn(want_native)}, pool has native={_yn(f.native)}")
            return None

        add(native, "native", _yn(want_native), lambda f: _yn(f.native))

    if not req.allow_autoscale:

        def autoscale_allow(f: PoolFacts) -> Verdict | None:
            if f.autoscale:
                return _fail(f, "autoscale", "no autoscale", "autoscale", "autoscale pools not allowed")
            return None

        add(autoscale_allow, "autoscale", "no autoscale", lambda f: "autoscale" if f.autoscale else "fixed size")

    if req.autoscale_exclusive:

        def autoscale_exclusive(f: PoolFacts) -> Verdict | None:
            if not f.autoscale:
                return _fail(f, "autoscale", "autoscale", "fixed size", "needs an autoscale pool")
            return None

        add(autoscale_exclusive, "autoscale", "autoscale", lambda f: "autoscale" if f.autoscale else "fixed size")

    if not req.allow_low_priority:

        def low_priority_allow(f: PoolFacts) -> Verdict | None:
            if f.target_low_priority > 0:
                return _fail(f, "low_priority", "0 low-priority nodes", f"{f.target_low_priority} low-priority nodes", "low-priority pools not allowed")
            return None

        add(low_priority_allow, "low_priority", "0 low-priority nodes", lambda f: f"{f.target_low_priority} low-priority nodes")

    if req.low_priority_exclusive:

        def low_priority_exclusive(f: PoolFacts) -> Verdict | None:
            if f.target_low_priority == 0 and not f.autoscale:
                return _fail(f, "low_priority", "low-priority nodes", "none", "needs low-priority nodes, pool has none")
            return None

        add(low_priority_exclusive, "low_priority", "low-priority nodes", lambda f: f"{f.target_low_priority} low-priority nodes" + (", autoscale" if f.autoscale else ""))

    if req.exclusive:

        def exclusive(f: PoolFacts) -> Verdict | None:
            if f.task_slots_per_node != 1:
                return _fail(f, "exclusive", "1 slot per node", f"{f.task_slots_per_node} slots per node", f"needs 1 task slot per node, pool has {f.task_slots_per_node}")
            return None

        add(exclusive, "exclusive", "1 slot per node", lambda f: f"{f.task_slots_per_node} slots per node")

    if req.vm_size is not None:
        size = req.vm_size

        def vm_size(f: PoolFacts) -> Verdict | None:
            if normalize_size(f.vm_size) != size:
                return _fail(f, "vm_size", size, f.vm_size.lower(), f"needs {size}, pool is {f.vm_size.lower()}")
            return None

        add(vm_size, "vm_size", size, lambda f: f.vm_size.lower())

    needs_size = (
        req.gpu is not None or req.infiniband is not None or req.cores_min is not None or req.memory_min_mib is not None
    )
    if needs_size:

        def size_known(f: PoolFacts) -> Verdict | None:
            if f.size is None:
                return Verdict(
                    f.key, "excluded", "size unknown", "known VM size", f.vm_size,
                    f"size unknown: {f.vm_size} is not in the catalog (set vm_size_override in pool.yaml)",
                )
            return None

        add(size_known, "size unknown", "known VM size", lambda f: f.vm_size if f.size is None else f"{f.vm_size} (known)")

    if req.gpu is not None:
        want_gpu = req.gpu

        def gpu(f: PoolFacts) -> Verdict | None:
            has = f.size.gpus > 0  # type: ignore[union-attr]  # size_known ran first
            if has != want_gpu:
                return _fail(f, "gpu", _yn(want_gpu), f"{f.size.gpus} GPUs", "needs a GPU size" if want_gpu else "needs a size without GPUs")  # type: ignore[union-attr]
            return None

        add(gpu, "gpu", _yn(want_gpu), lambda f: f"{f.size.gpus} GPUs" if f.size else "unknown")

    if req.infiniband is not None:
        want_ib = req.infiniband

        def infiniband(f: PoolFacts) -> Verdict | None:
            if f.size.rdma != want_ib:  # type: ignore[union-attr]
                return _fail(f, "infiniband", _yn(want_ib), _yn(f.size.rdma), "needs an RDMA/InfiniBand size" if want_ib else "needs a size without RDMA")  # type: ignore[union-attr]
            return None

        add(infiniband, "infiniband", _yn(want_ib), lambda f: _yn(f.size.rdma) if f.size else "unknown")

    if req.cores_min is not None:
        lo, hi = req.cores_min, req.cores_max
        want = _range(lo, hi, lambda c: f"{c:g}")

        def cores(f: PoolFacts) -> Verdict | None:
            have = f.size.cores  # type: ignore[union-attr]
            if have < lo or (hi is not None and have > hi + 1e-9):
                return _fail(f, "cores", want, have, f"needs {want} cores, has {have}")
            return None

        add(cores, "cores", want, lambda f: f.size.cores if f.size else "unknown")

    if req.memory_min_mib is not None:
        mlo, mhi = req.memory_min_mib, req.memory_max_mib
        mwant = _range(mlo, mhi, format_mib)

        def memory(f: PoolFacts) -> Verdict | None:
            have = f.size.memory_mib  # type: ignore[union-attr]
            if have < mlo - 1e-9 or (mhi is not None and have > mhi + 1e-9):
                return _fail(f, "memory", mwant, format_mib(have), f"needs {mwant}, has {format_mib(have)}")
            return None

        add(memory, "memory", mwant, lambda f: format_mib(f.size.memory_mib) if f.size else "unknown")

    if req.multi_instance:

        def inter_node(f: PoolFacts) -> Verdict | None:
            if not f.inter_node_communication:
                return _fail(f, "multi_instance", "inter-node communication", "disabled", "multi-instance tasks need inter-node communication")
            return None

        add(inter_node, "multi_instance", "inter-node communication", lambda f: "enabled" if f.inter_node_communication else "disabled")

    if req.registries:
        needed = req.registries

        def registries(f: PoolFacts) -> Verdict | None:
            missing = needed - f.registry_logins
            if missing:
                names = ", ".join(sorted(missing))
                return _fail(f, "container_registries", names, ", ".join(sorted(f.registry_logins)) or "none", f"pool has no login for {names}")
            return None

        add(registries, "container_registries", ", ".join(sorted(needed)), lambda f: ", ".join(sorted(f.registry_logins)) or "none")

    return checks


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
        name = check.constraint  # type: ignore[attr-defined]
        if name in ("gpu", "infiniband", "cores", "memory") and not size_ok:
            out.append(Check(facts.key, name, False, check.required, "size unknown"))  # type: ignore[attr-defined]
            continue
        failed = check(facts)
        if name == "size unknown":
            size_ok = failed is None
        out.append(Check(facts.key, name, failed is None, str(check.required), str(check.actual(facts))))  # type: ignore[attr-defined]
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
        schedulable = sum((p.dedicated if k == "dedicated" else p.low_priority).schedulable for k in kinds)
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
