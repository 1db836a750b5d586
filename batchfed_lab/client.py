"""The one Python API every surface uses (CLI, magics, widgets, notebooks).

``batchfed_lab.connect()`` returns a :class:`Client` bound to a workspace. It
only writes metadata and enqueues actions; the proxy does the scheduling.
Every method raises a :class:`~batchfed_lab.errors.BatchfedError` subclass with
a one-line message on bad input, and enqueues nothing in that case.

Methods come in two flavours: records (``federations``, ``pool_snapshots``,
``locations``, ``queued``, ``tasks`` …) for programs, and ``*_frame`` twins that
return the documented pandas DataFrames of :mod:`batchfed_lab.frames` for people.
"""

from __future__ import annotations

import html
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import JobsConfig, PoolConfig, load_jobs, load_pool
from .config.jobs import NON_UNIQUE_TASK_ID_MAX, JobSpecification
from .config.workspace import Workspace, open_workspace
from .errors import BatchfedError, ConfigError, ConflictError, NotFoundError
from .proxy.payload import add_payload, remove_payload
from .scheduler import constraint_matrix, decide, summarize
from .scheduler.types import Decision, PoolSnapshot
from .store import (
    Action,
    ActionKind,
    ActionMethod,
    ActionState,
    Counts,
    DestroyReport,
    Federation,
    Location,
    NewAction,
    PoolMember,
    Store,
    open_store,
)

if TYPE_CHECKING:
    import pandas as pd

    from .batch.adapter import BatchAccount
    from .batch.tasks import TaskInfo

__all__ = [
    "Client",
    "DestroyResult",
    "Explanation",
    "FederatedTask",
    "FederationSummary",
    "PoolChange",
    "RemovalResult",
    "Submission",
    "SubmissionError",
    "TextOutput",
    "connect",
]

log = logging.getLogger("batchfed.client")

TERMINAL = {ActionState.PLACED, ActionState.DONE, ActionState.FAILED, ActionState.ZAPPED}


class SubmissionError(BatchfedError):
    """A submission ended badly (failed, zapped) or is still blocked when waited on."""


class TextOutput(str):
    """Text (a task's stdout, the proxy log) that a notebook shows as it is, not as a repr."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class FederationSummary:
    """A federation with its pools and its action counts (what ``list`` shows)."""

    federation: Federation
    pools: tuple[PoolMember, ...]
    counts: Counts

    @property
    def id(self) -> str:
        return self.federation.id


@dataclass(frozen=True)
class DestroyResult:
    """What ``destroy`` removed, and warnings about work that was still queued or located."""

    report: DestroyReport
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolChange:
    """Pools added or removed, with warnings (jobs still living on a removed pool)."""

    pools: tuple[PoolMember, ...]
    warnings: tuple[str, ...] = ()


@dataclass
class RemovalResult:
    """Actions enqueued by terminate / delete, and targets skipped (no location)."""

    actions: list[Action] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def unique_ids(self) -> list[str]:
        return [a.id for a in self.actions]


@dataclass(frozen=True)
class FederatedTask:
    """One task of a federation job on one of the pools the job lives on."""

    job_id: str
    pool_id: str
    account: str | None
    location: str | None
    task: "TaskInfo"


@dataclass(frozen=True)
class Explanation:
    """A dry run for one job: the per-pool verdicts and the pool that would be chosen now."""

    federation_id: str
    job_id: str
    kind: str
    decision: Decision
    pools: tuple[PoolSnapshot, ...] = ()
    matrix: tuple[Any, ...] = ()  # scheduler.matching.Check rows: pool × constraint

    @property
    def pool_id(self) -> str | None:
        """The pool that would be chosen now, or None (the action would block)."""
        return self.decision.pool.rsplit("#", 1)[-1] if self.decision.pool else None

    def frame(self) -> "pd.DataFrame":
        """The verdicts as a DataFrame (see :func:`batchfed_lab.frames.verdicts_frame`)."""
        from .frames import verdicts_frame

        return verdicts_frame([self])

    def matrix_frame(self) -> "pd.DataFrame":
        """Pool × constraint, pass / fail with required and actual (see :func:`batchfed_lab.frames.matrix_frame`)."""
        from .frames import matrix_frame

        return matrix_frame([self])

    def __repr__(self) -> str:
        where = self.pool_id or "nowhere"
        return f"Explanation({self.job_id!r} → {where}: {self.decision.reason})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        frame = self.frame()
        head = html.escape(repr(self))
        return {"text/plain": f"{self!r}\n{frame.to_string(index=False)}", "text/html": f"<p>{head}</p>{frame.to_html(index=False)}"}


class Submission:
    """Handle on the actions one submit enqueued: ``unique_ids``, ``status()``, ``wait()``."""

    def __init__(self, client: "Client", federation_id: str, actions: Sequence[Action]):
        self.client = client
        self.federation_id = federation_id
        self._actions = list(actions)

    @property
    def unique_ids(self) -> list[str]:
        return [a.id for a in self._actions]

    @property
    def job_ids(self) -> list[str]:
        return [a.target_id for a in self._actions]

    def actions(self) -> list[Action]:
        """The actions as the store has them now."""
        return [self.client.store.get_action(self.federation_id, a.id) for a in self._actions]

    def status(self) -> "pd.DataFrame":
        """One row per action (see :func:`batchfed_lab.frames.placements_frame`)."""
        from .frames import placements_frame

        return placements_frame(self.actions())

    def done(self) -> bool:
        return all(a.state in TERMINAL for a in self.actions())

    def wait(self, timeout: float = 60.0) -> list[Action]:
        """Wait until every action is placed (or done). Raises :class:`SubmissionError` when
        one failed or was zapped, or when some are still queued or blocked at ``timeout``."""
        store = self.client.store
        deadline = time.monotonic() + timeout
        while True:
            marks = store.change_marks()  # before reading: a change in between wakes us at once
            current = self.actions()
            bad = [a for a in current if a.state in (ActionState.FAILED, ActionState.ZAPPED)]
            if bad:
                a = bad[0]
                raise SubmissionError(
                    f"{a.kind.value} {a.target_id} ({a.id}) {a.state.value}: {a.error or a.reason or 'no reason recorded'}"
                )
            if all(a.state in TERMINAL for a in current):
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waiting = [a for a in current if a.state not in TERMINAL]
                a = waiting[0]
                why = f": {a.reason}" if a.state is ActionState.BLOCKED and a.reason else ""
                raise SubmissionError(
                    f"{len(waiting)} of {len(current)} action(s) not placed after {timeout:g}s; "
                    f"{a.kind.value} {a.target_id} is {a.state.value}{why}"
                )
            store.wait_for_change(marks, timeout=min(remaining, 1.0))

    def __repr__(self) -> str:
        return f"Submission({self.federation_id!r}, {len(self._actions)} action(s): {', '.join(self.job_ids)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        frame = self.status()
        head = html.escape(repr(self))
        return {"text/plain": f"{self!r}\n{frame.to_string(index=False)}", "text/html": f"<p>{head}</p>{frame.to_html(index=False)}"}


def _as_jobs(jobs: Any, name: str | None) -> JobsConfig:
    if isinstance(jobs, JobsConfig):
        return jobs
    if isinstance(jobs, JobSpecification):
        return JobsConfig(job_specifications=(jobs,))
    return load_jobs(jobs, name=name or "jobs.yaml")


def _as_pool(pool_config: Any) -> PoolConfig | None:
    if pool_config is None or isinstance(pool_config, PoolConfig):
        return pool_config
    return load_pool(pool_config)


def _pool_configs(pool_config: Any) -> list[PoolConfig]:
    """One pool config or a list of them (paths, YAML text, mappings or models)."""
    if pool_config is None:
        return []
    many = pool_config if isinstance(pool_config, (list, tuple)) else [pool_config]
    return [_as_pool(p) for p in many]  # type: ignore[misc]


class Client:
    """Federations, pools, jobs and the proxy of one workspace."""

    def __init__(self, workspace: Workspace, store: Store | None = None):
        self.workspace = workspace
        self._store = store

    # -- plumbing --------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.workspace)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(workspace={str(self.workspace.path)!r}, store={self.workspace.settings.store.backend!r})"

    def account(self, service_url: str) -> "BatchAccount":
        from .batch.adapter import get_account

        return get_account(service_url, workspace=self.workspace.path)

    # -- federations -----------------------------------------------------------------
    def create_federation(self, federation_id: str, *, unique_job_ids: bool = True, force: bool = False) -> Federation:
        """Create a federation; one that exists already is an error unless ``force``."""
        return self.store.create_federation(federation_id, unique_job_ids=unique_job_ids, force=force)

    def destroy_federation(self, federation_id: str) -> DestroyResult:
        """Remove the federation and all its metadata (never deletes Batch jobs). Warns when
        actions were still queued or jobs still located."""
        report = self.store.destroy_federation(federation_id)
        warnings = []
        if report.active_actions:
            warnings.append(f"{report.active_actions} queued or blocked action(s) of {report.federation_id} were dropped")
        if report.locations:
            warnings.append(
                f"{report.locations} job location(s) of {report.federation_id} were forgotten; their Batch jobs were not deleted"
            )
        for w in warnings:
            log.info(w)  # returned to the caller too: surfaces show it once
        return DestroyResult(report, tuple(warnings))

    def federations(self) -> list[Federation]:
        return self.store.list_federations()

    def federation(self, federation_id: str) -> Federation:
        return self.store.get_federation(federation_id)

    def describe_federations(self, federation_ids: Iterable[str] = ()) -> list[FederationSummary]:
        """Federations (all, or the ones named; an unknown one is an error) with their pools
        and action counts."""
        wanted = list(federation_ids)
        feds = [self.store.get_federation(f) for f in wanted] if wanted else self.store.list_federations()
        return [FederationSummary(f, tuple(self.store.list_pools(f.id)), self.store.counts(f.id)) for f in feds]

    def federations_frame(self, federation_ids: Iterable[str] = ()) -> "pd.DataFrame":
        from .frames import federations_frame

        return federations_frame(self.describe_federations(federation_ids))

    # -- pools -----------------------------------------------------------------------
    def default_service_url(self, account: str = "local") -> str:
        """The embedded localbatch URL of ``account`` (localbatch must be running)."""
        from .localbatch import control

        return control.account_url(account, self.workspace)

    def add_pools(
        self,
        federation_id: str,
        *,
        pool_config: Any = None,
        pool_ids: Sequence[str] = (),
        batch_service_url: str | None = None,
        account: str | None = None,
        create: bool = False,
    ) -> PoolChange:
        """Add pools by pool.yaml (one or a list; their ids) or by ids + a service URL.

        Account and region come from the URL (Azure) or from the pool itself (localbatch's
        location). ``account`` names a localbatch account instead of a URL (default
        ``local``). ``create`` first creates, from their pool.yaml, the pools the account
        does not have yet. All or none: a missing or duplicate pool adds nothing.
        """
        self.store.get_federation(federation_id)  # unknown federation: clear error first
        configs = _pool_configs(pool_config)
        ids = list(pool_ids)
        if configs and ids:
            raise ConfigError("give either pool configs or pool ids, not both")
        if configs:
            ids = [c.pool_specification.id for c in configs]
        if not ids:
            raise ConfigError("no pool given: use --pool-config or one or more --pool-id")
        if create and not configs:
            raise ConfigError("creating pools needs their pool.yaml (--pool-config)")
        if batch_service_url and account:
            raise ConfigError("give either a batch service URL or a localbatch account, not both")
        url = batch_service_url or self.default_service_url(account or "local")
        acct = self.account(url)
        if create:
            have = {p.lower() for p in acct.snapshot_pools(ids, active_tasks=False)}
            for c in configs:
                if c.pool_specification.id.lower() not in have:
                    acct.create_pool(c.pool_specification, exists_ok=True)
        snaps = acct.snapshot_pools(ids, active_tasks=False)
        found = {k.lower(): v for k, v in snaps.items()}
        members = []
        for pid in ids:
            snap = found.get(pid.lower())
            if snap is None:
                hint = "; add --create to create it from its pool.yaml" if configs else ""
                raise NotFoundError(f"pool '{pid}' does not exist at {acct.service_url}{hint}")
            members.append(
                PoolMember(federation_id, acct.service_url, snap.pool_id, account=acct.account, location=snap.facts.location)
            )
        return PoolChange(tuple(self.store.add_pools(federation_id, members)))

    def remove_pools(
        self, federation_id: str, pool_ids: Sequence[str] = (), *, all: bool = False, batch_service_url: str | None = None
    ) -> PoolChange:
        """Remove pools (by id, optionally of one service URL) or ``all`` of them. Warns when
        jobs still live on a removed pool (their Batch jobs are not touched)."""
        if all and pool_ids:
            raise ConfigError("--all cannot be combined with pool ids")
        if not all and not pool_ids:
            raise ConfigError("name the pools to remove (--pool-id), or use --all")
        members = self.store.list_pools(federation_id)
        chosen: list[PoolMember] = []
        if all:
            chosen = members
        for pid in pool_ids:
            want_url = None if batch_service_url is None else batch_service_url.rstrip("/").lower()
            match = [m for m in members if m.pool_id.lower() == pid.lower()
                     and (want_url is None or m.batch_service_url.lower() == want_url)]  # fmt: skip
            if not match:
                raise NotFoundError(f"pool '{pid}' is not in federation '{federation_id}'")
            chosen += match
        keys = {(m.batch_service_url.lower(), m.pool_id.lower()) for m in chosen}
        live: dict[str, list[str]] = {}
        for loc in self.store.get_locations(federation_id):
            if loc.terminated_at is None and (loc.batch_service_url.lower(), loc.pool_id.lower()) in keys:
                live.setdefault(loc.pool_id, []).append(loc.job_id)
        removed = self.store.remove_pools(federation_id, None if all else [(m.batch_service_url, m.pool_id) for m in chosen])
        warnings = tuple(
            f"pool {pool} still runs job(s) of {federation_id}: {', '.join(sorted(jobs))}" for pool, jobs in sorted(live.items())
        )
        for w in warnings:
            log.info(w)
        return PoolChange(tuple(removed), warnings)

    def pools(self, federation_id: str) -> list[PoolMember]:
        """The pool members of a federation (no Batch call)."""
        return self.store.list_pools(federation_id)

    def blackouts(self) -> dict[str, float]:
        """Pools in their post-placement blackout, as the leading proxy last reported them:
        pool key → epoch seconds. Empty when no proxy publishes them."""
        now = time.time()
        out: dict[str, float] = {}
        for rec in self.store.list_proxies():
            for key, until in ((rec.info or {}).get("blackouts") or {}).items():
                if isinstance(until, (int, float)) and until > now:
                    out[key] = max(until, out.get(key, 0.0))
        return out

    def pool_snapshots(self, federation_id: str, *, active_tasks: bool = True) -> list[PoolSnapshot]:
        """Live capacity of every pool of the federation (a few calls per account, whatever
        the number of pools), with the proxy's blackouts when it publishes them."""
        from dataclasses import replace

        from .proxy.capacity import CapacityCache

        members = self.store.list_pools(federation_id)
        with CapacityCache(self.account, ttl=0) as cache:
            snaps = cache.snapshots(members, active_tasks=active_tasks)
        blackouts = self.blackouts()
        if blackouts:
            snaps = [replace(s, blackout_until=blackouts[s.key]) if s.key in blackouts else s for s in snaps]
        return snaps

    def pools_frame(self, federation_id: str) -> "pd.DataFrame":
        """Pools with live capacity (see :func:`batchfed_lab.frames.pools_frame`)."""
        from .frames import pools_frame

        fed = self.store.get_federation(federation_id)
        return pools_frame(fed.id, self.pool_snapshots(fed.id))

    # -- jobs ------------------------------------------------------------------------
    def _check_submittable(self, fed: Federation, jobs: JobsConfig) -> None:
        for i, job in enumerate(jobs.job_specifications):
            if not fed.unique_job_ids and job.uses_dependencies:
                for t in job.task_definitions:
                    if len(t.id) > NON_UNIQUE_TASK_ID_MAX:
                        raise ConfigError(
                            f"jobs: job_specifications[{i}] task id '{t.id}' has {len(t.id)} characters; "
                            f"federation '{fed.id}' allows non-unique job ids, so task ids with dependencies "
                            f"may have at most {NON_UNIQUE_TASK_ID_MAX}"
                        )
            if fed.unique_job_ids and self.store.job_id_in_use(fed.id, job.id):
                raise ConflictError(f"job id '{job.id}' already exists in federation '{fed.id}' (unique job ids)")

    def submit(self, federation_id: str, jobs: Any, *, pool_config: Any = None, name: str | None = None) -> Submission:
        """Validate the jobs (file path, YAML text, dict or model), turn each job / job
        schedule into an action and enqueue them all at once. Invalid input enqueues nothing.
        ``name`` is the source name used in error messages (e.g. ``<cell>``)."""
        fed = self.store.get_federation(federation_id)
        cfg = _as_jobs(jobs, name)
        pool = _as_pool(pool_config)
        native = pool.pool_specification.native if pool else None
        windows = pool.pool_specification.windows if pool else False
        self._check_submittable(fed, cfg)
        new = [
            NewAction(
                kind=job.kind,
                method=ActionMethod.ADD,
                target_id=job.id,
                payload=add_payload(job, native_default=native, windows_default=windows),
            )
            for job in cfg.job_specifications
        ]
        actions = self.store.enqueue(fed.id, new)
        log.info("submitted %d action(s) to %s", len(actions), fed.id)
        return Submission(self, fed.id, actions)

    def explain(
        self, federation_id: str, jobs: Any, *, pool_config: Any = None, policy: str = "largest-fit", name: str | None = None
    ) -> list[Explanation]:
        """Dry run: for each job, the per-pool verdicts and the pool chosen now. Enqueues
        nothing. Blackouts are those the proxy publishes (none when it publishes none)."""
        fed = self.store.get_federation(federation_id)
        cfg = _as_jobs(jobs, name)
        pool = _as_pool(pool_config)
        snaps = self.pool_snapshots(fed.id)
        out = []
        for job in cfg.job_specifications:
            decision = decide(
                job.federation_constraints, summarize(job), snaps, time.time(), policy,
                native_default=pool.pool_specification.native if pool else None,
                windows_default=pool.pool_specification.windows if pool else False,
            )  # fmt: skip
            matrix = constraint_matrix(
                job.federation_constraints, summarize(job), snaps, time.time(),
                native_default=pool.pool_specification.native if pool else None,
                windows_default=pool.pool_specification.windows if pool else False,
            )  # fmt: skip
            out.append(Explanation(fed.id, job.id, job.kind, decision, tuple(snaps), tuple(matrix)))
        return out

    def explain_frame(self, federation_id: str, jobs: Any, **kwargs: Any) -> "pd.DataFrame":
        from .frames import verdicts_frame

        return verdicts_frame(self.explain(federation_id, jobs, **kwargs))

    def locations(self, federation_id: str, job_id: str | None = None, *, kind: str | None = None) -> list[Location]:
        """Placed jobs and job schedules with where they live."""
        self.store.get_federation(federation_id)
        return self.store.get_locations(federation_id, job_id, kind=kind)

    def queued(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Actions not processed yet (queued, and blocked ones holding their place), FIFO per job id."""
        self.store.get_federation(federation_id)
        return self.store.list_queued(federation_id, job_id)

    def blocked(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Blocked actions (with reason and per-pool verdicts) and failed ones (with the error)."""
        self.store.get_federation(federation_id)
        return self.store.list_actions(federation_id, target_id=job_id, states=[ActionState.BLOCKED, ActionState.FAILED])

    def actions(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Every action of the federation (or of one job id), in FIFO order per job id."""
        self.store.get_federation(federation_id)
        return self.store.list_actions(federation_id, target_id=job_id)

    def jobs_frame(
        self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None,
        queued: bool = False, blocked: bool = False,
    ) -> "pd.DataFrame":  # fmt: skip
        """``jobs list`` as a DataFrame: locations (default), queued actions, or blocked
        actions with their per-pool verdicts (see :mod:`batchfed_lab.frames`)."""
        from . import frames

        if queued and blocked:
            raise ConfigError("--queued and --blocked cannot be combined")
        if job_id and schedule_id:
            raise ConfigError("--job-id and --jobschedule-id cannot be combined")
        target = job_id or schedule_id
        kind = ActionKind.JOB_SCHEDULE if schedule_id else (ActionKind.JOB if job_id else None)

        def of_kind(actions: list[Action]) -> list[Action]:
            return [a for a in actions if kind is None or a.kind is kind]

        if queued:
            return frames.placements_frame(of_kind(self.queued(federation_id, target)))
        if blocked:
            return frames.blocked_frame(of_kind(self.blocked(federation_id, target)), self.store.list_pools(federation_id))
        return frames.locations_frame(self.locations(federation_id, target, kind=kind.value if kind else None))

    def _remove(
        self, method: ActionMethod, federation_id: str, job_ids: Iterable[str], schedule_ids: Iterable[str],
        all_jobs: bool, all_schedules: bool, force: bool,
    ) -> RemovalResult:  # fmt: skip
        self.store.get_federation(federation_id)
        targets: list[tuple[ActionKind, str]] = [(ActionKind.JOB, j) for j in job_ids]
        targets += [(ActionKind.JOB_SCHEDULE, s) for s in schedule_ids]
        if all_jobs or all_schedules:
            if targets:
                raise ConfigError("--all-jobs / --all-jobschedules cannot be combined with ids")
            for loc in self.store.get_locations(federation_id):
                if (loc.kind is ActionKind.JOB and all_jobs) or (loc.kind is ActionKind.JOB_SCHEDULE and all_schedules):
                    if (loc.kind, loc.job_id) not in targets:
                        targets.append((loc.kind, loc.job_id))  # the real ids (the original used hashes)
        elif not targets:
            raise ConfigError("name at least one --job-id or --jobschedule-id, or use --all-jobs / --all-jobschedules")
        result = RemovalResult()
        new = []
        for kind, target in targets:
            if not force and not self.store.get_locations(federation_id, target, kind=kind):
                result.skipped.append(target)
                result.warnings.append(f"{kind.value} {target} has no location in {federation_id}: skipped (use --force to enqueue anyway)")
                log.info(result.warnings[-1])
                continue
            new.append(NewAction(kind=kind, method=method, target_id=target, payload=remove_payload(force=force)))
        if new:
            result.actions = self.store.enqueue(federation_id, new)
        return result

    def terminate(self, federation_id: str, job_ids: Iterable[str] = (), *, schedule_ids: Iterable[str] = (),
                  all_jobs: bool = False, all_schedules: bool = False, force: bool = False) -> RemovalResult:  # fmt: skip
        """Enqueue terminate actions (every location of each job id)."""
        return self._remove(ActionMethod.TERMINATE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def delete(self, federation_id: str, job_ids: Iterable[str] = (), *, schedule_ids: Iterable[str] = (),
               all_jobs: bool = False, all_schedules: bool = False, force: bool = False) -> RemovalResult:  # fmt: skip
        """Enqueue delete actions (every location of each job id; locations are then forgotten)."""
        return self._remove(ActionMethod.DELETE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def zap(self, federation_id: str, unique_id: str) -> Action:
        """Drop one queued or blocked action for good; the job's next action can flow."""
        self.store.get_federation(federation_id)
        return self.store.zap(federation_id, unique_id)

    # -- tasks -----------------------------------------------------------------------
    def _job_locations(self, federation_id: str, job_id: str) -> list[Location]:
        found = self.locations(federation_id, job_id, kind="job")
        if found:
            return found
        waiting = self.queued(federation_id, job_id)
        if waiting:
            a = waiting[0]
            why = f": {a.reason}" if a.reason else ""
            raise NotFoundError(f"job '{job_id}' is not placed yet in federation '{federation_id}' ({a.state.value}{why})")
        raise NotFoundError(f"job '{job_id}' has no location in federation '{federation_id}'")

    def tasks(self, federation_id: str, job_id: str) -> list[FederatedTask]:
        """Tasks of a federation job on every pool it lives on."""
        rows = []
        for loc in self._job_locations(federation_id, job_id):
            for t in self.account(loc.batch_service_url).list_tasks(job_id):
                rows.append(FederatedTask(job_id, loc.pool_id, loc.account, loc.location, t))
        return rows

    def tasks_frame(self, federation_id: str, job_id: str) -> "pd.DataFrame":
        """Tasks of a job (see :func:`batchfed_lab.frames.tasks_frame`)."""
        from .frames import tasks_frame

        return tasks_frame(self.tasks(federation_id, job_id))

    def task_output(self, federation_id: str, job_id: str, task_id: str, stream: str = "stdout",
                    *, max_bytes: int | None = 1 << 20) -> TextOutput:  # fmt: skip
        """A task's ``stdout`` or ``stderr`` (at most ``max_bytes``), from whichever of the
        job's pools has the task."""
        if stream not in ("stdout", "stderr"):
            raise ConfigError(f"stream {stream!r}: use stdout or stderr")
        last: BatchfedError | None = None
        for loc in self._job_locations(federation_id, job_id):
            try:
                return TextOutput(self.account(loc.batch_service_url).task_output(job_id, task_id, stream, max_bytes=max_bytes))
            except BatchfedError as exc:  # the task lives on another of the job's pools
                last = exc
        raise last  # type: ignore[misc]  # _job_locations never returns an empty list

    # -- proxy and the embedded stack --------------------------------------------------
    def proxy_start(self, *, config: Any = None, standby: bool = False):  # -> tuple[ProxyProcess, bool]
        """Start a detached proxy (idempotent; ``standby`` starts one more for HA).
        Returns ``(proxy, started)``."""
        from .proxy import lifecycle

        return lifecycle.start(self.workspace, config=config, standby=standby)

    def proxy_stop(self, *, all: bool = False) -> list[str]:
        """Stop the proxy (or every proxy of the workspace); returns the stopped ids."""
        from .proxy import lifecycle

        return lifecycle.stop(self.workspace, all=all)

    def proxy_status(self) -> list[dict[str, Any]]:
        """Every proxy the workspace knows (stale records are reported, then cleaned)."""
        from .proxy import lifecycle

        return lifecycle.status(self.workspace, store=self.store)

    def proxy_status_frame(self) -> "pd.DataFrame":
        from .frames import proxies_frame

        return proxies_frame(self.proxy_status())

    def proxy_suspend(self) -> None:
        """Running proxies stop claiming actions; metadata and queues are kept."""
        self.store.set_suspended(True)

    def proxy_resume(self) -> None:
        """Running proxies pick up at once."""
        self.store.set_suspended(False)

    def proxy_logs(self, lines: int = 50) -> TextOutput:
        """The tail of the proxy log."""
        from .proxy import lifecycle

        return TextOutput(lifecycle.logs(self.workspace, lines))

    def up(self, *, config: Any = None) -> dict[str, Any]:
        """Bring the embedded stack up: localbatch, then the proxy (each idempotent).
        Returns ``{"localbatch": LocalBatchInfo, "proxy": ProxyProcess, "started": bool}``."""
        from .localbatch import control

        lb = control.start(self.workspace)
        proxy, started = self.proxy_start(config=config)
        return {"localbatch": lb, "proxy": proxy, "started": started}

    def down(self) -> dict[str, Any]:
        """Stop every proxy of the workspace, then localbatch (its task processes too)."""
        from .localbatch import control

        stopped = self.proxy_stop(all=True)
        return {"proxies": stopped, "localbatch": control.stop(self.workspace)}


def connect(workspace: str | os.PathLike[str] | Workspace | None = None) -> Client:
    """The client of a workspace (``BATCHFED_HOME`` by default, else ``~/.batchfed``)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    return Client(ws)

