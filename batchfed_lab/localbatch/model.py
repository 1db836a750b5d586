"""In-memory objects of localbatch and the validation of request bodies.

Each object keeps ``doc``, its REST JSON as the 2025-06-01 API returns it (``url`` is added when
it is sent, since the port can change between runs), plus internal fields. Ids are looked up by
their lower-cased ``key`` because Batch ids are case-insensitive.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._util import ID_RE, ApiError, format_duration, invalid, missing, parse_duration
from .formula import Formula
from .task_files import check_task_files

if TYPE_CHECKING:
    from .engine.start_task import StartTaskRun
    from .runner import Run

MAX_NODES_PER_POOL = 1000
MAX_TASK_SLOTS_PER_NODE = 256
NODE_FILL_TYPES = ("spread", "pack")
ALL_TASKS_COMPLETE = ("noaction", "terminatejob")
TASK_FAILURE = ("noaction", "performexitoptionsjobaction")
# a sub-minute recurrence / sub-5-minute autoscale interval is refused, as on Azure, unless the
# server runs with --relaxed-limits (tests and drills), where 1 second is the floor
STRICT_MIN_RECURRENCE = 60.0
STRICT_MIN_AUTOSCALE_INTERVAL = 300.0
MAX_AUTOSCALE_INTERVAL = 168 * 3600.0
RELAXED_MIN_INTERVAL = 1.0


@dataclass(eq=False)  # identity semantics: used in sets
class Node:
    id: str
    dedicated: bool
    ip: str
    allocation_time: str
    state_time: str
    slots_used: int = 0
    runs: set[int] = field(default_factory=set)
    preempted_until: float | None = None  # monotonic time it comes back
    leaving: bool = False  # draining for a taskcompletion / retaineddata shrink
    total_tasks_run: int = 0
    total_succeeded: int = 0
    # the pool's start task: the node's state while it holds the node back (starting,
    # waitingforstarttask, starttaskfailed), its startTaskInfo, and its run
    start_gate: str | None = None
    start_info: dict | None = None
    start_run: StartTaskRun | None = None

    @property
    def state(self) -> str:
        if self.preempted_until is not None:
            return "preempted"
        if self.leaving:
            return "leavingpool"
        if self.start_gate is not None:
            return self.start_gate
        return "running" if self.slots_used else "idle"

    def persisted(self) -> dict:
        return {"id": self.id, "dedicated": self.dedicated, "ip": self.ip, "allocationTime": self.allocation_time}


def node_ip(node_id: str) -> str:
    # every node is this machine; a distinct 127.x.y.z per node (all of 127/8 is loopback on
    # Linux) keeps AZ_BATCH_HOST_LIST entries distinct like on Azure
    h = int(hashlib.sha1(node_id.encode()).hexdigest()[:8], 16)
    return f"127.{1 + (h >> 16) % 254}.{(h >> 8) % 256}.{1 + h % 254}"


@dataclass(eq=False)  # identity semantics: used in sets
class Pool:
    account: str
    key: str
    seq: int
    doc: dict
    nodes: list[Node] = field(default_factory=list)
    node_counter: int = 0
    resize: dict | None = None  # {"due": monotonic, "dedicated": n, "low": n, "option": str}
    formula: Formula | None = None
    next_autoscale: float | None = None  # monotonic

    @property
    def slots_per_node(self) -> int:
        return int(self.doc.get("taskSlotsPerNode") or 1)


@dataclass(eq=False)  # identity semantics: used in sets
class Task:
    job: Job
    key: str
    seq: int
    doc: dict
    gen: int = 0  # bumped on every state change made outside the running attempt
    run: Run | None = None
    subtasks: list[dict] = field(default_factory=list)
    deps_left: set[str] = field(default_factory=set)  # keys of tasks not yet succeeded
    job_manager: bool = False

    @property
    def state(self) -> str:
        return self.doc["state"]


@dataclass(eq=False)  # identity semantics: used in sets
class Job:
    account: str
    key: str
    seq: int
    doc: dict
    tasks: OrderedDict[str, Task] = field(default_factory=OrderedDict)
    queue: OrderedDict[str, Task] = field(default_factory=OrderedDict)  # active and ready
    dependents: dict[str, set[str]] = field(default_factory=dict)  # task key -> waiting task keys
    running: int = 0
    schedule_key: str | None = None
    prep: dict[str, PrepState] = field(default_factory=dict)  # node id -> job prep state

    @property
    def state(self) -> str:
        return self.doc["state"]

    @property
    def pool_key(self) -> str:
        return str((self.doc.get("poolInfo") or {}).get("poolId") or "").lower()


@dataclass
class PrepState:
    event: threading.Event = field(default_factory=threading.Event)
    failure: object = None  # runner.Failure once it failed


@dataclass(eq=False)  # identity semantics: used in sets
class Schedule:
    account: str
    key: str
    seq: int
    doc: dict
    job_counter: int = 0
    recent_job_key: str | None = None


@dataclass(eq=False)  # identity semantics: used in sets
class Account:
    name: str
    pools: dict[str, Pool] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)


# -- validation helpers -----------------------------------------------------------------------
def require_dict(body: object, prop: str = "body") -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestBody", "The request body is not a JSON object.", {"PropertyName": prop})
    return body


def req_id(body: dict, prop: str = "id") -> str:
    value = body.get(prop)
    if value is None:
        raise missing(prop)
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise invalid(prop, "ids are 1-64 letters, digits, hyphens or underscores", value)
    return value


def req_str(body: dict, prop: str, path: str | None = None) -> str:
    value = body.get(prop)
    if value is None or value == "":
        raise missing(path or prop)
    if not isinstance(value, str):
        raise invalid(path or prop, "must be a string", value)
    return value


def opt_int(body: dict, prop: str, lo: int, hi: int, default: int | None = None, path: str | None = None) -> int | None:
    value = body.get(prop)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(path or prop, f"must be an integer from {lo} to {hi}", value)
    return value


def opt_bool(body: dict, prop: str, default: bool = False) -> bool:
    value = body.get(prop)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(prop, "must be true or false", value)
    return value


def opt_enum(body: dict, prop: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(prop)
    if value is None:
        return default
    if not isinstance(value, str) or value.lower() not in allowed:
        raise invalid(prop, f"must be one of {', '.join(allowed)}", value)
    return value.lower()


def name_values(body: dict, prop: str, key: str = "name") -> list[dict] | None:
    """Validate a list of {name, value} items (metadata, environmentSettings)."""
    items = body.get(prop)
    if items is None:
        return None
    if not isinstance(items, list):
        raise invalid(prop, "must be a list", items)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(key), str) or not item.get(key):
            raise invalid(f"{prop}[{i}].{key}", "each item needs a non-empty name", item)
        value = item.get("value")
        if value is not None and not isinstance(value, str):
            raise invalid(f"{prop}[{i}].value", "must be a string", value)
        out.append({key: item[key], "value": value if value is not None else ""})
    return out


def environment(body: dict, prop: str, prefix: str = "") -> list[dict] | None:
    """Validate environment settings: what no process can be started with (a NUL anywhere,
    '=' in a name) is refused here, not found out when the task is launched."""
    items = name_values(body, prop)
    for i, item in enumerate(items or []):
        if "=" in item["name"] or "\0" in item["name"]:
            raise invalid(f"{prefix}{prop}[{i}].name", "an environment variable name holds no '=' and no NUL", item["name"])
        if "\0" in item["value"]:
            raise invalid(f"{prefix}{prop}[{i}].value", "an environment variable value holds no NUL", item["value"])
    return items


def opt_duration(body: dict, prop: str, path: str) -> float | None:
    value = body.get(prop)
    return None if value is None else parse_duration(value, path)


def refuse(body: dict, prop: str, why: str) -> None:
    if body.get(prop):
        raise ApiError(400, "UnsupportedProperty", f"localbatch does not support {prop}: {why}.", {"PropertyName": prop})


def validate_vm_configuration(body: dict) -> dict:
    vmc = body.get("virtualMachineConfiguration")
    if vmc is None:
        raise missing("virtualMachineConfiguration")
    vmc = require_dict(vmc, "virtualMachineConfiguration")
    image = vmc.get("imageReference")
    if not isinstance(image, dict):
        raise missing("virtualMachineConfiguration.imageReference")
    by_id = any(image.get(k) for k in ("virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId"))
    if not by_id and not all(isinstance(image.get(k), str) and image.get(k) for k in ("publisher", "offer", "sku")):
        raise invalid(
            "virtualMachineConfiguration.imageReference",
            "give publisher, offer and sku, or virtualMachineImageId",
            json.dumps(image)[:200],
        )
    req_str(vmc, "nodeAgentSKUId", "virtualMachineConfiguration.nodeAgentSKUId")
    cc = vmc.get("containerConfiguration")
    if cc is not None:
        cc = require_dict(cc, "virtualMachineConfiguration.containerConfiguration")
        kind = cc.get("type")
        if kind not in ("dockerCompatible", "criCompatible"):
            raise invalid(
                "virtualMachineConfiguration.containerConfiguration.type", "must be dockerCompatible or criCompatible", kind
            )
        for i, reg in enumerate(cc.get("containerRegistries") or []):
            if not isinstance(reg, dict):
                raise invalid(
                    f"virtualMachineConfiguration.containerConfiguration.containerRegistries[{i}]", "must be an object", reg
                )
    return vmc


def autoscale_interval(value: object, relaxed: bool) -> float:
    seconds = parse_duration(value, "autoScaleEvaluationInterval")
    low = RELAXED_MIN_INTERVAL if relaxed else STRICT_MIN_AUTOSCALE_INTERVAL
    if not low <= seconds <= MAX_AUTOSCALE_INTERVAL:
        raise invalid("autoScaleEvaluationInterval", f"must be from {format_duration(low)} to PT168H", value)
    return seconds


# refused on every task: localbatch runs tasks on this machine, with no application packages
_TASK_REFUSED = (("applicationPackageReferences", "there are no application packages"),)
_TASK_FIELDS = (
    "id",
    "displayName",
    "exitConditions",
    "commandLine",
    "containerSettings",
    "environmentSettings",
    "affinityInfo",
    "constraints",
    "requiredSlots",
    "userIdentity",
    "multiInstanceSettings",
    "dependsOn",
    "resourceFiles",
    "outputFiles",
)
_JOB_FIELDS = (
    "id",
    "displayName",
    "usesTaskDependencies",
    "priority",
    "allowTaskPreemption",
    "maxParallelTasks",
    "constraints",
    "jobManagerTask",
    "jobPreparationTask",
    "jobReleaseTask",
    "commonEnvironmentSettings",
    "poolInfo",
    "onAllTasksComplete",
    "onTaskFailure",
    "networkConfiguration",
    "metadata",
)


def _copy_fields(body: dict, keep: tuple[str, ...]) -> dict:
    """A deep copy of the ``keep`` fields that are set, so later edits of the body do not leak in."""
    return {k: json.loads(json.dumps(body[k])) for k in keep if body.get(k) is not None}


def _req_command_line(body: dict, path: str, prop: str = "commandLine") -> None:
    cmd = body.get(prop)
    if not isinstance(cmd, str) or not cmd.strip():
        raise missing(path)
    if "\0" in cmd:
        raise invalid(path, "a command line holds no NUL", cmd)


def _check_container_settings(cs: object, prefix: str) -> None:
    if cs is not None:
        req_str(require_dict(cs, "containerSettings"), "imageName", prefix + "containerSettings.imageName")


def _check_task_constraints(cons: object, prefix: str) -> None:
    if cons is None:
        return
    cons = require_dict(cons, "constraints")
    opt_duration(cons, "maxWallClockTime", prefix + "constraints.maxWallClockTime")
    opt_duration(cons, "retentionTime", prefix + "constraints.retentionTime")
    opt_int(cons, "maxTaskRetryCount", -1, 100, path=prefix + "constraints.maxTaskRetryCount")


def _check_multi_instance(mis: object, prefix: str) -> None:
    if mis is None:
        return
    mis = require_dict(mis, "multiInstanceSettings")
    opt_int(mis, "numberOfInstances", 1, 100, path=prefix + "multiInstanceSettings.numberOfInstances")
    _req_command_line(mis, prefix + "multiInstanceSettings.coordinationCommandLine", "coordinationCommandLine")
    refuse(mis, "commonResourceFiles", "tasks run on this machine")


def _check_dependencies(deps: object, prefix: str) -> None:
    if deps is None:
        return
    deps = require_dict(deps, "dependsOn")
    ids = deps.get("taskIds") or []
    if not isinstance(ids, list) or not all(isinstance(x, str) and ID_RE.fullmatch(x) for x in ids):
        raise invalid(prefix + "dependsOn.taskIds", "must be a list of task ids", ids)
    for i, rng in enumerate(deps.get("taskIdRanges") or []):
        if not (
            isinstance(rng, dict)
            and isinstance(rng.get("start"), int)
            and isinstance(rng.get("end"), int)
            and 0 <= rng["start"] <= rng["end"]
        ):
            raise invalid(f"{prefix}dependsOn.taskIdRanges[{i}]", "start and end are integers, start <= end", rng)


def validate_task(body: object, prefix: str = "") -> dict:
    """Check a task create body; return the REST fields to keep (a copy)."""
    body = require_dict(body, prefix or "task")
    tid = req_id(body)
    _req_command_line(body, prefix + "commandLine")
    for prop, why in _TASK_REFUSED:
        refuse(body, prop, why)
    _check_container_settings(body.get("containerSettings"), prefix)
    environment(body, "environmentSettings", prefix)
    _check_task_constraints(body.get("constraints"), prefix)
    opt_int(body, "requiredSlots", 1, MAX_TASK_SLOTS_PER_NODE)
    _check_multi_instance(body.get("multiInstanceSettings"), prefix)
    _check_dependencies(body.get("dependsOn"), prefix)
    check_task_files(body, prefix)
    out = _copy_fields(body, _TASK_FIELDS)
    out["id"] = tid
    return out


def dependency_ids(doc: dict) -> list[str]:
    deps = doc.get("dependsOn") or {}
    ids = list(deps.get("taskIds") or [])
    for rng in deps.get("taskIdRanges") or []:
        ids.extend(str(i) for i in range(rng["start"], rng["end"] + 1))
    return ids


def _check_pool_info(pool_info: object) -> None:
    if pool_info is None:
        raise missing("poolInfo")
    pool_info = require_dict(pool_info, "poolInfo")
    if pool_info.get("autoPoolSpecification") is not None:
        raise ApiError(
            400,
            "UnsupportedProperty",
            "localbatch does not support autoPoolSpecification: create the pool, then name it in poolInfo.poolId.",
            {"PropertyName": "poolInfo.autoPoolSpecification"},
        )
    pool_id = pool_info.get("poolId")
    if not isinstance(pool_id, str) or not ID_RE.fullmatch(pool_id):
        raise invalid("poolInfo.poolId", "must be a pool id", pool_id) if pool_id is not None else missing("poolInfo.poolId")


def _check_max_parallel_tasks(mpt: object) -> None:
    if mpt is not None and (isinstance(mpt, bool) or not isinstance(mpt, int) or (mpt != -1 and mpt < 1)):
        raise invalid("maxParallelTasks", "must be -1 (no limit) or at least 1", mpt)


def _check_job_constraints(cons: object) -> None:
    if cons is None:
        return
    cons = require_dict(cons, "constraints")
    opt_duration(cons, "maxWallClockTime", "constraints.maxWallClockTime")
    opt_int(cons, "maxTaskRetryCount", -1, 100, path="constraints.maxTaskRetryCount")


def _check_preparation_task(prep: object) -> None:
    if prep is None:
        return
    prep = require_dict(prep, "jobPreparationTask")
    _req_command_line(prep, "jobPreparationTask.commandLine")
    refuse(prep, "resourceFiles", "tasks run on this machine")
    refuse(prep, "containerSettings", "job preparation tasks run on the host here")
    environment(prep, "environmentSettings", "jobPreparationTask.")


def validate_job_spec(body: dict, *, with_id: bool) -> dict:
    """Check a job create body (or a schedule's jobSpecification); return the REST fields to keep."""
    body = require_dict(body, "job")
    if with_id:
        req_id(body)
    _check_pool_info(body.get("poolInfo"))
    opt_int(body, "priority", -1000, 1000)
    _check_max_parallel_tasks(body.get("maxParallelTasks"))
    opt_bool(body, "usesTaskDependencies")
    opt_bool(body, "allowTaskPreemption")
    _check_job_constraints(body.get("constraints"))
    opt_enum(body, "onAllTasksComplete", ALL_TASKS_COMPLETE, "noaction")
    opt_enum(body, "onTaskFailure", TASK_FAILURE, "noaction")
    environment(body, "commonEnvironmentSettings")
    name_values(body, "metadata")
    jm = body.get("jobManagerTask")
    if jm is not None:
        validate_task(jm, "jobManagerTask.")
    _check_preparation_task(body.get("jobPreparationTask"))
    return _copy_fields(body, _JOB_FIELDS)
