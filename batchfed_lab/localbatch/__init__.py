"""localbatch: to Azure Batch what Azurite is to Azure Storage.

A loopback HTTP server speaking the subset of the Batch REST API (api-version 2025-06-01 JSON)
that ``azure.batch.BatchClient`` 15.1.0 uses, whose pools run tasks as real processes on this
machine. The same SDK drives localbatch and Azure, so every local run exercises the Azure path.
It is a separate program: it imports nothing of batchfed_lab but ``runtime`` (discovery
files and pid checks, shared with the proxy), ``errors`` and ``config.workspace`` (the
workspace folder and its ``localbatch`` settings).

URL form
    ``http://127.0.0.1:<port>/accounts/<account>`` is the account endpoint a ``BatchClient``
    gets; accounts exist implicitly (``[a-z0-9]{3,24}``), so one server holds many accounts.

Auth
    Shared key, checked exactly as Batch does (see ``auth``), with one key per workspace in
    ``<workspace>/localbatch/key`` (0600) signing every account. Unsigned, forged or stale
    requests get 403 ``AuthenticationFailed``.

Running it
    ``python -m batchfed_lab.localbatch serve --workspace DIR [--port N] [--latency-ms X]``
    in the foreground, or ``control.start(DIR)`` in the background; ``control.stop(DIR)``.
    Discovery: ``<workspace>/runtime/localbatch.json``. See ``control`` for the API and
    ``docs/localbatch.md`` for the REST subset, the admin calls and the limits.

Autoscale formulas (full grammar in ``formula``)
    Statements ``$Var = expression;`` with numbers, ``+ - * /``, comparisons, ``&& || !``,
    ``cond ? a : b``, ``min/max/ceil/floor``, ``$ActiveTasks|$RunningTasks|$PendingTasks
    .GetSample(1)``, ``$CurrentDedicatedNodes``, ``$CurrentLowPriorityNodes``,
    ``$TaskSlotsPerNode``, ``$PreemptedNodeCount``, user variables, and
    ``$NodeDeallocationOption = requeue|terminate|taskcompletion|retaineddata;``. Targets:
    ``$TargetDedicatedNodes``, ``$TargetLowPriorityNodes``. Anything else: 400
    ``AutoScalingFormulaSyntaxError``.

Modules: ``server`` (HTTP, ``serve``), ``api`` (the REST calls by resource, the route table in
``api.routes``), ``engine`` (one state object and lock; pools and nodes, jobs, schedules,
dispatch on node slots, timers for autoscale and time limits), ``runner`` (task processes),
``model`` (objects, body validation), ``store`` (SQLite), ``auth``, ``formula``, ``odata``,
``procs``, ``control``.
"""

from .control import (
    LocalBatchInfo,
    account_url,
    autoscale_now,
    batch_client,
    credentials,
    info,
    preempt,
    start,
    status,
    stop,
)

__all__ = [
    "LocalBatchInfo",
    "account_url",
    "autoscale_now",
    "batch_client",
    "credentials",
    "info",
    "preempt",
    "start",
    "status",
    "stop",
]
