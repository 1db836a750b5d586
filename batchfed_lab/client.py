"""The one Python API every surface uses (CLI, magics, widgets, notebooks).

``batchfed_lab.connect()`` returns a :class:`Client` bound to a workspace. It
only writes metadata and enqueues actions; the proxy does the scheduling.
Every method raises a :class:`~batchfed_lab.errors.BatchfedError` subclass with
a one-line message on bad input, and enqueues nothing in that case.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import JobsConfig, PoolConfig, load_jobs, load_pool
from .config.jobs import NON_UNIQUE_TASK_ID_MAX, JobSpecification
from .config.workspace import Workspace, open_workspace
from .errors import BatchfedError, ConfigError, ConflictError, NotFoundError, SchedulingError
from .proxy.payload import add_payload, remove_payload
from .scheduler import decide, summarize
from .scheduler.types import Decision, PoolSnapshot
from .store import Action, ActionKind, ActionMethod, ActionState, Federation, Location, NewAction, PoolMember, Store, open_store

log = logging.getLogger("batchfed.client")

TERMINAL = {ActionState.PLACED, ActionState.DONE, ActionState.FAILED, ActionState.ZAPPED}


class SubmissionError(BatchfedError):
    """A submission ended badly (failed, zapped) or is still blocked when waited on."""


@dataclass(frozen=True)
class Explanation:
    """A dry run for one job: the per-pool verdicts and the pool that would be chosen now."""

    federation_id: str
    job_id: str
    kind: str
    decision: Decision

    @property
    def pool_id(self) -> str | None:
        return self.decision.pool.rsplit("#", 1)[-1] if self.decision.pool else None


@dataclass
class RemovalResult:
    """Actions enqueued by terminate / delete, and targets skipped (no location)."""

    actions: list[Action] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def unique_ids(self) -> list[str]:
        return [a.id for a in self.actions]


class Submission:
    """Handle on the actions one submit enqueued."""

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

    def status(self):  # -> pandas.DataFrame
        from .frames import placements_frame

        return placements_frame(self.actions())

    def done(self) -> bool:
        return all(a.state in TERMINAL for a in self.actions())

    def wait(self, timeout: float = 60.0, poll: float = 0.05) -> list[Action]:
        """Wait until every action is placed (or done). Raises :class:`SubmissionError` when
        one failed or was zapped, or when some are still queued or blocked at ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.actions()
            bad = [a for a in current if a.state in (ActionState.FAILED, ActionState.ZAPPED)]
            if bad:
                a = bad[0]
                raise SubmissionError(f"{a.kind.value} {a.target_id} ({a.id}) {a.state.value}: {a.error or a.reason or 'no reason recorded'}")
            if all(a.state in TERMINAL for a in current):
                return current
            if time.monotonic() >= deadline:
                waiting = [a for a in current if a.state not in TERMINAL]
                a = waiting[0]
                why = f": {a.reason}" if a.state is ActionState.BLOCKED and a.reason else ""
                raise SubmissionError(
                    f"{len(waiting)} of {len(current)} action(s) not placed after {timeout:g}s; "
                    f"{a.kind.value} {a.target_id} is {a.state.value}{why}"
                )
            time.sleep(poll)

    def __repr__(self) -> str:
        return f"Submission({self.federation_id!r}, {len(self._actions)} action(s): {', '.join(self.job_ids)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        frame = self.status()
        return {"text/plain": f"{self!r}\n{frame.to_string(index=False)}", "text/html": frame.to_html(index=False)}


def _as_jobs(jobs: Any) -> JobsConfig:
    if isinstance(jobs, JobsConfig):
        return jobs
    if isinstance(jobs, JobSpecification):
        return JobsConfig(job_specifications=(jobs,))
    return load_jobs(jobs if not isinstance(jobs, Path) else jobs)


def _as_pool(pool_config: Any) -> PoolConfig | None:
    if pool_config is None or isinstance(pool_config, PoolConfig):
        return pool_config
    return load_pool(pool_config)


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

    def account(self, service_url: str):  # -> BatchAccount
        from .batch.adapter import get_account

        return get_account(service_url, workspace=self.workspace.path)

    # -- federations -----------------------------------------------------------------
    def create_federation(self, federation_id: str, *, unique_job_ids: bool = True, force: bool = False) -> Federation:
        return self.store.create_federation(federation_id, unique_job_ids=unique_job_ids, force=force)

    def destroy_federation(self, federation_id: str):
        """Remove the federation and all its metadata (never deletes Batch jobs)."""
        return self.store.destroy_federation(federation_id)

    def federations(self) -> list[Federation]:
        return self.store.list_federations()

    def federation(self, federation_id: str) -> Federation:
        return self.store.get_federation(federation_id)

    # -- pools -----------------------------------------------------------------------
    def default_service_url(self, account: str = "local") -> str:
        """The embedded localbatch account URL (localbatch must be running)."""
        from .localbatch import control

        return control.account_url(account, self.workspace)

    def add_pools(
        self,
        federation_id: str,
        *,
        pool_config: Any = None,
        pool_ids: Sequence[str] = (),
        batch_service_url: str | None = None,
    ) -> list[PoolMember]:
        """Add pools by pool.yaml (its id) or by ids + a service URL. Account and region come
        from the URL (Azure) or from the pool itself (localbatch's ``batchfed_location``)."""
        self.store.get_federation(federation_id)  # unknown federation: clear error first
        ids = list(pool_ids)
        if pool_config is not None:
            if ids:
                raise ConfigError("give either a pool config or pool ids, not both")
            ids = [_as_pool(pool_config).pool_specification.id]  # type: ignore[union-attr]
        if not ids:
            raise ConfigError("no pool given: use a pool config or one or more pool ids")
        url = batch_service_url or self.default_service_url()
        account = self.account(url)
        snaps = account.snapshot_pools(ids, active_tasks=False)
        found = {k.lower(): v for k, v in snaps.items()}
        members = []
        for pid in ids:
            snap = found.get(pid.lower())
            if snap is None:
                raise NotFoundError(f"pool '{pid}' does not exist at {url}")
            members.append(
                PoolMember(federation_id, account.service_url, snap.pool_id, account=account.account, location=snap.facts.location)
            )
        return self.store.add_pools(federation_id, members)

    def remove_pools(self, federation_id: str, pool_ids: Sequence[str] = (), *, all: bool = False,
                     batch_service_url: str | None = None) -> list[PoolMember]:  # fmt: skip
        if all and pool_ids:
            raise ConfigError("--all cannot be combined with pool ids")
        if not all and not pool_ids:
            raise ConfigError("name the pools to remove, or use --all")
        if all:
            return self.store.remove_pools(federation_id, None)
        members = self.store.list_pools(federation_id)
        chosen = []
        for pid in pool_ids:
            match = [m for m in members if m.pool_id.lower() == pid.lower()
                     and (batch_service_url is None or m.batch_service_url.lower() == batch_service_url.rstrip("/").lower())]  # fmt: skip
            if not match:
                raise NotFoundError(f"pool '{pid}' is not in federation '{federation_id}'")
            chosen += [(m.batch_service_url, m.pool_id) for m in match]
        return self.store.remove_pools(federation_id, chosen)

    def pools(self, federation_id: str) -> list[PoolMember]:
        return self.store.list_pools(federation_id)

    def pool_snapshots(self, federation_id: str, *, active_tasks: bool = True) -> list[PoolSnapshot]:
        """Live capacity of every pool of the federation (one node-count call per account)."""
        from .proxy.capacity import CapacityCache

        members = self.store.list_pools(federation_id)
        return CapacityCache(self.account, ttl=0).snapshots(members, active_tasks=active_tasks)

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

    def submit(self, federation_id: str, jobs: Any, *, pool_config: Any = None) -> Submission:
        """Validate the jobs (file path, YAML text, dict or model), turn each job / job
        schedule into an action and enqueue them all at once. Invalid input enqueues nothing."""
        cfg = _as_jobs(jobs)
        pool = _as_pool(pool_config)
        native = pool.pool_specification.native if pool else None
        windows = pool.pool_specification.windows if pool else False
        fed = self.store.get_federation(federation_id)
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

    def explain(self, federation_id: str, jobs: Any, *, pool_config: Any = None, policy: str = "largest-fit") -> list[Explanation]:
        """Dry run: for each job, the per-pool verdicts and the pool chosen now. Enqueues nothing.
        (The proxy's recent-placement blackouts are not visible here.)"""
        cfg = _as_jobs(jobs)
        pool = _as_pool(pool_config)
        self.store.get_federation(federation_id)
        snaps = self.pool_snapshots(federation_id)
        out = []
        for job in cfg.job_specifications:
            decision = decide(
                job.federation_constraints, summarize(job), snaps, time.time(), policy,
                native_default=pool.pool_specification.native if pool else None,
                windows_default=pool.pool_specification.windows if pool else False,
            )  # fmt: skip
            out.append(Explanation(federation_id, job.id, job.kind, decision))
        return out

    def locations(self, federation_id: str, job_id: str | None = None, *, kind: str | None = None) -> list[Location]:
        """Placed jobs and job schedules with where they live."""
        self.store.get_federation(federation_id)
        return self.store.get_locations(federation_id, job_id, kind=kind)

    def queued(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Actions not processed yet, FIFO per job id."""
        self.store.get_federation(federation_id)
        return [a for a in self.store.list_queued(federation_id, job_id) if a.state is ActionState.QUEUED]

    def blocked(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Blocked actions (with reason and per-pool verdicts) and failed ones (with the error)."""
        self.store.get_federation(federation_id)
        return self.store.list_actions(federation_id, target_id=job_id, states=[ActionState.BLOCKED, ActionState.FAILED])

    def actions(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        self.store.get_federation(federation_id)
        return self.store.list_actions(federation_id, target_id=job_id)

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
                log.warning("%s %s has no location in %s: skipped (use --force to enqueue anyway)", kind.value, target, federation_id)
                continue
            new.append(NewAction(kind=kind, method=method, target_id=target, payload=remove_payload(force=force)))
        if new:
            result.actions = self.store.enqueue(federation_id, new)
        return result

    def terminate(self, federation_id: str, job_ids: Iterable[str] = (), *, schedule_ids: Iterable[str] = (),
                  all_jobs: bool = False, all_schedules: bool = False, force: bool = False) -> RemovalResult:  # fmt: skip
        return self._remove(ActionMethod.TERMINATE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def delete(self, federation_id: str, job_ids: Iterable[str] = (), *, schedule_ids: Iterable[str] = (),
               all_jobs: bool = False, all_schedules: bool = False, force: bool = False) -> RemovalResult:  # fmt: skip
        return self._remove(ActionMethod.DELETE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def zap(self, federation_id: str, unique_id: str) -> Action:
        """Drop one queued or blocked action for good; the job's next action can flow."""
        self.store.get_federation(federation_id)
        return self.store.zap(federation_id, unique_id)

    def tasks(self, federation_id: str, job_id: str) -> list[dict[str, Any]]:
        """Tasks of a federation job on every pool it lives on."""
        rows = []
        for loc in self.locations(federation_id, job_id, kind="job"):
            account = self.account(loc.batch_service_url)
            for t in account.list_tasks(job_id):
                rows.append({"pool_id": loc.pool_id, "account": loc.account, "location": loc.location, "task": t})
        return rows

    def task_output(self, federation_id: str, job_id: str, task_id: str, stream: str = "stdout",
                    *, max_bytes: int | None = 1 << 20) -> str:  # fmt: skip
        if stream not in ("stdout", "stderr"):
            raise ConfigError(f"stream {stream!r}: use stdout or stderr")
        last: BatchfedError | None = None
        for loc in self.locations(federation_id, job_id, kind="job"):
            try:
                return self.account(loc.batch_service_url).task_output(job_id, task_id, stream, max_bytes=max_bytes)
            except BatchfedError as exc:  # the task lives on another of the job's pools
                last = exc
        raise last or NotFoundError(f"job '{job_id}' has no location in federation '{federation_id}'")

    # -- proxy and the embedded stack --------------------------------------------------
    def proxy_start(self, *, config: Any = None, standby: bool = False):
        from .proxy import lifecycle

        return lifecycle.start(self.workspace, config=config, standby=standby)

    def proxy_stop(self, *, all: bool = False) -> list[str]:
        from .proxy import lifecycle

        return lifecycle.stop(self.workspace, all=all)

    def proxy_status(self) -> list[dict[str, Any]]:
        from .proxy import lifecycle

        return lifecycle.status(self.workspace, store=self.store)

    def proxy_suspend(self) -> None:
        self.store.set_suspended(True)

    def proxy_resume(self) -> None:
        self.store.set_suspended(False)

    def proxy_logs(self, lines: int = 50) -> str:
        from .proxy import lifecycle

        return lifecycle.logs(self.workspace, lines)

    def up(self, *, config: Any = None) -> dict[str, Any]:
        """Bring the embedded stack up: localbatch, then the proxy (each idempotent)."""
        from .localbatch import control

        lb = control.start(self.workspace)
        proxy, _ = self.proxy_start(config=config)
        return {"localbatch": lb, "proxy": proxy}

    def down(self) -> dict[str, Any]:
        """Stop every proxy of the workspace, then localbatch (its task processes too)."""
        from .localbatch import control

        stopped = self.proxy_stop(all=True)
        return {"proxies": stopped, "localbatch": control.stop(self.workspace)}


def connect(workspace: str | os.PathLike[str] | Workspace | None = None) -> Client:
    """The client of a workspace (``BATCHFED_HOME`` by default)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    return Client(ws)
