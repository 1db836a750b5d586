"""The one Python API every surface uses (CLI, magics, widgets, notebooks).

``batchfed_lab.connect()`` returns a :class:`Client` bound to a workspace. It
only writes metadata and enqueues actions; the proxy does the scheduling.
Every method raises a :class:`~batchfed_lab.errors.BatchfedError` subclass with
a one-line message on bad input, and enqueues nothing in that case.

Methods come in two flavours: records (``federations``, ``pool_snapshots``,
``locations``, ``queued``, ``tasks`` …) for programs, and ``*_frame`` twins that
return the documented pandas DataFrames of :mod:`batchfed_lab.frames` for people.
What the methods return is defined in :mod:`batchfed_lab.results`. Batch, localbatch and
the proxy are reached only through their packages' entry points (``batchfed_lab.batch``,
``batchfed_lab.localbatch``, ``batchfed_lab.proxy``), never their modules.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .config import JobsConfig, PoolConfig, load_jobs, load_pool, validate_file
from .config.jobs import NON_UNIQUE_TASK_ID_MAX, JobSpecification
from .config.workspace import Workspace, default_home, open_workspace
from .errors import BatchfedError, ConfigError, ConflictError, NotFoundError
from .proxy import add_payload, remove_payload
from .results import (
    DestroyResult,
    Explanation,
    FederatedTask,
    FederationSummary,
    PoolChange,
    PoolOperation,
    RemovalResult,
    Submission,
    TextOutput,
)
from .scheduler import constraint_matrix, decide, summarize
from .scheduler.types import PoolSnapshot
from .store import Action, ActionKind, ActionMethod, ActionState, Federation, Location, NewAction, PoolMember, Store, open_store

if TYPE_CHECKING:
    import pandas as pd

    from .batch import BatchAccount, JobInfo
    from .deploy import DeployReport
    from .proxy import Acknowledgement, ProxyProcess

__all__ = ["Client", "connect", "default_home", "validate_file"]

log = logging.getLogger("batchfed.client")


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


def _os_defaults(pool_config: Any) -> dict[str, Any]:
    """The ``native`` / ``windows`` defaults a pool.yaml gives jobs whose constraints do not set them."""
    pool = _as_pool(pool_config)
    return {
        "native_default": pool.pool_specification.native if pool else None,
        "windows_default": pool.pool_specification.windows if pool else False,
    }


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

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(workspace={str(self.workspace.path)!r}, store={self.workspace.settings.store.backend!r})"

    def account(self, service_url: str) -> BatchAccount:
        from .batch import get_account

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

    def federations_frame(self, federation_ids: Iterable[str] = ()) -> pd.DataFrame:
        from .frames import federations_frame

        return federations_frame(self.describe_federations(federation_ids))

    # -- pools -----------------------------------------------------------------------
    def default_service_url(self, account: str = "local") -> str:
        """The embedded localbatch URL of ``account`` (localbatch must be running)."""
        from . import localbatch

        return localbatch.account_url(account, self.workspace)

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
        acct = self._pool_account(batch_service_url, account)
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
            match = [
                m
                for m in members
                if m.pool_id.lower() == pid.lower() and (want_url is None or m.batch_service_url.lower() == want_url)
            ]
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

        from .proxy import live_snapshots

        snaps = live_snapshots(self.store.list_pools(federation_id), self.account, active_tasks=active_tasks)
        blackouts = self.blackouts()
        if blackouts:
            snaps = [replace(s, blackout_until=blackouts[s.key]) if s.key in blackouts else s for s in snaps]
        return snaps

    def pools_frame(self, federation_id: str) -> pd.DataFrame:
        """Pools with live capacity (see :func:`batchfed_lab.frames.pools_frame`)."""
        from .frames import pools_frame

        fed = self.store.get_federation(federation_id)
        return pools_frame(fed.id, self.pool_snapshots(fed.id))

    # -- the pools of one Batch account, in a federation or not ------------------------
    def _pool_account(self, batch_service_url: str | None, account: str | None) -> BatchAccount:
        """An Azure Batch account by URL, or a localbatch account by name (default ``local``)."""
        if batch_service_url and account:
            raise ConfigError("give either a batch service URL or a localbatch account, not both")
        return self.account(batch_service_url or self.default_service_url(account or "local"))

    def account_pools(self, *, batch_service_url: str | None = None, account: str | None = None) -> list[PoolSnapshot]:
        """Every pool of a Batch account with its nodes and backlog, sorted by id."""
        return self._pool_account(batch_service_url, account).list_pools(active_tasks=True)

    def create_pool(
        self, pool_config: Any, *, batch_service_url: str | None = None, account: str | None = None, exists_ok: bool = False
    ) -> PoolOperation:
        """Create the pool a pool.yaml describes; ``changed`` is False when it existed (``exists_ok``)."""
        spec = _as_pool(pool_config).pool_specification  # type: ignore[union-attr]
        acct = self._pool_account(batch_service_url, account)
        return PoolOperation(spec.id, acct.service_url, acct.create_pool(spec, exists_ok=exists_ok))

    def delete_pool(self, pool_config: Any, *, batch_service_url: str | None = None, account: str | None = None) -> PoolOperation:
        """Start deleting the pool a pool.yaml names; ``changed`` is False when it is gone already."""
        spec = _as_pool(pool_config).pool_specification  # type: ignore[union-attr]
        acct = self._pool_account(batch_service_url, account)
        return PoolOperation(spec.id, acct.service_url, acct.delete_pool(spec.id))

    def resize_pool(
        self,
        pool_config: Any,
        *,
        batch_service_url: str | None = None,
        account: str | None = None,
        dedicated: int | None = None,
        low_priority: int | None = None,
    ) -> PoolOperation:
        """Start resizing the pool a pool.yaml names to its ``vm_count`` (or the given targets)."""
        if min(dedicated or 0, low_priority or 0) < 0:
            raise ConfigError("node counts cannot be negative")
        spec = _as_pool(pool_config).pool_specification  # type: ignore[union-attr]
        dedicated = spec.vm_count.dedicated if dedicated is None else dedicated
        low_priority = spec.vm_count.low_priority if low_priority is None else low_priority
        acct = self._pool_account(batch_service_url, account)
        acct.resize_pool(spec.id, dedicated=dedicated, low_priority=low_priority)
        return PoolOperation(spec.id, acct.service_url, True, dedicated, low_priority)

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
        defaults = _os_defaults(pool_config)
        self._check_submittable(fed, cfg)
        new = [
            NewAction(kind=job.kind, method=ActionMethod.ADD, target_id=job.id, payload=add_payload(job, **defaults))
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
        defaults = _os_defaults(pool_config)
        snaps = self.pool_snapshots(fed.id)
        out = []
        for job in cfg.job_specifications:
            need, now = summarize(job), time.time()
            decision = decide(job.federation_constraints, need, snaps, now, policy, **defaults)
            matrix = constraint_matrix(job.federation_constraints, need, snaps, now, **defaults)
            out.append(Explanation(fed.id, job.id, job.kind, decision, tuple(snaps), tuple(matrix)))
        return out

    def explain_frame(self, federation_id: str, jobs: Any, **kwargs: Any) -> pd.DataFrame:
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
        self,
        federation_id: str,
        job_id: str | None = None,
        *,
        schedule_id: str | None = None,
        queued: bool = False,
        blocked: bool = False,
        recurrences: bool = False,
    ) -> pd.DataFrame:
        """``jobs list`` as a DataFrame: locations (default), queued actions, blocked
        actions with their per-pool verdicts, or a job schedule's recurrence jobs
        (see :mod:`batchfed_lab.frames`)."""
        from . import frames

        if queued and blocked:
            raise ConfigError("--queued and --blocked cannot be combined")
        if recurrences:
            if not schedule_id or queued or blocked:
                raise ConfigError("--recurrences needs --jobschedule-id and goes without --queued / --blocked")
            return frames.recurrences_frame(schedule_id, self.recurrences(federation_id, schedule_id))
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
        self,
        method: ActionMethod,
        federation_id: str,
        job_ids: Iterable[str],
        schedule_ids: Iterable[str],
        all_jobs: bool,
        all_schedules: bool,
        force: bool,
    ) -> RemovalResult:
        self.store.get_federation(federation_id)
        targets: list[tuple[ActionKind, str]] = [(ActionKind.JOB, j) for j in job_ids]
        targets += [(ActionKind.JOB_SCHEDULE, s) for s in schedule_ids]
        if all_jobs or all_schedules:
            if targets:
                raise ConfigError("--all-jobs / --all-jobschedules cannot be combined with ids")
            for loc in self.store.get_locations(federation_id):
                wanted = (loc.kind is ActionKind.JOB and all_jobs) or (loc.kind is ActionKind.JOB_SCHEDULE and all_schedules)
                if wanted and (loc.kind, loc.job_id) not in targets:
                    targets.append((loc.kind, loc.job_id))  # the ids the user knows, never hashes of them
        elif not targets:
            raise ConfigError("name at least one --job-id or --jobschedule-id, or use --all-jobs / --all-jobschedules")
        result = RemovalResult()
        new = []
        for kind, target in targets:
            if not force and not self.store.get_locations(federation_id, target, kind=kind):
                result.skipped.append(target)
                result.warnings.append(
                    f"{kind.value} {target} has no location in {federation_id}: skipped (use --force to enqueue anyway)"
                )
                log.info(result.warnings[-1])
                continue
            new.append(NewAction(kind=kind, method=method, target_id=target, payload=remove_payload(force=force)))
        if new:
            result.actions = self.store.enqueue(federation_id, new)
        return result

    def terminate(
        self,
        federation_id: str,
        job_ids: Iterable[str] = (),
        *,
        schedule_ids: Iterable[str] = (),
        all_jobs: bool = False,
        all_schedules: bool = False,
        force: bool = False,
    ) -> RemovalResult:
        """Enqueue terminate actions (every location of each job id)."""
        return self._remove(ActionMethod.TERMINATE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def delete(
        self,
        federation_id: str,
        job_ids: Iterable[str] = (),
        *,
        schedule_ids: Iterable[str] = (),
        all_jobs: bool = False,
        all_schedules: bool = False,
        force: bool = False,
    ) -> RemovalResult:
        """Enqueue delete actions (every location of each job id; locations are then forgotten)."""
        return self._remove(ActionMethod.DELETE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def zap(self, federation_id: str, unique_id: str) -> Action:
        """Drop one queued or blocked action for good; the job's next action can flow."""
        self.store.get_federation(federation_id)
        return self.store.zap(federation_id, unique_id)

    # -- tasks -----------------------------------------------------------------------
    def _job_locations(self, federation_id: str, job_id: str) -> list[Location]:
        # a recurrence's job: Batch names it <schedule>:job-<n> and runs it on the schedule's pool
        schedule_id, sep, n = job_id.rpartition(":job-")
        if sep and schedule_id and n.isdigit():
            found = self.locations(federation_id, schedule_id, kind="job_schedule")
            if found:
                return found
        found = self.locations(federation_id, job_id, kind="job")
        if found:
            return found
        waiting = self.queued(federation_id, job_id)
        if waiting:
            a = waiting[0]
            why = f": {a.reason}" if a.reason else ""
            raise NotFoundError(f"job '{job_id}' is not placed yet in federation '{federation_id}' ({a.state.value}{why})")
        raise NotFoundError(f"job '{job_id}' has no location in federation '{federation_id}'")

    def _jobs_of(self, federation_id: str, job_id: str | None, schedule_id: str | None) -> list[tuple[str, Location]]:
        """(job id, where it lives) of one job, or of every recurrence job of a schedule (newest first)."""
        if bool(job_id) == bool(schedule_id):
            raise ConfigError("name one of --job-id or --jobschedule-id")
        if job_id:
            return [(job_id, loc) for loc in self._job_locations(federation_id, job_id)]
        return [(job.id, loc) for job, loc in self.recurrences(federation_id, str(schedule_id))]

    def recurrences(self, federation_id: str, schedule_id: str) -> list[tuple[JobInfo, Location]]:
        """The jobs a placed job schedule's recurrences created, newest first, with where they run."""
        found = self.locations(federation_id, schedule_id, kind="job_schedule")
        if not found:
            raise NotFoundError(f"job schedule '{schedule_id}' has no location in federation '{federation_id}'")
        jobs = [(j, loc) for loc in found for j in self.account(loc.batch_service_url).list_jobs_from_schedule(loc.job_id)]
        return sorted(jobs, key=lambda j: j[0].creation_time.timestamp() if j[0].creation_time else 0.0, reverse=True)

    def tasks(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> list[FederatedTask]:
        """Tasks of a federation job on every pool it lives on; a recurrence's job id
        (``<schedule>:job-<n>``) works too, and ``schedule_id`` gives those of every recurrence."""
        rows = []
        for jid, loc in self._jobs_of(federation_id, job_id, schedule_id):
            for t in self.account(loc.batch_service_url).list_tasks(jid):
                rows.append(FederatedTask(jid, loc.pool_id, loc.account, loc.location, t))
        return rows

    def tasks_frame(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> pd.DataFrame:
        """Tasks of a job or of a schedule's recurrences (see :func:`batchfed_lab.frames.tasks_frame`)."""
        from .frames import tasks_frame

        return tasks_frame(self.tasks(federation_id, job_id, schedule_id=schedule_id))

    def task_output(
        self,
        federation_id: str,
        job_id: str | None,
        task_id: str,
        stream: str = "stdout",
        *,
        schedule_id: str | None = None,
        max_bytes: int | None = 1 << 20,
    ) -> TextOutput:
        """A task's ``stdout`` or ``stderr`` (at most ``max_bytes``), from whichever of the
        job's pools has the task; with ``schedule_id``, from the newest recurrence that has it."""
        if stream not in ("stdout", "stderr"):
            raise ConfigError(f"stream {stream!r}: use stdout or stderr")
        last: BatchfedError | None = None
        for jid, loc in self._jobs_of(federation_id, job_id, schedule_id):
            try:
                return TextOutput(self.account(loc.batch_service_url).task_output(jid, task_id, stream, max_bytes=max_bytes))
            except BatchfedError as exc:  # the task lives on another of the job's pools
                last = exc
        if last is None:
            raise NotFoundError(f"job schedule '{schedule_id}' has no recurrence job yet")
        raise last

    # -- proxy and the embedded stack --------------------------------------------------
    def proxy_start(self, *, config: Any = None, standby: bool = False) -> tuple[ProxyProcess, bool]:
        """Start a detached proxy (idempotent; ``standby`` starts one more for HA).
        Returns ``(proxy, started)``."""
        from . import proxy

        return proxy.start(self.workspace, config=config, standby=standby)

    def proxy_stop(self, *, all: bool = False, proxy_id: str | None = None, timeout: float = 40.0) -> list[str]:
        """Stop a proxy wherever it runs; returns the stopped ids. One of this machine is
        signalled; one elsewhere gets a stop request through the store and is waited for
        (``timeout``). Without ``proxy_id``: the first local proxy, else the remote leader;
        ``all``: every live proxy sharing the store."""
        from . import proxy

        return proxy.stop_anywhere(self.workspace, self.store, all=all, proxy_id=proxy_id, timeout=timeout)

    def proxy_status(self) -> list[dict[str, Any]]:
        """Every proxy sharing the store, wherever it runs, from its heartbeat (a record
        whose heartbeat is older than its lease is reported stale, then cleaned)."""
        from . import proxy

        return proxy.status(self.workspace, store=self.store)

    def proxy_status_frame(self) -> pd.DataFrame:
        from .frames import proxies_frame

        return proxies_frame(self.proxy_status())

    def proxy_suspend(self, *, timeout: float = 10.0) -> Acknowledgement:
        """Running proxies, wherever they run, stop claiming actions (metadata and queues are
        kept); waits until each reports it (``timeout``; the flag holds in the store regardless)."""
        from . import proxy

        return proxy.suspend(self.workspace, self.store, True, timeout=timeout)

    def proxy_resume(self, *, timeout: float = 10.0) -> Acknowledgement:
        """Running proxies pick up at once; waits until each reports it (``timeout``)."""
        from . import proxy

        return proxy.suspend(self.workspace, self.store, False, timeout=timeout)

    def proxy_logs(self, lines: int = 50, *, proxy_id: str | None = None) -> TextOutput:
        """The tail of the proxy log: this machine's file, or a remote proxy's log blobs."""
        from . import proxy

        return TextOutput(proxy.log_tail(self.workspace, lines, store=self.store, proxy_id=proxy_id))

    def proxy_logs_follow(self, lines: int = 50, *, proxy_id: str | None = None, poll: float = 1.0) -> Iterator[str]:
        """The tail, then the proxy's new log text as it is written, until that proxy stops."""
        from . import proxy

        return proxy.follow_logs(self.workspace, lines, store=self.store, proxy_id=proxy_id, poll=poll)

    def up(self, *, config: Any = None) -> dict[str, Any]:
        """Bring the embedded stack up: localbatch, then the proxy (each idempotent).
        Returns ``{"localbatch": LocalBatchInfo, "proxy": ProxyProcess, "started": bool}``."""
        from . import localbatch

        lb = localbatch.start(self.workspace)
        proxy, started = self.proxy_start(config=config)
        return {"localbatch": lb, "proxy": proxy, "started": started}

    def down(self) -> dict[str, Any]:
        """Stop every proxy of the workspace, then localbatch (its task processes too)."""
        from . import localbatch, proxy

        stopped = proxy.stop(self.workspace, all=True)  # this machine's: a proxy elsewhere keeps running
        return {"proxies": stopped, "localbatch": localbatch.stop(self.workspace)}

    # -- the proxy on Azure ------------------------------------------------------------
    def proxy_create(self, *, config: Any, standby: int = 0, what_if: bool = False, azure: Any = None) -> DeployReport:
        """Deploy the proxy to Azure Container Instances (a leader and ``standby`` standbys)
        from federation.yaml; ``what_if`` only shows the template, parameters and role
        assignments (and runs ARM what-if when an Azure login is at hand). ``azure``: a
        factory of :class:`~batchfed_lab.deploy.AzureApi` (tests pass a fake)."""
        from . import deploy

        return deploy.create(self.workspace, self.store, config, standby=standby, what_if=what_if, azure=azure)

    def proxy_destroy(
        self, *, config: Any, standby: int = 0, what_if: bool = False, purge: bool = False, azure: Any = None
    ) -> DeployReport:
        """Remove the deployed proxies' role assignments and container groups; federation
        data stays unless ``purge``. ``what_if`` lists what would go."""
        from . import deploy

        return deploy.destroy(self.workspace, self.store, config, standby=standby, what_if=what_if, purge=purge, azure=azure)


def connect(workspace: str | os.PathLike[str] | Workspace | None = None) -> Client:
    """The client of a workspace (``BATCHFED_HOME`` by default, else ``~/.batchfed``)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    return Client(ws)
