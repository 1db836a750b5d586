"""How objects read back: with the defaults Batch fills in for what the create request left out
(api-version 2025-06-01), added when a document is sent rather than stored, so that what the
engine acts on is exactly what was asked for."""

from __future__ import annotations

FOREVER = "P10675199DT2H48M5.4775807S"  # how Batch writes "no limit" (TimeSpan.MaxValue)
RETENTION = "P7D"
AUTO_USER = {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
_JOB_DEFAULTS = {
    "priority": 0,
    "maxParallelTasks": -1,
    "allowTaskPreemption": False,
    "usesTaskDependencies": False,
    "onAllTasksComplete": "noaction",
    "onTaskFailure": "noaction",
}


def _with(doc: dict, key: str, defaults: dict) -> dict:
    """``doc`` with ``doc[key]`` completed by ``defaults`` (copies, never the stored objects)."""
    inner = doc.get(key)
    if not isinstance(inner, dict):
        return doc
    missing = {k: v for k, v in defaults.items() if k not in inner}
    return {**doc, key: {**inner, **missing}} if missing else doc


def start_task(doc: dict) -> dict:
    return {"userIdentity": AUTO_USER, "maxTaskRetryCount": 0, "waitForSuccess": True, **doc}


def pool(doc: dict) -> dict:
    out = dict(doc)
    if isinstance(out.get("startTask"), dict):
        out["startTask"] = start_task(out["startTask"])
    vmc = out.get("virtualMachineConfiguration")
    if isinstance(vmc, dict) and isinstance(vmc.get("imageReference"), dict):
        image = vmc["imageReference"]
        if "version" not in image and "virtualMachineImageId" not in image:
            out["virtualMachineConfiguration"] = {**vmc, "imageReference": {**image, "version": "latest"}}
    return out


def task(doc: dict) -> dict:
    out = dict(doc)
    out.setdefault("userIdentity", AUTO_USER)
    out.setdefault("constraints", {})
    out = _with(out, "constraints", {"maxWallClockTime": FOREVER, "retentionTime": RETENTION, "maxTaskRetryCount": 0})
    return out


def _job_fields(doc: dict) -> dict:
    out = {**_JOB_DEFAULTS, **doc}
    out.setdefault("constraints", {})
    return _with(out, "constraints", {"maxWallClockTime": FOREVER, "maxTaskRetryCount": 0})


def job(doc: dict) -> dict:
    return _job_fields(doc)


def schedule(doc: dict) -> dict:
    spec = doc.get("jobSpecification")
    return {**doc, "jobSpecification": _job_fields(spec)} if isinstance(spec, dict) else doc
