"""The hard constraints (SPEC §4.1): one builder per constraint, run in the original's order.

A job's requirements build only the checks it sets, once per decision. Each check judges
a distinct value (a region, an image, a size) once per decision, so a 10,000-pool
federation costs a few dict look-ups per pool; the first failure names the constraint
with the required and the actual value.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import attrgetter

from ..config.units import format_mib
from .requirements import Requirements, normalize_size
from .types import PoolFacts, Verdict

Failure = tuple[str, str, str, str, str]  # ("excluded", constraint, required, actual, reason): a Verdict without its pool key
Judgement = tuple[str, object, object, str]  # a failing pool's (constraint, required, actual, reason)
_MISS = object()


class HardCheck:
    """One hard constraint a job sets.

    ``judge(facts)`` returns ``(constraint, required, actual, reason)`` when the pool fails,
    else None, and reads only the fields ``depends_on(facts)`` picks. So a decision judges
    each distinct value once (``memo``): large federations repeat regions, images and sizes,
    and the per-pool cost becomes a field lookup and a dict hit. Calling the check gives the
    pool's :class:`Verdict` (or None), as explain's full table wants.
    """

    __slots__ = ("actual", "constraint", "depends_on", "fields", "judge", "memo", "required")

    def __init__(
        self,
        constraint: str,
        required: str,
        actual: Callable[[PoolFacts], object],
        fields: tuple[str, ...],
        judge: Callable[[PoolFacts], Judgement | None],
    ):
        self.constraint, self.required, self.actual = constraint, required, actual
        self.fields, self.depends_on, self.judge = fields, attrgetter(*fields), judge
        self.memo: dict[Hashable, Failure | None] = {}

    def failure(self, facts: PoolFacts) -> Failure | None:
        key = self.depends_on(facts)
        found = self.memo.get(key, _MISS)
        if found is _MISS:
            judged = self.judge(facts)
            made: Failure | None = None
            if judged is not None:
                constraint, required, actual, reason = judged
                made = ("excluded", constraint, str(required), str(actual), f"{constraint}: {reason}")
            found = self.memo[key] = made
        return found  # type: ignore[return-value]  # _MISS is never stored, so found is a Failure or None

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


def _data_location(req: Requirements) -> HardCheck | None:
    if not req.data_hard:
        return None
    regions = req.data_regions
    unknown = req.data_unknown
    required = ", ".join(sorted(regions))
    if unknown:
        required = f"the region of storage account {', '.join(unknown)} (unknown: set its location)"

    def judge(f: PoolFacts) -> Judgement | None:
        if unknown:
            return "data", required, f.location, f"inputs in {required}"
        if f.location not in regions:
            return "data", required, f.location, f"inputs in {required}, pool is in {f.location}"
        return None

    return HardCheck("data", required, lambda f: f.location, ("location",), judge)


# One builder per hard constraint: the check it needs, or None when the job leaves it unset
# (unset constraints cost nothing). Each check's ``depends_on`` fields must cover every field
# its ``judge`` reads.


def _location(req: Requirements) -> HardCheck | None:
    loc = req.location
    if loc is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.location != loc:
            return "location", loc, f.location, f"needs {loc}, pool is in {f.location}"
        return None

    return HardCheck("location", loc, lambda f: f.location, ("location",), judge)


def _virtual_network(req: Requirements) -> HardCheck | None:
    subnet = req.subnet_id
    if subnet is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if (f.subnet_id or "").lower() != subnet:
            return (
                "virtual_network",
                subnet,
                f.subnet_id or "none",
                "needs the named subnet, pool has " + (f.subnet_id or "no subnet"),
            )
        return None

    return HardCheck("virtual_network", subnet, lambda f: f.subnet_id or "none", ("subnet_id",), judge)


def _custom_image(req: Requirements) -> HardCheck | None:
    image = req.custom_image_id
    if image is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        # a platform-image pool simply does not match: a verdict, never an error
        if (f.custom_image_id or "").lower() != image:
            actual = f.custom_image_id or "platform image"
            return "custom_image", image, actual, f"needs custom image {image}, pool uses {actual}"
        return None

    return HardCheck("custom_image", image, lambda f: f.custom_image_id or "platform image", ("custom_image_id",), judge)


def _windows(req: Requirements) -> HardCheck | None:
    want_windows = req.windows
    if want_windows is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.windows != want_windows:
            return "windows", _os(want_windows), _os(f.windows), f"needs a {_os(want_windows)} pool, pool is {_os(f.windows)}"
        return None

    return HardCheck("windows", _os(want_windows), lambda f: _os(f.windows), ("windows",), judge)


def _native(req: Requirements) -> HardCheck | None:
    want_native = req.native
    if want_native is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.native != want_native:
            return "native", _yn(want_native), _yn(f.native), f"needs native={_yn(want_native)}, pool has native={_yn(f.native)}"
        return None

    return HardCheck("native", _yn(want_native), lambda f: _yn(f.native), ("native",), judge)


def _autoscale_kind(f: PoolFacts) -> str:
    return "autoscale" if f.autoscale else "fixed size"


def _autoscale_allowed(req: Requirements) -> HardCheck | None:
    if req.allow_autoscale:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.autoscale:
            return "autoscale", "no autoscale", "autoscale", "autoscale pools not allowed"
        return None

    return HardCheck("autoscale", "no autoscale", _autoscale_kind, ("autoscale",), judge)


def _autoscale_exclusive(req: Requirements) -> HardCheck | None:
    if not req.autoscale_exclusive:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if not f.autoscale:
            return "autoscale", "autoscale", "fixed size", "needs an autoscale pool"
        return None

    return HardCheck("autoscale", "autoscale", _autoscale_kind, ("autoscale",), judge)


def _low_priority_allowed(req: Requirements) -> HardCheck | None:
    if req.allow_low_priority:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.target_low_priority > 0:
            return (
                "low_priority",
                "0 low-priority nodes",
                f"{f.target_low_priority} low-priority nodes",
                "low-priority pools not allowed",
            )
        return None

    return HardCheck(
        "low_priority",
        "0 low-priority nodes",
        lambda f: f"{f.target_low_priority} low-priority nodes",
        ("target_low_priority",),
        judge,
    )


def _low_priority_exclusive(req: Requirements) -> HardCheck | None:
    if not req.low_priority_exclusive:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.target_low_priority == 0 and not f.autoscale:
            return "low_priority", "low-priority nodes", "none", "needs low-priority nodes, pool has none"
        return None

    return HardCheck(
        "low_priority",
        "low-priority nodes",
        lambda f: f"{f.target_low_priority} low-priority nodes" + (", autoscale" if f.autoscale else ""),
        ("target_low_priority", "autoscale"),
        judge,
    )


def _exclusive(req: Requirements) -> HardCheck | None:
    if not req.exclusive:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.task_slots_per_node != 1:
            slots = f.task_slots_per_node
            return "exclusive", "1 slot per node", f"{slots} slots per node", f"needs 1 task slot per node, pool has {slots}"
        return None

    return HardCheck(
        "exclusive", "1 slot per node", lambda f: f"{f.task_slots_per_node} slots per node", ("task_slots_per_node",), judge
    )


def _vm_size(req: Requirements) -> HardCheck | None:
    size = req.vm_size
    if size is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if normalize_size(f.vm_size) != size:
            return "vm_size", size, f.vm_size.lower(), f"needs {size}, pool is {f.vm_size.lower()}"
        return None

    return HardCheck("vm_size", size, lambda f: f.vm_size.lower(), ("vm_size",), judge)


# The size checks (GPU, InfiniBand, cores, memory) run after _size_known (so f.size is set)
# and share its fields, so a decision judges them as one run (see decision_plan).
_SIZE_FIELDS = ("vm_size", "size")


def _size_known(req: Requirements) -> HardCheck | None:
    if req.gpu is None and req.infiniband is None and req.cores_min is None and req.memory_min_mib is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if f.size is None:
            reason = f"{f.vm_size} is not in the catalog (set vm_size_override in pool.yaml)"
            return "size unknown", "known VM size", f.vm_size, reason
        return None

    return HardCheck(
        "size unknown", "known VM size", lambda f: f.vm_size if f.size is None else f"{f.vm_size} (known)", _SIZE_FIELDS, judge
    )


def _gpu(req: Requirements) -> HardCheck | None:
    want_gpu = req.gpu
    if want_gpu is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        gpus = f.size.gpus  # type: ignore[union-attr]  # the size check before this one excludes unknown sizes
        if (gpus > 0) != want_gpu:
            return "gpu", _yn(want_gpu), f"{gpus} GPUs", "needs a GPU size" if want_gpu else "needs a size without GPUs"
        return None

    return HardCheck("gpu", _yn(want_gpu), lambda f: f"{f.size.gpus} GPUs" if f.size else "unknown", _SIZE_FIELDS, judge)


def _infiniband(req: Requirements) -> HardCheck | None:
    want_ib = req.infiniband
    if want_ib is None:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        rdma = f.size.rdma  # type: ignore[union-attr]  # the size check before this one excludes unknown sizes
        if rdma != want_ib:
            return (
                "infiniband",
                _yn(want_ib),
                _yn(rdma),
                "needs an RDMA/InfiniBand size" if want_ib else "needs a size without RDMA",
            )
        return None

    return HardCheck("infiniband", _yn(want_ib), lambda f: _yn(f.size.rdma) if f.size else "unknown", _SIZE_FIELDS, judge)


def _cores(req: Requirements) -> HardCheck | None:
    lo, hi = req.cores_min, req.cores_max
    if lo is None:
        return None
    want = _range(lo, hi, lambda c: f"{c:g}")

    def judge(f: PoolFacts) -> Judgement | None:
        have = f.size.cores  # type: ignore[union-attr]  # the size check before this one excludes unknown sizes
        if have < lo or (hi is not None and have > hi + 1e-9):
            return "cores", want, have, f"needs {want} cores, has {have}"
        return None

    return HardCheck("cores", want, lambda f: f.size.cores if f.size else "unknown", _SIZE_FIELDS, judge)


def _memory(req: Requirements) -> HardCheck | None:
    lo, hi = req.memory_min_mib, req.memory_max_mib
    if lo is None:
        return None
    want = _range(lo, hi, format_mib)

    def judge(f: PoolFacts) -> Judgement | None:
        have = f.size.memory_mib  # type: ignore[union-attr]  # the size check before this one excludes unknown sizes
        if have < lo - 1e-9 or (hi is not None and have > hi + 1e-9):
            return "memory", want, format_mib(have), f"needs {want}, has {format_mib(have)}"
        return None

    return HardCheck("memory", want, lambda f: format_mib(f.size.memory_mib) if f.size else "unknown", _SIZE_FIELDS, judge)


def _multi_instance(req: Requirements) -> HardCheck | None:
    if not req.multi_instance:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        if not f.inter_node_communication:
            return "multi_instance", "inter-node communication", "disabled", "multi-instance tasks need inter-node communication"
        return None

    return HardCheck(
        "multi_instance",
        "inter-node communication",
        lambda f: "enabled" if f.inter_node_communication else "disabled",
        ("inter_node_communication",),
        judge,
    )


def _registries(req: Requirements) -> HardCheck | None:
    needed = req.registries
    if not needed:
        return None

    def judge(f: PoolFacts) -> Judgement | None:
        missing = needed - f.registry_logins
        if missing:
            lacking = ", ".join(sorted(missing))
            return (
                "container_registries",
                lacking,
                ", ".join(sorted(f.registry_logins)) or "none",
                f"pool has no login for {lacking}",
            )
        return None

    return HardCheck(
        "container_registries",
        ", ".join(sorted(needed)),
        lambda f: ", ".join(sorted(f.registry_logins)) or "none",
        ("registry_logins",),
        judge,
    )


# The original's evaluation order: a pool's first failing constraint is the one reported.
HARD_CONSTRAINTS: tuple[Callable[[Requirements], HardCheck | None], ...] = (
    _location,
    _data_location,
    _virtual_network,
    _custom_image,
    _windows,
    _native,
    _autoscale_allowed,
    _autoscale_exclusive,
    _low_priority_allowed,
    _low_priority_exclusive,
    _exclusive,
    _vm_size,
    _size_known,
    _gpu,
    _infiniband,
    _cores,
    _memory,
    _multi_instance,
    _registries,
)


def build_hard_checks(req: Requirements) -> list[HardCheck]:
    """The ordered checks this requirement set needs (unset constraints cost nothing)."""
    return [check for build in HARD_CONSTRAINTS if (check := build(req)) is not None]
