"""The one verb/flag table behind ``batchfed fed …`` and ``%fed …``.

Each :class:`Verb` names its words (``("jobs", "add")``), its parameters and a ``run``
function that calls the :class:`~batchfed_lab.client.Client` and shapes what came back
into a :class:`Result`: the value ``%fed`` returns, the text the CLI prints and the
JSON ``--raw`` prints. The CLI (:mod:`batchfed_lab.cli_fed`) and the magics
(:mod:`batchfed_lab.magics`) are built from this table, so they accept the same verbs
and options by construction. No business logic here: that lives in the client.

Added by the surfaces, not listed per verb: ``--raw`` (CLI, every verb), ``-o NAME``
(magic, every verb) and ``-y/--yes`` (both, every :attr:`Verb.destructive` verb).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client
    from .results import PoolSnapshot

__all__ = [
    "GROUPS",
    "VERBS",
    "Param",
    "Result",
    "Verb",
    "all_paths",
    "dumps",
    "params_of",
    "run",
    "usage_text",
    "with_default_verb",
]


@dataclass(frozen=True)
class Param:
    """One argument. ``flags`` empty → positional (optional unless ``required``).
    ``kind``: ``value`` (one value), ``multi`` (repeatable option), ``flag`` (switch)."""

    dest: str
    flags: tuple[str, ...] = ()
    help: str = ""
    kind: str = "value"
    type: type = str
    default: Any = None
    required: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def positional(self) -> bool:
        return not self.flags


@dataclass(frozen=True)
class Result:
    """What a verb produced. ``value``: what ``%fed`` returns (a DataFrame, a handle, text)
    or stores with ``-o``; ``rich``: whether the magic should display ``value`` (else it
    prints ``text``); ``text``: what the CLI prints; ``data``: what ``--raw`` prints. Both
    may be given as functions, so each surface pays only for the output it shows."""

    value: Any
    render: str | Callable[[], str]
    raw: Any
    rich: bool = False
    warnings: tuple[str, ...] = ()
    #: more text that arrives after ``text`` (``proxy logs --follow``): the surfaces print
    #: each piece as it comes, until it ends or the user interrupts
    stream: Iterable[str] | None = None

    @property
    def text(self) -> str:
        return self.render() if callable(self.render) else self.render

    @property
    def data(self) -> Any:
        return self.raw() if callable(self.raw) else self.raw


@dataclass(frozen=True)
class Verb:
    """One command. ``aliases`` are other word paths for it (``submit`` for ``jobs add``);
    ``cell`` is the parameter a ``%%fed`` cell body fills; ``destructive`` is the
    confirmation prompt (formatted with the arguments); ``root`` puts it at the top of the
    CLI (``batchfed up``) instead of under ``batchfed fed``; ``dry_run`` names the flag that
    turns it into a dry run (``--what-if``), which needs no confirmation."""

    words: tuple[str, ...]
    summary: str
    params: tuple[Param, ...]
    run: Callable[[Client, SimpleNamespace], Result]
    aliases: tuple[tuple[str, ...], ...] = ()
    cell: str | None = None
    destructive: str | None = None
    root: bool = False
    details: str = ""
    dry_run: str | None = None  # a flag that makes it only show what it would do: no confirmation then

    def asks(self, args: dict[str, Any]) -> bool:
        """Must the user confirm before this runs with these arguments?"""
        return bool(self.destructive) and not (self.dry_run and args.get(self.dry_run))

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def prompt(self, args: SimpleNamespace) -> str:
        return (self.destructive or "").format(**vars(args))


# --------------------------------------------------------------------------- shared params
FED = Param("federation_id", metavar="ID", required=True, help="federation id")
YAML_FILE = Param("file", metavar="FILE", help="jobs.yaml (same as --jobs)")
JOBS = Param("jobs", ("--jobs",), metavar="FILE", help="jobs.yaml (in %%fed: the cell body instead)")
POOL_CONFIG = Param("pool_config", ("--pool-config",), metavar="FILE", help="pool.yaml: native/windows defaults for the jobs")
JOB_ID = Param("job_id", ("--job-id",), metavar="J", help="job id")
SCHEDULE_ID = Param("schedule_id", ("--jobschedule-id",), metavar="S", help="job schedule id")
RECURRENCE_JOB_ID = Param("job_id", ("--job-id",), metavar="J", help="job id; a job schedule's recurrence job is S:job-N")
RECURRENCES_OF = Param(
    "schedule_id", ("--jobschedule-id",), metavar="S", help="instead of --job-id: every recurrence job of job schedule S"
)
PROXY_ID = Param("proxy_id", ("--proxy-id",), metavar="ID", help="one proxy (see `fed proxy status`), here or elsewhere")


def _ack_timeout(seconds: int) -> Param:
    return Param(
        "timeout",
        ("--timeout",),
        type=float,
        default=float(seconds),
        metavar="S",
        help=f"seconds to wait for the proxies to obey (default {seconds})",
    )


PROXY_CONFIG = Param("config", ("--config",), metavar="FILE", help="federation.yaml (proxy options)")
PROXY_CONFIG_REQUIRED = Param("config", ("--config",), required=True, metavar="FILE", help="federation.yaml (proxy options)")
STANDBYS = Param("standby", ("--standby",), type=int, default=0, metavar="N", help="standby proxies besides the leader (HA)")
WHAT_IF = Param("what_if", ("--what-if",), kind="flag", help="show what would be deployed or removed; change nothing")
SERVICE_URL = Param(
    "batch_service_url",
    ("--batch-service-url",),
    metavar="URL",
    help="https://<account>.<region>.batch.azure.com, or a localbatch account URL",
)
ACCOUNT = Param(
    "account", ("--account",), metavar="NAME", help="localbatch account instead of --batch-service-url (default: local)"
)
POOL_YAML = Param("pool_config", ("--pool-config",), required=True, metavar="FILE", help="pool.yaml")
JOB_SELECTORS = (
    Param("job_ids", ("--job-id",), kind="multi", metavar="J", help="job id (repeatable)"),
    Param("schedule_ids", ("--jobschedule-id",), kind="multi", metavar="S", help="job schedule id (repeatable)"),
    Param("all_jobs", ("--all-jobs",), kind="flag", help="every job located in the federation"),
    Param("all_schedules", ("--all-jobschedules",), kind="flag", help="every job schedule located in the federation"),
    Param("force", ("--force",), kind="flag", help="enqueue even for ids without a location"),
)

# Columns the CLI prints; --raw and the DataFrames have them all.
POOL_TEXT = [
    "pool_id",
    "account",
    "location",
    "vm_size",
    "cores",
    "memory_gib",
    "gpus",
    "dedicated_idle",
    "dedicated_running",
    "low_priority_idle",
    "low_priority_running",
    "slots_available",
    "slots_total",
    "active_tasks",
    "autoscale",
    "allocation_state",
    "blackout_until",
]
PLACEMENT_TEXT = ["job_id", "kind", "method", "unique_id", "state", "pool_id", "location", "enqueued", "latency_s", "reason"]
LOCATION_TEXT = ["job_id", "kind", "pool_id", "account", "location", "unique_id", "added", "terminated"]
BLOCKED_TEXT = ["job_id", "unique_id", "state", "reason", "pool_id", "status", "verdict"]
VERDICT_TEXT = ["job_id", "pool_id", "location", "status", "verdict"]
RECURRENCE_TEXT = ["job_id", "state", "pool_id", "account", "location", "created"]
TASK_TEXT = ["task_id", "pool_id", "node_id", "state", "exit_code", "start_time", "end_time", "duration_s"]
FEDERATION_TEXT = [
    "federation_id",
    "unique_job_ids",
    "pools",
    "pool_ids",
    "accounts",
    "locations",
    "located_jobs",
    "queued",
    "blocked",
    "failed",
]
ACCOUNT_POOL_TEXT = [
    "pool_id",
    "vm_size",
    "location",
    "state",
    "allocation_state",
    "dedicated_idle",
    "dedicated_running",
    "dedicated_other",
    "dedicated_target",
    "low_priority_idle",
    "low_priority_running",
    "low_priority_other",
    "low_priority_target",
    "task_slots_per_node",
    "autoscale",
    "active_tasks",
]
PROXY_TEXT = [
    "proxy_id",
    "host",
    "pid",
    "running",
    "role",
    "leader",
    "suspended",
    "heartbeat_age_s",
    "version",
    "uptime_s",
    "federations",
    "placed",
    "blocked",
    "failed",
    "log",
]


def _table(df: pd.DataFrame, columns: list[str], empty: str) -> str:
    if df.empty:
        return empty
    return df[columns].to_string(index=False)


def _frame_result(df: pd.DataFrame, columns: list[str], empty: str, warnings: Iterable[str] = ()) -> Result:
    from .frames import frame_records

    return Result(df, lambda: _table(df, columns, empty), lambda: frame_records(df), rich=True, warnings=tuple(warnings))


def _done(text: str, value: Any = None, data: Any = None, warnings: Iterable[str] = ()) -> Result:
    return Result(value, text, data if data is not None else {"message": text}, warnings=tuple(warnings))


def _jobs_source(a: SimpleNamespace) -> tuple[Any, str | None]:
    """The jobs to read: a ``%%fed`` cell, a positional FILE or ``--jobs FILE`` (one of them)."""
    given = [(v, n) for v, n in ((getattr(a, "cell", None), "<cell>"), (a.file, None), (a.jobs, None)) if v]
    if len(given) > 1:
        raise ConfigError("give the jobs once: a FILE, --jobs FILE or a %%fed cell")
    if not given:
        raise ConfigError("no jobs given: use --jobs FILE (or a FILE argument, or the body of a %%fed cell)")
    src, name = given[0]
    if name is None:
        src = Path(src)  # a command-line value is always a file name, never YAML text
    return src, name


# --------------------------------------------------------------------------- proxy
def _proxy_start(c: Client, a: SimpleNamespace) -> Result:
    proxy, started = c.proxy_start(config=a.config, standby=a.standby)
    word = "started" if started else "already running"
    data = {**proxy.as_dict(), "started_now": started}
    return _done(f"proxy {proxy.proxy_id} {word} (pid {proxy.pid}, log {proxy.log})", data, data)


def _proxy_status(c: Client, a: SimpleNamespace) -> Result:
    from .frames import proxies_frame

    status = c.proxy_status()
    df = proxies_frame(status)
    return Result(df, lambda: _table(df, PROXY_TEXT, "no proxy is running"), status, rich=True)


def _proxy_suspend(c: Client, a: SimpleNamespace) -> Result:
    ack = c.proxy_suspend(timeout=a.timeout)
    return _acknowledged(ack, "proxies suspended: queued actions wait until `fed proxy resume`")


def _proxy_resume(c: Client, a: SimpleNamespace) -> Result:
    ack = c.proxy_resume(timeout=a.timeout)
    return _acknowledged(ack, "proxies resumed")


def _acknowledged(ack: Any, text: str) -> Result:
    """Who obeyed a suspend/resume; a proxy that did not within the timeout is a warning (the
    flag holds in the store and the proxy obeys it when it reads it)."""
    if ack.obeyed:
        text += f" ({', '.join(ack.obeyed)} acknowledged in {ack.seconds:.1f}s)"
    warn = (
        [
            f"{', '.join(ack.pending)} did not acknowledge the {ack.command} within {ack.seconds:.0f}s; "
            "the flag is set in the store and is obeyed when read"
        ]
        if ack.pending
        else []
    )
    if ack.command == "resume" and not ack.obeyed and not ack.pending:
        warn.append("no proxy is running: start one with `fed proxy start`")
    return _done(text, ack, ack.as_dict(), warn)


def _proxy_stop(c: Client, a: SimpleNamespace) -> Result:
    stopped = c.proxy_stop(all=a.all, proxy_id=a.proxy_id, timeout=a.timeout)
    return _done(f"stopped {', '.join(stopped)}" if stopped else "no proxy was running", stopped, {"stopped": stopped})


def _proxy_logs(c: Client, a: SimpleNamespace) -> Result:
    if a.follow:
        stream = c.proxy_logs_follow(a.lines, proxy_id=a.proxy_id)
        return Result(None, "", {"log": None}, stream=stream)
    text = c.proxy_logs(a.lines, proxy_id=a.proxy_id)
    return Result(text, str(text) or "(no proxy log yet)", {"log": str(text)}, rich=True)


def _deployed(report: Any) -> Result:
    """create/destroy on Azure: ``--what-if`` prints the whole plan as one JSON document
    (template, parameters with secrets hidden, role assignments); a real run its summary."""
    if report.what_if and report.document.get("template") is not None:
        text = dumps(report.document)
    else:
        text = "\n".join(report.lines)
    return Result(report, text, report.document, warnings=tuple(report.warnings))


def _proxy_create(c: Client, a: SimpleNamespace) -> Result:
    return _deployed(c.proxy_create(config=a.config, standby=a.standby, what_if=a.what_if))


def _proxy_destroy(c: Client, a: SimpleNamespace) -> Result:
    return _deployed(c.proxy_destroy(config=a.config, standby=a.standby, what_if=a.what_if, purge=a.purge))


# --------------------------------------------------------------------------- federations
def _create(c: Client, a: SimpleNamespace) -> Result:
    fed = c.create_federation(a.federation_id, unique_job_ids=not a.no_unique_job_ids, force=a.force)
    mode = "unique job ids" if fed.unique_job_ids else "non-unique job ids"
    data = {"federation_id": fed.id, "unique_job_ids": fed.unique_job_ids, "created_at": fed.created_at.isoformat()}
    return _done(f"federation {fed.id} created ({mode})", fed, data)


def _destroy(c: Client, a: SimpleNamespace) -> Result:
    res = c.destroy_federation(a.federation_id)
    r = res.report
    data = {
        "federation_id": r.federation_id,
        "pools": r.pools,
        "actions": r.actions,
        "active_actions": r.active_actions,
        "locations": r.locations,
    }
    text = f"federation {r.federation_id} destroyed ({r.pools} pool(s), {r.actions} action(s), {r.locations} location(s) removed)"
    return _done(text, res, data, res.warnings)


def _list(c: Client, a: SimpleNamespace) -> Result:
    from .frames import federations_frame, frame_records

    summaries = c.describe_federations(a.federation_ids or ())
    df = federations_frame(summaries)

    def data() -> list[dict[str, Any]]:
        return [
            {
                **rec,
                "pools": [
                    {"pool_id": p.pool_id, "account": p.account, "location": p.location, "batch_service_url": p.batch_service_url}
                    for p in s.pools
                ],
                "counts": s.counts.as_dict(),
            }
            for rec, s in zip(frame_records(df), summaries)
        ]

    return Result(df, lambda: _table(df, FEDERATION_TEXT, "no federations"), data, rich=True)


# --------------------------------------------------------------------------- pools
def _member(m: Any) -> dict[str, Any]:
    return {
        "federation_id": m.federation_id,
        "pool_id": m.pool_id,
        "account": m.account,
        "location": m.location,
        "batch_service_url": m.batch_service_url,
    }


def _pool_add(c: Client, a: SimpleNamespace) -> Result:
    res = c.add_pools(
        a.federation_id,
        pool_config=list(a.pool_configs) or None,
        pool_ids=a.pool_ids,
        batch_service_url=a.batch_service_url,
        account=a.account,
        create=a.create,
    )
    names = ", ".join(f"{m.pool_id} ({m.account}, {m.location})" for m in res.pools)
    return _done(f"added to {a.federation_id}: {names}", res, [_member(m) for m in res.pools], res.warnings)


def _pool_remove(c: Client, a: SimpleNamespace) -> Result:
    res = c.remove_pools(a.federation_id, a.pool_ids, all=a.all, batch_service_url=a.batch_service_url)
    names = ", ".join(m.pool_id for m in res.pools) or "no pools"
    return _done(f"removed from {a.federation_id}: {names}", res, [_member(m) for m in res.pools], res.warnings)


def _pool_list(c: Client, a: SimpleNamespace) -> Result:
    if a.federation_id is None:
        return _account_pool_list(c, a)
    if a.batch_service_url or a.account:
        raise ConfigError("--batch-service-url / --account list the pools of a Batch account: give no federation id")
    return _frame_result(c.pools_frame(a.federation_id), POOL_TEXT, f"federation {a.federation_id} has no pools")


# --------------------------------------------------------------------------- the pools of a Batch account
def _where(a: SimpleNamespace) -> dict[str, Any]:
    return {"batch_service_url": a.batch_service_url, "account": a.account}


def _account_pool_list(c: Client, a: SimpleNamespace) -> Result:
    from .frames import pools_frame

    snaps = c.account_pools(**_where(a))
    df = pools_frame(None, snaps)
    return Result(df, lambda: _table(df, ACCOUNT_POOL_TEXT, "no pools"), lambda: [snapshot_dict(s) for s in snaps], rich=True)


def _pool_create(c: Client, a: SimpleNamespace) -> Result:
    op = c.create_pool(Path(a.pool_config), exists_ok=a.exists_ok, **_where(a))
    return _done(f"pool {op.pool_id} {'created' if op.changed else 'exists'} in {op.service_url}", op, asdict(op))


def _pool_delete(c: Client, a: SimpleNamespace) -> Result:
    op = c.delete_pool(Path(a.pool_config), **_where(a))
    return _done(f"pool {op.pool_id} {'deleting' if op.changed else 'already gone'}", op, asdict(op))


def _pool_resize(c: Client, a: SimpleNamespace) -> Result:
    op = c.resize_pool(Path(a.pool_config), dedicated=a.dedicated, low_priority=a.low_priority, **_where(a))
    return _done(f"pool {op.pool_id} resizing to {op.dedicated} dedicated, {op.low_priority} low-priority", op, asdict(op))


def snapshot_dict(snap: PoolSnapshot) -> dict[str, Any]:
    """A pool snapshot as JSON-ready data (what ``pool list --raw`` prints for an account)."""
    f, size = snap.facts, snap.facts.size
    return {
        "id": f.pool_id,
        "account": f.account,
        "service_url": f.service_url,
        "location": f.location,
        "vm_size": f.vm_size,
        "size": None
        if size is None
        else {"cores": size.cores, "memory_mib": size.memory_mib, "gpus": size.gpus, "rdma": size.rdma},
        "state": snap.state,
        "allocation_state": snap.allocation_state,
        "task_slots_per_node": f.task_slots_per_node,
        "autoscale": f.autoscale,
        "inter_node_communication": f.inter_node_communication,
        "native": f.native,
        "windows": f.windows,
        "custom_image_id": f.custom_image_id,
        "subnet_id": f.subnet_id,
        "registry_logins": sorted(f.registry_logins),
        "target_dedicated": f.target_dedicated,
        "target_low_priority": f.target_low_priority,
        "dedicated": {"idle": snap.dedicated.idle, "running": snap.dedicated.running, "other": snap.dedicated.other},
        "low_priority": {"idle": snap.low_priority.idle, "running": snap.low_priority.running, "other": snap.low_priority.other},
        "active_tasks": snap.active_tasks,
    }


# --------------------------------------------------------------------------- jobs
def _jobs_add(c: Client, a: SimpleNamespace) -> Result:
    src, name = _jobs_source(a)
    sub = c.submit(a.federation_id, src, pool_config=a.pool_config, name=name)
    if a.wait:
        sub.wait(timeout=a.timeout)
    df = sub.status()
    from .frames import frame_records

    return Result(sub, lambda: df[PLACEMENT_TEXT].to_string(index=False), lambda: frame_records(df), rich=True)


def _jobs_list(c: Client, a: SimpleNamespace) -> Result:
    df = c.jobs_frame(
        a.federation_id, a.job_id, schedule_id=a.schedule_id, queued=a.queued, blocked=a.blocked, recurrences=a.recurrences
    )
    if a.recurrences:
        return _frame_result(df, RECURRENCE_TEXT, f"job schedule {a.schedule_id} has no recurrence jobs yet")
    if a.queued:
        return _frame_result(df, PLACEMENT_TEXT, "no queued actions")
    if a.blocked:
        return _frame_result(df, BLOCKED_TEXT, "no blocked or failed actions")
    return _frame_result(df, LOCATION_TEXT, "no placed jobs")


def _removal(method: str) -> Callable[[Client, SimpleNamespace], Result]:
    def run(c: Client, a: SimpleNamespace) -> Result:
        call = c.terminate if method == "terminate" else c.delete
        res = call(
            a.federation_id,
            a.job_ids,
            schedule_ids=a.schedule_ids,
            all_jobs=a.all_jobs,
            all_schedules=a.all_schedules,
            force=a.force,
        )
        lines = [f"enqueued {x.method.value} {x.kind.value} {x.target_id}: {x.id}" for x in res.actions] or ["nothing enqueued"]
        data = {
            "unique_ids": res.unique_ids,
            "skipped": res.skipped,
            "actions": [{"job_id": x.target_id, "kind": x.kind.value, "unique_id": x.id} for x in res.actions],
        }
        return _done("\n".join(lines), res, data, res.warnings)

    return run


def _jobs_zap(c: Client, a: SimpleNamespace) -> Result:
    action = c.zap(a.federation_id, a.unique_id)
    data = {"unique_id": action.id, "job_id": action.target_id, "state": action.state.value}
    return _done(f"zapped {action.method.value} {action.kind.value} {action.target_id} ({action.id})", action, data)


def _explain(c: Client, a: SimpleNamespace) -> Result:
    from .frames import frame_records, verdicts_frame

    src, name = _jobs_source(a)
    explanations = c.explain(a.federation_id, src, pool_config=a.pool_config, policy=a.policy, name=name)
    df = verdicts_frame(explanations)
    head = "\n".join(
        f"{e.job_id}: {'→ ' + e.pool_id if e.pool_id else 'would block'} ({e.decision.reason})" for e in explanations
    )

    def data() -> list[dict[str, Any]]:
        records = frame_records(df)
        return [
            {
                "job_id": e.job_id,
                "kind": e.kind,
                "pool_id": e.pool_id,
                "reason": e.decision.reason,
                "verdicts": [r for r in records if r["job_id"] == e.job_id],
            }
            for e in explanations
        ]

    return Result(df, lambda: head + "\n" + _table(df, VERDICT_TEXT, "the federation has no pools"), data, rich=True)


def _tasks(c: Client, a: SimpleNamespace) -> Result:
    df = c.tasks_frame(a.federation_id, a.job_id, schedule_id=a.schedule_id)
    if a.schedule_id:  # rows of several recurrence jobs: say which
        return _frame_result(df, ["job_id", *TASK_TEXT], f"job schedule {a.schedule_id} has no tasks yet")
    return _frame_result(df, TASK_TEXT, f"job {a.job_id} has no tasks")


def _output(c: Client, a: SimpleNamespace) -> Result:
    stream = "stderr" if a.stderr else "stdout"
    text = c.task_output(a.federation_id, a.job_id, a.task_id, stream, schedule_id=a.schedule_id, max_bytes=a.max_bytes)
    return Result(text, str(text).rstrip("\n"), {"output": str(text)}, rich=True)


# --------------------------------------------------------------------------- embedded stack
def _up(c: Client, a: SimpleNamespace) -> Result:
    res = c.up(config=a.config)
    lb, proxy = res["localbatch"], res["proxy"]
    text = f"localbatch at {lb.url} (pid {lb.pid})\nproxy {proxy.proxy_id} {'started' if res['started'] else 'already running'} (pid {proxy.pid})"
    data = {"localbatch": lb.as_dict(), "proxy": proxy.as_dict(), "proxy_started": res["started"]}
    return _done(text, data, data)


def _down(c: Client, a: SimpleNamespace) -> Result:
    res = c.down()
    text = f"stopped proxies: {', '.join(res['proxies']) or 'none'}; localbatch: {'stopped' if res['localbatch'] else 'was not running'}"
    return _done(text, res, res)


# --------------------------------------------------------------------------- the table
VERBS: tuple[Verb, ...] = (
    Verb(
        ("proxy", "start"),
        "start the proxy in the background (idempotent)",
        (
            PROXY_CONFIG,
            Param("standby", ("--standby",), kind="flag", help="start one more proxy as a standby (HA)"),
        ),
        _proxy_start,
        details="It outlives the terminal or kernel that started it.",
    ),
    Verb(("proxy", "status"), "is a proxy running, is it the leader, heartbeat, counters", (), _proxy_status),
    Verb(
        ("proxy", "suspend"),
        "stop processing actions; metadata and queues are kept",
        (_ack_timeout(10),),
        _proxy_suspend,
        details="Reaches proxies on any machine sharing the store; reports which acknowledged.",
    ),
    Verb(("proxy", "resume"), "resume processing actions", (_ack_timeout(10),), _proxy_resume),
    Verb(
        ("proxy", "stop"),
        "stop the proxy gracefully",
        (
            Param("all", ("--all",), kind="flag", help="stop every proxy sharing the store"),
            PROXY_ID,
            _ack_timeout(40),
        ),
        _proxy_stop,
        details="A proxy of this machine is signalled; one elsewhere obeys a stop request in the store.",
    ),
    Verb(
        ("proxy", "logs"),
        "show the tail of the proxy log",
        (
            Param("lines", ("-n", "--lines"), type=int, default=50, metavar="N", help="lines to show (default 50)"),
            Param("follow", ("-f", "--follow"), kind="flag", help="keep printing new lines until the proxy stops"),
            PROXY_ID,
        ),
        _proxy_logs,
        details="A proxy of another machine is read from its log blobs (Azure store, logging.persistence).",
    ),
    Verb(
        ("proxy", "create"),
        "deploy the proxy to Azure Container Instances with a managed identity and narrow roles",
        (PROXY_CONFIG_REQUIRED, STANDBYS, WHAT_IF),
        _proxy_create,
        details="federation.yaml gives location, resource_group, hostname_prefix and vm_size (docs/azure.md).",
        dry_run="what_if",
    ),
    Verb(
        ("proxy", "destroy"),
        "remove the deployed proxies' container groups and role assignments (federation data is kept)",
        (
            PROXY_CONFIG_REQUIRED,
            STANDBYS,
            WHAT_IF,
            Param("purge", ("--purge",), kind="flag", help="also destroy every federation's metadata in the store"),
        ),
        _proxy_destroy,
        destructive="remove the proxy deployment of {config} from Azure?",
        dry_run="what_if",
    ),
    Verb(
        ("create",),
        "create a federation",
        (
            FED,
            Param("no_unique_job_ids", ("--no-unique-job-ids",), kind="flag", help="allow a job id to be submitted again"),
            Param("force", ("--force",), kind="flag", help="replace an existing federation's settings"),
        ),
        _create,
    ),
    Verb(
        ("destroy",),
        "remove a federation and all its metadata (Batch jobs are kept)",
        (FED,),
        _destroy,
        destructive="destroy federation {federation_id} and all its metadata?",
    ),
    Verb(
        ("list",),
        "federations with their pools and action counts",
        (Param("federation_ids", ("--federation-id",), kind="multi", metavar="ID", help="only this federation (repeatable)"),),
        _list,
    ),
    Verb(
        ("pool", "add"),
        "add pools to a federation",
        (
            FED,
            Param("pool_configs", ("--pool-config",), kind="multi", metavar="FILE", help="pool.yaml (repeatable)"),
            Param("pool_ids", ("--pool-id",), kind="multi", metavar="P", help="pool id (repeatable)"),
            SERVICE_URL,
            ACCOUNT,
            Param("create", ("--create",), kind="flag", help="first create pools from their pool.yaml where missing"),
        ),
        _pool_add,
    ),
    Verb(
        ("pool", "remove"),
        "remove pools from a federation",
        (
            FED,
            Param("pool_ids", ("--pool-id",), kind="multi", metavar="P", help="pool id (repeatable)"),
            Param("all", ("--all",), kind="flag", help="every pool of the federation"),
            SERVICE_URL,
        ),
        _pool_remove,
        destructive="remove pools from federation {federation_id}?",
    ),
    Verb(
        ("pool", "list"),
        "the pools of a federation (ID) or of a Batch account, with live capacity",
        (
            Param("federation_id", metavar="ID", help="federation id (without it: the pools of a Batch account)"),
            SERVICE_URL,
            ACCOUNT,
        ),
        _pool_list,
        aliases=(("pools",),),
    ),
    Verb(
        ("pool", "create"),
        "create a pool in a Batch account from its pool.yaml",
        (
            POOL_YAML,
            SERVICE_URL,
            ACCOUNT,
            Param("exists_ok", ("--exists-ok",), kind="flag", help="an existing pool with this id is not an error"),
        ),
        _pool_create,
    ),
    Verb(
        ("pool", "delete"),
        "delete the pool a pool.yaml names from its Batch account (gone already is fine)",
        (
            POOL_YAML,
            SERVICE_URL,
            ACCOUNT,
        ),
        _pool_delete,
    ),
    Verb(
        ("pool", "resize"),
        "resize the pool a pool.yaml names to its vm_count (or the given targets)",
        (
            POOL_YAML,
            SERVICE_URL,
            ACCOUNT,
            Param("dedicated", ("--dedicated",), type=int, metavar="N", help="target dedicated nodes (default: vm_count)"),
            Param(
                "low_priority", ("--low-priority",), type=int, metavar="N", help="target low-priority nodes (default: vm_count)"
            ),
        ),
        _pool_resize,
    ),
    Verb(
        ("jobs", "add"),
        "validate jobs.yaml and enqueue its jobs",
        (
            FED,
            YAML_FILE,
            JOBS,
            POOL_CONFIG,
            Param("wait", ("--wait",), kind="flag", help="wait until every job is placed (fails if one is blocked)"),
            Param("timeout", ("--timeout",), type=float, default=60.0, metavar="S", help="seconds --wait waits (default 60)"),
        ),
        _jobs_add,
        aliases=(("submit",),),
        cell="cell",
    ),
    Verb(
        ("jobs", "list"),
        "placed jobs (default), queued or blocked actions",
        (
            FED,
            JOB_ID,
            SCHEDULE_ID,
            Param("queued", ("--queued",), kind="flag", help="actions not processed yet, FIFO per job"),
            Param("blocked", ("--blocked",), kind="flag", help="blocked and failed actions with per-pool verdicts"),
            Param("recurrences", ("--recurrences",), kind="flag", help="with --jobschedule-id: the schedule's recurrence jobs"),
        ),
        _jobs_list,
    ),
    Verb(
        ("jobs", "term"),
        "enqueue terminate actions",
        (FED, *JOB_SELECTORS),
        _removal("terminate"),
        destructive="terminate the selected jobs of federation {federation_id}?",
    ),
    Verb(
        ("jobs", "del"),
        "enqueue delete actions",
        (FED, *JOB_SELECTORS),
        _removal("delete"),
        destructive="delete the selected jobs of federation {federation_id}?",
    ),
    Verb(
        ("jobs", "zap"),
        "drop one queued or blocked action for good",
        (
            FED,
            Param("unique_id", ("--unique-id",), required=True, metavar="U", help="unique id of the action"),
        ),
        _jobs_zap,
        destructive="zap action {unique_id} of federation {federation_id}? It cannot be recovered",
    ),
    Verb(
        ("explain",),
        "dry run: per-pool verdicts and the pool that would be chosen now",
        (
            FED,
            YAML_FILE,
            JOBS,
            POOL_CONFIG,
            Param("policy", ("--policy",), default="largest-fit", choices=("largest-fit", "best-fit"), help="pool choice policy"),
        ),
        _explain,
        cell="cell",
    ),
    Verb(
        ("tasks",),
        "tasks of a job (or of a job schedule's recurrences): state, exit code, node, times",
        (FED, RECURRENCE_JOB_ID, RECURRENCES_OF),
        _tasks,
    ),
    Verb(
        ("output",),
        "a task's stdout (or stderr)",
        (
            FED,
            RECURRENCE_JOB_ID,
            Param(
                "schedule_id",
                ("--jobschedule-id",),
                metavar="S",
                help="instead of --job-id: the task of the newest recurrence of job schedule S that has it",
            ),
            Param("task_id", ("--task-id",), required=True, metavar="T", help="task id"),
            Param("stderr", ("--stderr",), kind="flag", help="stderr instead of stdout"),
            Param(
                "max_bytes", ("--max-bytes",), type=int, default=1 << 20, metavar="N", help="read at most N bytes (default 1 MiB)"
            ),
        ),
        _output,
    ),
    Verb(("up",), "start the embedded stack: localbatch and the proxy", (PROXY_CONFIG,), _up, root=True),
    Verb(("down",), "stop every proxy and localbatch of the workspace (no orphans)", (), _down, root=True),
)

#: word groups and their default verb (``%fed jobs FED`` = ``%fed jobs list FED``); ``root``: the CLI
#: offers the group at the top too (``batchfed pool …`` = ``batchfed fed pool …``)
GROUPS: dict[str, dict[str, Any]] = {
    "proxy": {"help": "control the federation proxy", "default": None, "root": False},
    "pool": {
        "help": "the pools of a federation (add, remove, list) and of a Batch account (create, delete, resize, list)",
        "default": None,
        "root": True,
    },
    "jobs": {"help": "add, list, terminate, delete and zap federation jobs", "default": "list", "root": False},
}


def all_paths() -> Iterator[tuple[tuple[str, ...], Verb]]:
    """Every word path (names and aliases) with its verb."""
    for v in VERBS:
        yield v.words, v
        for alias in v.aliases:
            yield alias, v


def with_default_verb(argv: list[str]) -> list[str]:
    """``jobs FED …`` → ``jobs list FED …`` (a group's default verb when none is named)."""
    if argv and argv[0] in GROUPS and GROUPS[argv[0]]["default"]:
        subs = {v.words[1] for v in VERBS if len(v.words) == 2 and v.words[0] == argv[0]}
        if len(argv) == 1 or (argv[1] not in subs and argv[1] not in ("-h", "--help")):
            return [argv[0], GROUPS[argv[0]]["default"], *argv[1:]]
    return argv


def params_of(verb: Verb, surface: str) -> tuple[Param, ...]:
    """The verb's parameters plus those a surface adds (``-y`` everywhere it is destructive,
    ``--raw`` in the CLI, ``-o`` in the magic)."""
    extra: list[Param] = []
    if verb.destructive:
        extra.append(Param("yes", ("-y", "--yes"), kind="flag", help="do not ask for confirmation"))
    if surface == "cli":
        extra.append(Param("raw", ("--raw",), kind="flag", help="print JSON"))
    else:
        extra.append(Param("out", ("-o", "--out"), metavar="NAME", help="store the result in the user namespace as NAME"))
    return (*verb.params, *extra)


def run(verb: Verb, client: Client, args: dict[str, Any]) -> Result:
    """Run a verb with parsed arguments (surface-only keys are ignored)."""
    known = {p.dest for p in verb.params}
    ns = SimpleNamespace(**{k: v for k, v in args.items() if k in known or k == "cell"})
    return verb.run(client, ns)


def usage_text() -> str:
    """Every verb with its options, one block each: the help of ``%fed`` and docs/cli.md."""
    lines = ["%fed VERB [ARGS] — the same verbs and options as `batchfed fed …`.", ""]
    for v in VERBS:
        names = " | ".join(" ".join(p) for p in (v.words, *v.aliases))
        lines.append(f"  {names}  {_synopsis(v)}")
        lines.append(
            f"      {v.summary}"
            + (" (confirm with -y/--yes)" if v.destructive else "")
            + (" (cell body: jobs YAML)" if v.cell else "")
        )
    lines += [
        "",
        "`jobs ID …` is short for `jobs list ID …`. Every verb also takes -o NAME (store the result",
        "in the user namespace). Failures raise one-line errors (papermill fails the run).",
        "`%fed VERB -h` shows a verb's options. `%%fed submit FED [--wait] [-o NAME]`: the cell is jobs YAML;",
        "{name} in it is replaced by the user variable `name` ({{name}} for a literal {name}).",
    ]
    return "\n".join(lines)


def _synopsis(v: Verb) -> str:
    parts = []
    for p in v.params:
        if p.positional:
            parts.append("[FILE]" if p.dest == "file" else (p.metavar or p.dest.upper()))
        elif p.kind == "flag":
            parts.append(f"[{p.flags[0]}]")
        else:
            dots = " …" if p.kind == "multi" else ""
            meta = p.metavar or ("{" + ",".join(p.choices) + "}" if p.choices else "VALUE")
            item = f"{p.flags[0]} {meta}{dots}"
            parts.append(item if p.required else f"[{item}]")
    return " ".join(parts)


def dumps(data: Any) -> str:
    """``--raw`` output: indented JSON; anything not JSON-native becomes text."""
    return json.dumps(data, indent=2, default=str)
