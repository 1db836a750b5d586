"""A task's ``exitConditions``: which exit options apply to a completed task, what they do to
its job (``jobAction``) and to the tasks that depend on it (``dependencyAction``).

The rules, as Azure Batch documents them for api-version 2025-06-01:

- an exit code listed in ``exitCodes``, else one inside an ``exitCodeRanges`` entry, picks that
  entry's options; a file upload failure after such an exit code keeps the exit code's options;
- otherwise a task that failed before its process ran (no exit code: the program was not found,
  a resource file or the job preparation failed) takes ``preProcessingError``, an output upload
  failure ``fileUploadError``, and every other failure ``default``;
- a field left out is ``jobAction: none`` / ``dependencyAction: satisfy`` for a success and
  ``terminate`` / ``block`` for anything else; exit code 0 gets other options only when listed;
- the job action is taken only when the job's ``onTaskFailure`` is
  ``performExitOptionsJobAction``; ``terminate`` ends the job with reason ``TaskFailed``,
  ``disable`` disables it as the disable call with ``disableTasks: requeue`` does;
- giving a ``jobAction`` on a job whose ``onTaskFailure`` is ``noaction``, or a
  ``dependencyAction`` on a job without ``usesTaskDependencies``, is a 400 at task creation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._util import invalid

if TYPE_CHECKING:
    from ..model import Task
    from .jobs import Jobs

JOB_ACTIONS = ("none", "disable", "terminate")
DEPENDENCY_ACTIONS = ("satisfy", "block")
PERFORM_EXIT_OPTIONS = "performexitoptionsjobaction"
TERMINATE_REASON = "TaskFailed"
_OPTION_KEYS = ("preProcessingError", "fileUploadError", "default")


# == checking a task body =========================================================================
def check_exit_conditions(job_doc: dict, fields: dict, prefix: str = "") -> None:
    """Refuse (400) malformed exit conditions and actions the job cannot take; lower-case the
    action names in ``fields`` as the service reports them."""
    ec = fields.get("exitConditions")
    if ec is None:
        return
    path = prefix + "exitConditions"
    if not isinstance(ec, dict):
        raise invalid(path, "must be an object", ec)
    options = [(f"{path}.{k}", ec[k]) for k in _OPTION_KEYS if ec.get(k) is not None]
    for i, item in enumerate(_list(ec, "exitCodes", path)):
        where = f"{path}.exitCodes[{i}]"
        _int(item, "code", where)
        options.append((where + ".exitOptions", item.get("exitOptions")))
    for i, item in enumerate(_list(ec, "exitCodeRanges", path)):
        where = f"{path}.exitCodeRanges[{i}]"
        if _int(item, "start", where) > _int(item, "end", where):
            raise invalid(where, "start must not be greater than end", item)
        options.append((where + ".exitOptions", item.get("exitOptions")))
    for where, opts in options:
        _check_options(job_doc, opts, where)


def _list(ec: dict, key: str, path: str) -> list[dict]:
    items = ec.get(key) or []
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise invalid(f"{path}.{key}", "must be a list of objects", items)
    return items


def _int(item: dict, key: str, where: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{where}.{key}", "must be an integer", value)
    return value


def _check_options(job_doc: dict, opts: object, where: str) -> None:
    if opts is None:
        return
    if not isinstance(opts, dict):
        raise invalid(where, "must be an object", opts)
    for key, allowed in (("jobAction", JOB_ACTIONS), ("dependencyAction", DEPENDENCY_ACTIONS)):
        value = opts.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or value.lower() not in allowed:
            raise invalid(f"{where}.{key}", f"must be one of {', '.join(allowed)}", value)
        opts[key] = value.lower()
    if opts.get("jobAction") is not None and str(job_doc.get("onTaskFailure", "")).lower() != PERFORM_EXIT_OPTIONS:
        raise invalid(f"{where}.jobAction", "the job's onTaskFailure must be performExitOptionsJobAction", opts["jobAction"])
    if opts.get("dependencyAction") is not None and not job_doc.get("usesTaskDependencies"):
        raise invalid(f"{where}.dependencyAction", "the job must have usesTaskDependencies set", opts["dependencyAction"])


# == a completed task =============================================================================
def exit_options(task_doc: dict) -> tuple[str, str]:
    """``(jobAction, dependencyAction)`` for a completed task."""
    ec = task_doc.get("exitConditions") or {}
    ei = task_doc.get("executionInfo") or {}
    code = ei.get("exitCode")
    failure = ei.get("failureInfo")
    success = ei.get("result") == "success"
    chosen = _by_exit_code(ec, code) if code is not None else None
    if chosen is None and failure is not None:
        if str(failure.get("code", "")).startswith("FileUpload"):
            chosen = ec.get("fileUploadError")
        elif code is None:
            chosen = ec.get("preProcessingError")
    if chosen is None and not success:
        chosen = ec.get("default")
    chosen = chosen or {}
    job_action = chosen.get("jobAction") or ("none" if success else "terminate")
    dependency_action = chosen.get("dependencyAction") or ("satisfy" if success else "block")
    return job_action, dependency_action


def _by_exit_code(ec: dict, code: int) -> dict | None:
    for item in ec.get("exitCodes") or []:
        if item.get("code") == code:
            return item.get("exitOptions") or {}
    for item in ec.get("exitCodeRanges") or []:
        if item["start"] <= code <= item["end"]:
            return item.get("exitOptions") or {}
    return None


def satisfies_dependents(task_doc: dict) -> bool:
    """May the tasks that depend on this one run? Only once it completed, by its exit options."""
    if task_doc.get("state") != "completed":
        return False
    return exit_options(task_doc)[1] == "satisfy"


def take_exit_actions(eng: Jobs, task: Task) -> None:
    """Act on a task that just completed by running (not by being terminated): release its
    dependents when its options satisfy them, then take its job action."""
    job_action, dependency_action = exit_options(task.doc)
    if dependency_action == "satisfy":
        eng._task_succeeded(task)
    job = task.job
    if job_action == "none" or str(job.doc.get("onTaskFailure", "")).lower() != PERFORM_EXIT_OPTIONS:
        return
    if job_action == "terminate":
        eng.terminate_job(job, TERMINATE_REASON)
    elif job.state == "active":
        _disable(eng, task)


def _disable(eng: Jobs, task: Task) -> None:
    """What the disable call does with ``disableTasks: requeue``."""
    job = task.job
    for other in job.tasks.values():
        if other.state == "running" and other is not task:
            eng.requeue(other, count=True)
    eng.set_state(job.doc, "disabling")
    eng.set_state(job.doc, "disabled")
    eng.touch(job.doc)
    eng.save_job(job)
