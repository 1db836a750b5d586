"""What localbatch honours of each request body, and the screen that refuses (strict, the
default) or drops with a warning (``--loose``) everything else.

Each tree below lists, for one body model of api-version 2025-06-01, the properties localbatch
honours. A property name maps to ``ALL`` (honoured with everything under it), to a nested tree
(an object, or each object of a list), or to a tuple of the values honoured. A property that is
set in a body but not in its tree is unsupported: strict mode answers one 400
``UnsupportedProperty`` naming every such property by its JSON path, so that nothing a client
asks for is silently left undone. Unset means null, an empty list or object, or an object whose
members are all unset.
"""

from __future__ import annotations

import logging
from typing import Union

from .._util import ApiError

log = logging.getLogger("batchfed_lab.localbatch")

ALL = True
Tree = dict[str, Union[bool, tuple, "Tree"]]

# -- the pieces the bodies share --------------------------------------------------------------
# as root, nonadmin tasks run as nobody and admin ones as root (launch/isolation.py)
_IDENTITY: Tree = {"autoUser": {"scope": ALL, "elevationLevel": ("nonadmin", "admin")}}
_CONTAINER_SETTINGS: Tree = {"imageName": ALL, "containerRunOptions": ALL, "workingDirectory": ("taskWorkingDirectory",)}
_TASK_COMMON: Tree = {
    "id": ALL,
    "displayName": ALL,
    "commandLine": ALL,
    "containerSettings": _CONTAINER_SETTINGS,
    "resourceFiles": ALL,
    "outputFiles": ALL,
    "environmentSettings": ALL,
    "constraints": ALL,
    "requiredSlots": ALL,
    "userIdentity": _IDENTITY,
}
TASK: Tree = {
    **_TASK_COMMON,
    "exitConditions": ALL,
    "affinityInfo": ALL,  # a hint Batch may ignore too
    "multiInstanceSettings": ALL,
    "dependsOn": ALL,
}
_JOB_MANAGER: Tree = {**_TASK_COMMON, "killJobOnCompletion": ALL, "runExclusive": (False,), "allowLowPriorityNode": (True,)}
_JOB_PREPARATION: Tree = {
    "id": ALL,
    "commandLine": ALL,
    "resourceFiles": ALL,
    "environmentSettings": ALL,
    "constraints": ALL,
    "waitForSuccess": (True,),
    "userIdentity": _IDENTITY,
    "rerunOnNodeRebootAfterSuccess": ALL,  # nodes never reboot here
}
JOB_SPECIFICATION: Tree = {
    "displayName": ALL,
    "usesTaskDependencies": ALL,
    "priority": ALL,
    "allowTaskPreemption": (False,),
    "maxParallelTasks": ALL,
    "constraints": ALL,
    "jobManagerTask": _JOB_MANAGER,
    "jobPreparationTask": _JOB_PREPARATION,
    "commonEnvironmentSettings": ALL,
    "poolInfo": {"poolId": ALL},
    "onAllTasksComplete": ALL,
    "onTaskFailure": ALL,
    "metadata": ALL,
}
JOB: Tree = {"id": ALL, **JOB_SPECIFICATION}
JOB_UPDATE: Tree = {
    k: JOB_SPECIFICATION[k]
    for k in ("priority", "allowTaskPreemption", "maxParallelTasks", "constraints", "poolInfo", "onAllTasksComplete", "metadata")
}
SCHEDULE: Tree = {"id": ALL, "displayName": ALL, "schedule": ALL, "jobSpecification": JOB_SPECIFICATION, "metadata": ALL}
SCHEDULE_UPDATE: Tree = {"schedule": ALL, "jobSpecification": JOB_SPECIFICATION, "metadata": ALL}

_VM_CONFIGURATION: Tree = {
    "imageReference": ALL,  # a label: every node is this machine
    "nodeAgentSKUId": ALL,
    "containerConfiguration": {"type": ALL, "containerImageNames": ALL, "containerRegistries": ALL},
}
POOL: Tree = {
    "id": ALL,
    "displayName": ALL,
    "vmSize": ALL,  # a label
    "virtualMachineConfiguration": _VM_CONFIGURATION,
    "resizeTimeout": ALL,
    "targetDedicatedNodes": ALL,
    "targetLowPriorityNodes": ALL,
    "enableAutoScale": ALL,
    "autoScaleFormula": ALL,
    "autoScaleEvaluationInterval": ALL,
    "enableInterNodeCommunication": ALL,
    "startTask": ALL,
    "taskSlotsPerNode": ALL,
    "taskSchedulingPolicy": {"nodeFillType": ALL, "jobDefaultOrder": ("none",)},
    "metadata": ALL,
}
POOL_UPDATE: Tree = {"displayName": ALL, "startTask": ALL, "metadata": ALL, "taskSlotsPerNode": ALL}
POOL_REPLACE: Tree = {"startTask": ALL, "metadata": ALL}
TASK_UPDATE: Tree = {"constraints": ALL}
POOL_RESIZE: Tree = dict.fromkeys(
    ("targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout", "nodeDeallocationOption"), ALL
)
NODE_REMOVAL: Tree = dict.fromkeys(("nodeList", "resizeTimeout", "nodeDeallocationOption"), ALL)
AUTOSCALE: Tree = dict.fromkeys(("autoScaleFormula", "autoScaleEvaluationInterval"), ALL)
JOB_DISABLE: Tree = {"disableTasks": ALL}
JOB_TERMINATE: Tree = {"terminateReason": ALL}


def _is_set(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return any(_is_set(v) for v in value.values())
    if isinstance(value, list):
        return bool(value)
    return True


def unsupported(body: object, tree: Tree, prefix: str = "") -> list[str]:
    """The JSON paths of the properties set in ``body`` that ``tree`` does not honour, in body order."""
    if not isinstance(body, dict):
        return []  # not an object: the body checks answer for it
    found: list[str] = []
    for name, value in body.items():
        path = f"{prefix}{name}"
        rule = tree.get(name)
        if not _is_set(value) or rule is ALL:
            continue
        if isinstance(rule, tuple):
            if not (value in rule or (isinstance(value, str) and value.lower() in rule)):
                found.append(path)
        elif isinstance(rule, dict) and isinstance(value, list):
            for i, item in enumerate(value):
                found += unsupported(item, rule, f"{path}[{i}].")
        elif isinstance(rule, dict):
            found += unsupported(value, rule, path + ".")
        else:
            found.append(path)
    return found


def _drop(body: dict, path: str) -> None:
    """Remove the property at a path from :func:`unsupported` out of ``body``."""
    node: object = body
    parts = path.split(".")
    for part in parts[:-1]:
        name, _, index = part.partition("[")
        node = node[name] if isinstance(node, dict) else node
        if index:
            node = node[int(index.rstrip("]"))]  # type: ignore[index]  # a list, as the path says
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def screen(body: object, tree: Tree, *, loose: bool, where: str) -> object:
    """The body with what localbatch cannot honour refused (strict) or dropped (``loose``,
    one warning line per property). ``where`` names the call in the log."""
    paths = unsupported(body, tree)
    if not paths:
        return body
    if not loose:
        raise unsupported_error(paths)
    assert isinstance(body, dict)  # unsupported() finds nothing in anything else
    for path in reversed(paths):  # last first: list indexes of earlier paths stay valid
        _drop(body, path)
    for path in paths:
        log.warning("ignored %s of %s: localbatch cannot honour it (--loose)", path, where)
    return body


def unsupported_error(paths: list[str]) -> ApiError:
    values = [("PropertyName", p) for p in paths]
    values.append(("Reason", "localbatch cannot honour these properties; start it with --loose to accept and ignore them"))
    return ApiError(
        400,
        "UnsupportedProperty",
        f"One or more properties in the request body are not supported by localbatch: {', '.join(paths)}.",
        values,
    )
