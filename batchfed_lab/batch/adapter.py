"""The one adapter over ``azure.batch.BatchClient`` (15.x), for Azure and localbatch alike.

:class:`BatchAccount` wraps one client per Batch account. Every method translates SDK
errors into :mod:`batchfed_lab.errors` (see :mod:`.errors`), returns plain records (never
SDK models) and is safe to call from several threads at once: the client's transport keeps a
thread-safe connection pool, and the adapter's own state (the request counter) is under a
lock. :func:`get_account` caches one ``BatchAccount`` per service URL for the whole process.

The three calls the proxy makes per placement (create job, add a task collection, list a
job's task ids) go through the same client's pipeline without the generated operations
(:meth:`BatchAccount._rest`): the request bodies are still SDK models, written by the SDK's
encoder, but the answers are read as JSON, since building models for them cost more CPU than
the round trip. The pool listings behind :meth:`BatchAccount.snapshot_pools` (the proxy's
capacity refresh) are read the same way (see :mod:`.pools`). Loopback (localbatch) accounts
also get a lean transport (:mod:`.transport`) and only the policies a local service needs
(retries, the signature).

Long-running operations (terminate/delete job, job schedule and pool, resize) are sent
without the SDK's ``LROPoller``: ``begin_*`` would start a daemon thread per call that polls
the service every few seconds. The adapter calls the SDK's request method underneath
(``_<op>_internal``, stable within the pinned ``azure-batch==15.1.0``) and returns as soon as
the service accepted the request; if a future SDK drops that method, ``begin_*`` is used and
its poller is dropped.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.batch._patch import BatchSharedKeyAuthPolicy  # what BatchClient itself signs with
from azure.batch._utils.model_base import SdkJSONEncoder  # how the SDK writes its request bodies
from azure.batch.models._models import BatchJobTerminateOptions  # not re-exported in 15.1.0
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline import policies
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest

from ..config.jobs import TaskDefinition
from ..config.pool import PoolSpecification
from ..errors import BatchError, BatchNotFoundError
from ..scheduler.types import PoolSnapshot
from ._util import enum_text
from .credentials import ResolvedCredential, normalize_service_url, parse_service_url, resolve_credential
from .errors import batch_call, error_code, translate
from .jobs import (
    JOB_SELECT,
    JobCreateResult,
    JobInfo,
    JobScheduleCreateResult,
    JobScheduleInfo,
    JobSettings,
    job_create_options,
    job_info,
    job_schedule_create_options,
    job_schedule_info,
)
from .pools import POOL_SELECT, as_timedelta, pool_create_options, snapshot
from .tasks import (
    TASK_SELECT,
    TaskAddReport,
    TaskCounts,
    TaskInfo,
    add_task_collection,
    task_create_options,
    task_info,
)
from .transport import LoopbackTransport

__all__ = ["AutoscaleEvaluation", "BatchAccount", "RetrySettings", "close_accounts", "get_account"]

# "Already in the wanted end state" answers: not errors for terminate/delete (SPEC §5).
_TERMINATED_JOB = frozenset({"JobNotFound", "JobCompleted", "JobBeingTerminated", "JobBeingDeleted"})
_DELETED_JOB = frozenset({"JobNotFound", "JobBeingDeleted"})
_TERMINATED_SCHEDULE = frozenset(
    {"JobScheduleNotFound", "JobScheduleCompleted", "JobScheduleBeingTerminated", "JobScheduleBeingDeleted"}
)
_DELETED_SCHEDULE = frozenset({"JobScheduleNotFound", "JobScheduleBeingDeleted"})
_DELETED_POOL = frozenset({"PoolNotFound", "PoolBeingDeleted"})
_NOT_OFFERED = frozenset({400, 404, 405, 501})  # a service without an optional API (localbatch)


@dataclass(frozen=True)
class RetrySettings:
    """azure-core pipeline retry/timeout settings used for every client.

    Retried: connection errors (``retry_connect``), read errors (``retry_read``) and statuses
    408/429/500/502/503/504 (``retry_status``; azure-core retries POST only on 500/503/504),
    with exponential backoff ``backoff_factor * 2**n`` capped at ``backoff_max`` and
    ``Retry-After`` honoured. Defaults bound a dead service to a few seconds instead of the
    SDK's minutes; 4xx answers (auth, not found, conflict) are never retried.
    """

    total: int = 4
    connect: int = 3
    read: int = 2
    status: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    connection_timeout: float = 10.0
    read_timeout: float = 60.0

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.total,
            "retry_connect": self.connect,
            "retry_read": self.read,
            "retry_status": self.status,
            "retry_backoff_factor": self.backoff_factor,
            "retry_backoff_max": self.backoff_max,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }


# Batch REST collections whose next path segment is an id (for the request counter's routes)
_ID_AFTER = frozenset({"pools", "jobs", "jobschedules", "tasks", "nodes", "subtasks", "applications"})


class _RequestCounter(SansIOHTTPPolicy):
    """Counts requests by route (``GET /jobs/{id}/taskcounts``): one per SDK call or page.

    Installed as a per-call policy, so a request the retry policy repeats counts once.
    """

    def __init__(self, base_path: str):
        super().__init__()
        self._base = base_path.rstrip("/")
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def route(self, method: str, url: str) -> str:
        path = urlsplit(url).path
        if self._base and path.startswith(self._base):
            path = path[len(self._base) :]
        parts = [p for p in path.split("/") if p]
        out, after_collection = [], False
        for part in parts:
            if after_collection:
                out.append("{id}")
                after_collection = False
            elif part == "files":
                out.append("files/{path}")
                break
            else:
                out.append(part)
                after_collection = part in _ID_AFTER
        return f"{method} /" + "/".join(out)

    def on_request(self, request: Any) -> None:
        key = self.route(request.http_request.method, request.http_request.url)
        with self._lock:
            self.counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()


def _segment(value: str) -> str:
    """An id as one URL path segment (as the SDK quotes path parameters)."""
    return quote(value, safe="")


# client_options that leave the lean loopback policy list in place (see _loopback_policies)
_LEAN_COMPATIBLE = frozenset({"transport", "per_call_policies", "per_retry_policies", "use_env_settings"})


def _loopback_policies(credential: Any, retry: RetrySettings) -> list[Any]:
    """The policies a loopback service needs: retries and the shared-key signature. Not the
    request-id, proxy, redirect, tracing and HTTP-logging policies of the default list: none
    matters to a local service (it names each answer with its own request id), and on the
    proxy's hot path each costs CPU on every call. (The request counter and the SDK's error
    policy are per-call policies, which azure-core puts in front of this list.)"""
    kwargs = retry.client_kwargs()
    return [
        policies.RetryPolicy(**{k: v for k, v in kwargs.items() if k.startswith("retry_")}),
        BatchSharedKeyAuthPolicy(credential),
    ]


@dataclass(frozen=True)
class AutoscaleEvaluation:
    """The result of evaluating an autoscale formula: ``$Name`` → value, or the error."""

    results: dict[str, str]
    error: str | None = None
    timestamp: datetime | None = None


def _parse_autoscale_results(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


class BatchAccount:
    """One Batch account (Azure or localbatch) behind one SDK client.

    ``credential`` may be a :class:`~.credentials.ResolvedCredential`, an azure credential
    object, or ``None`` (resolved from the URL; see :mod:`.credentials`). ``key`` is a
    shared key given directly. ``client_options`` go to ``BatchClient`` as they are
    (e.g. ``per_call_policies``, ``transport``, ``logging_enable``); on a loopback account,
    any beyond ``transport``, ``per_call_policies``, ``per_retry_policies`` and
    ``use_env_settings`` also bring back azure-core's default policy list, which reads them.
    """

    def __init__(
        self,
        service_url: str,
        credential: Any = None,
        *,
        key: str | None = None,
        workspace: str | os.PathLike[str] | None = None,
        retry: RetrySettings | None = None,
        client_options: Mapping[str, Any] | None = None,
    ):
        self.service_url = normalize_service_url(service_url)
        self.account, self.region, self.is_local = parse_service_url(self.service_url)
        self._credential: ResolvedCredential = resolve_credential(
            self.service_url, key=key, credential=credential, workspace=workspace
        )
        self.retry = retry or RetrySettings()
        self._counter = _RequestCounter(urlsplit(self.service_url).path)
        options = {**self.retry.client_kwargs(), **(client_options or {})}
        # a fresh list: BatchClient appends its own exception policy to the one it is given
        options["per_call_policies"] = [self._counter, *options.get("per_call_policies", ())]
        if self.is_local:
            # loopback needs no proxy, .netrc or TLS: a lean transport (see .transport)
            options.setdefault("use_env_settings", False)
            options.setdefault(
                "transport",
                LoopbackTransport(connection_timeout=self.retry.connection_timeout, read_timeout=self.retry.read_timeout),
            )
            if self._credential.kind == "shared_key" and set(client_options or ()) <= _LEAN_COMPATIBLE:
                # options that shape the policies (retries, headers, hooks, network logging)
                # keep azure-core's default list, which honours them
                options["policies"] = _loopback_policies(self._credential.credential, self.retry)
        self._client = BatchClient(endpoint=self.service_url, credential=self._credential.credential, **options)

    def __repr__(self) -> str:
        return f"BatchAccount({self.service_url!r}, credential={self._credential})"

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def credential_source(self) -> str:
        return str(self._credential)

    @property
    def requests(self) -> dict[str, int]:
        """HTTP requests sent so far, by route (a copy)."""
        return self._counter.snapshot()

    def reset_requests(self) -> None:
        self._counter.clear()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "BatchAccount":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _what(self, text: str) -> str:
        return f"{self.account}: {text}"

    def _rest(self, method: str, target: str, what: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Any:
        """One REST call through the client's own pipeline (retries, signing, the SDK's error
        policy), without a generated operation: for the proxy's per-placement calls and its
        capacity listings, where building and reading SDK models costs more CPU than the call.

        ``target`` is a quoted path under the account or a service link (``odata.nextLink``);
        ``body`` (SDK models or plain JSON) is written as the SDK writes it. Returns the JSON
        answer (``None`` when empty); error answers raise as they do from the SDK."""
        if target.startswith("/"):
            url = self.service_url + target
        else:
            # a link's query goes on as the service wrote it (still encoded: azure-core adds
            # query values as they are), only its api-version replaced by ours
            link = urlsplit(target)
            kept = [p for p in link.query.split("&") if p and p.partition("=")[0].lower() != "api-version"]
            url = link._replace(query="&".join(kept), fragment="").geturl()
        query = {**(params or {}), "api-version": self._client._config.api_version}  # the version our models are for
        headers = {"accept": "application/json"}
        content = None
        if body is not None:
            headers["content-type"] = "application/json; odata=minimalmetadata"
            content = json.dumps(body, cls=SdkJSONEncoder, exclude_readonly=True)
        # the generated client's send_request deep-copies the request and formats its URL again
        # for every call; this one is built once and absolute, so it goes to the pipeline as is
        response = self._client._client.send_request(HttpRequest(method, url, params=query, headers=headers, content=content))
        if not response.content:
            return None
        try:
            # Batch answers JSON in UTF-8: loads reads the bytes, without the response's
            # charset sniffing and text copy
            return json.loads(response.content)
        except ValueError:
            raise BatchError(f"{what}: the service answered HTTP {response.status_code} with a body that is not JSON") from None

    def _pages(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The items of a listing (:meth:`_rest`), page after page by ``odata.nextLink``."""
        page = self._rest("GET", path, what, params=params)
        while True:
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise BatchError(f"{what}: the service's answer has no list of items")
            yield from (item for item in page["value"] if isinstance(item, dict))
            link = page.get("odata.nextLink")
            if not link:
                return
            page = self._rest("GET", link, what)

    def _nowait(self, op: str, *args: Any, **kwargs: Any) -> None:
        """Send a long-running operation's request without starting a poller thread."""
        internal = getattr(self._client, f"_{op}_internal", None)
        if internal is not None:
            internal(*args, **kwargs)
        else:  # pragma: no cover - only with an SDK other than the pinned one
            getattr(self._client, f"begin_{op}")(*args, polling_interval=3600, **kwargs)

    def _idempotent(self, what: str, done_codes: frozenset[str], op: str, *args: Any, **kwargs: Any) -> bool:
        """Run ``op``; True if it was sent, False if the target was already in the end state."""
        try:
            self._nowait(op, *args, **kwargs)
            return True
        except HttpResponseError as exc:
            if error_code(exc) in done_codes:
                return False
            raise translate(exc, self._what(what)) from exc
        except AzureError as exc:
            raise translate(exc, self._what(what)) from exc

    # -- pools -------------------------------------------------------------------------------
    def _active_task_counts(self, pool_ids: Iterable[str]) -> dict[str, int]:
        """Active tasks per pool: one ``list_jobs`` (active jobs of the account, grouped here by
        pool) + one ``get_job_task_counts`` per active job on those pools, up to 8 at once.
        The original listed jobs once *per pool*; this lists once per account."""
        wanted = {p.lower(): 0 for p in pool_ids}
        if not wanted:
            return {}
        with batch_call(self._what("list active jobs")):
            jobs = list(self._client.list_jobs(filter="state eq 'active'", select=["id", "state", "poolInfo", "executionInfo"]))
        targets: list[tuple[str, str]] = []
        for job in jobs:
            info = job_info(job)
            if info.state == "active" and info.pool_id and info.pool_id.lower() in wanted:
                targets.append((info.id, info.pool_id.lower()))

        def active(job_id: str) -> int:
            try:
                return self._client.get_job_task_counts(job_id).task_counts.active or 0
            except HttpResponseError as exc:
                if error_code(exc) == "JobNotFound":  # deleted since the listing
                    return 0
                raise translate(exc, self._what(f"task counts of job '{job_id}'")) from exc
            except AzureError as exc:
                raise translate(exc, self._what(f"task counts of job '{job_id}'")) from exc

        if len(targets) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(targets)), thread_name_prefix="batchfed-counts") as ex:
                values = list(ex.map(active, [j for j, _ in targets]))
        else:
            values = [active(j) for j, _ in targets]
        for (_, pool), n in zip(targets, values):
            wanted[pool] += n
        return wanted

    def snapshot_pools(
        self,
        pool_ids: Iterable[str] | None = None,
        *,
        active_tasks: bool = True,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, PoolSnapshot]:
        """Snapshots of ``pool_ids`` (all pools when None), keyed by pool id as the service spells it.

        Calls: one ``list_pools`` ($select), one account-level ``list_pool_node_counts`` (Azure
        pages it by 10 pools), and with ``active_tasks`` the active-job listing of
        :meth:`_active_task_counts`. Pools the service does not know are absent from the result.
        ``overrides`` maps pool id → ``vm_size_override`` (wins over the pool's metadata).
        """
        wanted = None if pool_ids is None else {p.lower() for p in pool_ids}
        # read as JSON (see .pools): models for a listing of many pools cost ten times the calls
        what = self._what("list pools")
        with batch_call(what):
            listing = self._pages("/pools", what, {"$select": ",".join(POOL_SELECT)})
            pools = [p for p in listing if p.get("id") and (wanted is None or p["id"].lower() in wanted)]
        if not pools:
            return {}
        what = self._what("list pool node counts")
        with batch_call(what):
            counts = {(nc.get("poolId") or "").lower(): nc for nc in self._pages("/nodecounts", what)}
        active = self._active_task_counts(p["id"] for p in pools) if active_tasks else {}
        lowered = {k.lower(): v for k, v in (overrides or {}).items()}
        out: dict[str, PoolSnapshot] = {}
        for p in pools:
            key = p["id"].lower()
            out[p["id"]] = snapshot(
                p,
                counts.get(key),
                active.get(key) if active_tasks else None,
                service_url=self.service_url,
                account=self.account,
                region=self.region,
                override=lowered.get(key),
            )
        return out

    def snapshot_pool(self, pool_id: str, **kwargs: Any) -> PoolSnapshot:
        found = self.snapshot_pools([pool_id], **kwargs)
        for pid, snap in found.items():
            if pid.lower() == pool_id.lower():
                return snap
        raise BatchNotFoundError(self._what(f"pool '{pool_id}': PoolNotFound"), code="PoolNotFound", status=404)

    def list_pools(self, *, active_tasks: bool = False) -> list[PoolSnapshot]:
        """Every pool of the account as a snapshot, sorted by id."""
        snaps = self.snapshot_pools(None, active_tasks=active_tasks)
        return [snaps[k] for k in sorted(snaps, key=str.lower)]

    def pool_exists(self, pool_id: str) -> bool:
        # not the SDK's pool_exists: in 15.1.0 the client's exception policy raises on the 404
        # before pool_exists can turn it into False
        try:
            self._client.get_pool(pool_id, select=["id"])
            return True
        except HttpResponseError as exc:
            if exc.status_code == 404:
                return False
            raise translate(exc, self._what(f"get pool '{pool_id}'")) from exc
        except AzureError as exc:
            raise translate(exc, self._what(f"get pool '{pool_id}'")) from exc

    def create_pool(self, spec: PoolSpecification, *, exists_ok: bool = False) -> bool:
        """Create a pool from pool.yaml; False if it exists and ``exists_ok``."""
        try:
            self._client.create_pool(pool_create_options(spec))
            return True
        except HttpResponseError as exc:
            if exists_ok and error_code(exc) == "PoolExists":
                return False
            raise translate(exc, self._what(f"create pool '{spec.id}'")) from exc
        except AzureError as exc:
            raise translate(exc, self._what(f"create pool '{spec.id}'")) from exc

    def delete_pool(self, pool_id: str) -> bool:
        """Start deleting a pool; False if it is already gone or being deleted."""
        return self._idempotent(f"delete pool '{pool_id}'", _DELETED_POOL, "delete_pool", pool_id)

    def resize_pool(
        self, pool_id: str, *, dedicated: int | None = None, low_priority: int | None = None,
        resize_timeout: timedelta | float | None = None,
    ) -> None:
        """Start resizing a fixed-size pool (the service refuses it for autoscale pools)."""
        options = bm.BatchPoolResizeOptions(
            target_dedicated_nodes=dedicated, target_low_priority_nodes=low_priority,
            resize_timeout=as_timedelta(resize_timeout),
        )
        with batch_call(self._what(f"resize pool '{pool_id}'")):
            self._nowait("resize_pool", pool_id, options)

    def evaluate_autoscale(self, pool_id: str, formula: str | None = None) -> AutoscaleEvaluation:
        """Evaluate ``formula`` (default: the pool's own) without applying it."""
        if formula is None:
            with batch_call(self._what(f"get pool '{pool_id}'")):
                formula = self._client.get_pool(pool_id, select=["id", "autoScaleFormula"]).auto_scale_formula
            if not formula:
                raise BatchError(self._what(f"pool '{pool_id}' has no autoscale formula"), code="AutoScalingNotEnabled")
        with batch_call(self._what(f"evaluate autoscale of pool '{pool_id}'")):
            run = self._client.evaluate_pool_auto_scale(
                pool_id, bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
            )
        err = run.error
        error = f"{err.code}: {err.message}" if err else None
        return AutoscaleEvaluation(_parse_autoscale_results(run.results), error, run.timestamp)

    def enable_autoscale(
        self, pool_id: str, formula: str, evaluation_interval: timedelta | float | None = None
    ) -> None:
        """Enable (or re-apply) autoscale; the service evaluates the formula at once."""
        with batch_call(self._what(f"enable autoscale of pool '{pool_id}'")):
            self._client.enable_pool_auto_scale(
                pool_id,
                bm.BatchPoolEnableAutoScaleOptions(
                    auto_scale_formula=formula, auto_scale_evaluation_interval=as_timedelta(evaluation_interval)
                ),
            )

    def reevaluate_autoscale(self, pool_id: str) -> bool:
        """Force an autoscale evaluation now (``evaluate_autoscale`` after a placement, SPEC §4.3)
        by re-enabling the pool's own formula and interval, as the original did. False when the
        pool does not autoscale or the service refuses because it was asked too recently."""
        with batch_call(self._what(f"get pool '{pool_id}'")):
            pool = self._client.get_pool(
                pool_id, select=["id", "enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval"]
            )
        if not pool.enable_auto_scale or not pool.auto_scale_formula:
            return False
        try:
            self.enable_autoscale(pool_id, pool.auto_scale_formula, pool.auto_scale_evaluation_interval)
        except BatchError as exc:
            if exc.code == "TooManyEnableAutoScaleRequests":
                return False
            raise
        return True

    def supported_images(self) -> list[dict[str, Any]] | None:
        """Images/node agents the service supports, or None where the service does not offer the
        list (localbatch). VM *sizes* are not in the Batch data-plane API at all (only ARM's
        ``virtualMachineSkus``), so size facts come from the catalog."""
        try:
            images = list(self._client.list_supported_images())
        except HttpResponseError as exc:
            if exc.status_code in _NOT_OFFERED:
                return None
            raise translate(exc, self._what("list supported images")) from exc
        except AzureError as exc:
            raise translate(exc, self._what("list supported images")) from exc
        out = []
        for img in images:
            ref = img.image_reference
            out.append(
                {
                    "node_agent_sku_id": img.node_agent_sku_id,
                    "os_type": enum_text(img.os_type, "") or None,
                    "publisher": ref.publisher if ref else None,
                    "offer": ref.offer if ref else None,
                    "sku": ref.sku if ref else None,
                    "verification_type": enum_text(img.verification_type, "") or None,
                }
            )
        return out

    # -- jobs --------------------------------------------------------------------------------
    def get_job(self, job_id: str) -> JobInfo:
        with batch_call(self._what(f"get job '{job_id}'")):
            return job_info(self._client.get_job(job_id, select=JOB_SELECT))

    def create_job(
        self,
        job_id: str,
        pool_id: str,
        settings: JobSettings | None = None,
        *,
        windows: bool = False,
        shell: bool = True,
        metadata: Mapping[str, str] | None = None,
        likely_exists: bool = False,
    ) -> JobCreateResult:
        """Create the job if absent. If it exists (``JobExists``), report it with what the
        merge decision needs (:meth:`JobInfo.merge_conflict`) instead of raising.

        ``likely_exists`` (the caller's records say the job is there): read it first and
        create only if it is gone — one call instead of a refused create and a read."""
        if likely_exists:
            try:
                return JobCreateResult(job_id, False, self.get_job(job_id))
            except BatchNotFoundError:
                pass  # deleted since: create it
        settings = settings or JobSettings()
        options = job_create_options(job_id, pool_id, settings, windows=windows, shell=shell, metadata=metadata)
        what = self._what(f"create job '{job_id}' on pool '{pool_id}'")
        try:
            self._rest("POST", "/jobs", what, body=options)  # a placement's call: no SDK operation
            return JobCreateResult(job_id, True)
        except HttpResponseError as exc:
            if error_code(exc) != "JobExists":
                raise translate(exc, what) from exc
        except AzureError as exc:
            raise translate(exc, what) from exc
        return JobCreateResult(job_id, False, self.get_job(job_id))

    def update_job(
        self, job_id: str, *, auto_complete: bool | None = None, priority: int | None = None,
        max_parallel_tasks: int | None = None,
    ) -> None:
        """Patch a job; only the given fields change."""
        mode = None
        if auto_complete is not None:
            mode = bm.BatchAllTasksCompleteMode.TERMINATE_JOB if auto_complete else bm.BatchAllTasksCompleteMode.NO_ACTION
        options = bm.BatchJobUpdateOptions(all_tasks_complete_mode=mode, priority=priority, max_parallel_tasks=max_parallel_tasks)
        with batch_call(self._what(f"update job '{job_id}'")):
            self._client.update_job(job_id, options)

    def set_auto_complete(self, job_id: str) -> None:
        """``onAllTasksComplete=terminatejob``: call after the tasks are added (see :mod:`.jobs`)."""
        self.update_job(job_id, auto_complete=True)

    def terminate_job(self, job_id: str, reason: str | None = None, *, force: bool = False) -> bool:
        """Start terminating a job; False if it is already terminated, terminating or gone."""
        # always a non-empty body: 15.1.0 fails to build the request without one ("No value for
        # given attribute" on content-type); "UserTerminate" is the service's own default reason
        options = BatchJobTerminateOptions(termination_reason=reason or "UserTerminate")
        return self._idempotent(
            f"terminate job '{job_id}'", _TERMINATED_JOB, "terminate_job", job_id, options, force=force or None
        )

    def delete_job(self, job_id: str, *, force: bool = False) -> bool:
        """Start deleting a job; False if it is already gone or being deleted."""
        return self._idempotent(f"delete job '{job_id}'", _DELETED_JOB, "delete_job", job_id, force=force or None)

    def list_jobs(self, *, state: str | None = None) -> list[JobInfo]:
        flt = f"state eq '{state}'" if state else None
        with batch_call(self._what("list jobs")):
            jobs = [job_info(j) for j in self._client.list_jobs(filter=flt, select=JOB_SELECT)]
        return [j for j in jobs if state is None or j.state == state]

    def job_task_counts(self, job_id: str) -> TaskCounts:
        with batch_call(self._what(f"task counts of job '{job_id}'")):
            c = self._client.get_job_task_counts(job_id).task_counts
        return TaskCounts(c.active or 0, c.running or 0, c.completed or 0, c.succeeded or 0, c.failed or 0)

    # -- job schedules -----------------------------------------------------------------------
    def get_job_schedule(self, schedule_id: str) -> JobScheduleInfo:
        with batch_call(self._what(f"get job schedule '{schedule_id}'")):
            return job_schedule_info(self._client.get_job_schedule(schedule_id))

    def create_job_schedule(
        self,
        schedule_id: str,
        pool_id: str,
        *,
        recurrence_interval: timedelta | float,
        tasks: Sequence[TaskDefinition | bm.BatchTaskCreateOptions] = (),
        settings: JobSettings | None = None,
        windows: bool = False,
        shell: bool = True,
        **options: Any,
    ) -> JobScheduleCreateResult:
        """Create a job schedule if absent (``JobScheduleExists`` → reported, not raised).
        ``tasks`` are added to every recurrence's job (see :mod:`.jobs`); ``options``:
        ``job_manager_command``, ``do_not_run_until``, ``do_not_run_after``, ``start_window``,
        ... of :func:`.jobs.job_schedule_create_options`."""
        request = job_schedule_create_options(
            schedule_id,
            pool_id,
            recurrence_interval=as_timedelta(recurrence_interval),  # type: ignore[arg-type]
            settings=settings or JobSettings(),
            tasks=self._task_options(tasks, windows=windows, shell=shell),
            windows=windows,
            shell=shell,
            **options,
        )
        what = self._what(f"create job schedule '{schedule_id}' on pool '{pool_id}'")
        try:
            self._client.create_job_schedule(request)
            return JobScheduleCreateResult(schedule_id, True)
        except HttpResponseError as exc:
            if error_code(exc) != "JobScheduleExists":
                raise translate(exc, what) from exc
        except AzureError as exc:
            raise translate(exc, what) from exc
        return JobScheduleCreateResult(schedule_id, False, self.get_job_schedule(schedule_id))

    def terminate_job_schedule(self, schedule_id: str, *, force: bool = False) -> bool:
        """Start terminating a job schedule; False if already terminated or gone."""
        return self._idempotent(
            f"terminate job schedule '{schedule_id}'", _TERMINATED_SCHEDULE, "terminate_job_schedule",
            schedule_id, force=force or None,
        )

    def delete_job_schedule(self, schedule_id: str) -> bool:
        """Start deleting a job schedule (and its jobs); False if already gone."""
        return self._idempotent(
            f"delete job schedule '{schedule_id}'", _DELETED_SCHEDULE, "delete_job_schedule", schedule_id
        )

    def list_jobs_from_schedule(self, schedule_id: str) -> list[JobInfo]:
        with batch_call(self._what(f"list jobs of schedule '{schedule_id}'")):
            return [job_info(j) for j in self._client.list_jobs_from_schedule(schedule_id, select=JOB_SELECT)]

    # -- tasks -------------------------------------------------------------------------------
    @staticmethod
    def _task_options(
        tasks: Sequence[TaskDefinition | bm.BatchTaskCreateOptions], *, windows: bool, shell: bool
    ) -> list[bm.BatchTaskCreateOptions]:
        return [
            t if isinstance(t, bm.BatchTaskCreateOptions) else task_create_options(t, windows=windows, shell=shell)
            for t in tasks
        ]

    def add_tasks(
        self,
        job_id: str,
        tasks: Sequence[TaskDefinition | bm.BatchTaskCreateOptions],
        *,
        windows: bool = False,
        shell: bool = True,
        concurrency: int = 1,
        max_server_retries: int = 3,
        chunk_size: int = 100,
    ) -> TaskAddReport:
        """Add tasks in requests of ≤100, with a per-task result each (see :mod:`.tasks`).
        Raises only when a whole request fails for another reason than its size."""
        options = self._task_options(tasks, windows=windows, shell=shell)
        what = self._what(f"add tasks to job '{job_id}'")
        path = f"/jobs/{_segment(job_id)}/addtaskcollection"

        def post(chunk: list[bm.BatchTaskCreateOptions]) -> list[dict[str, Any]]:
            answer = self._rest("POST", path, what, body={"value": chunk})
            values = answer.get("value") if isinstance(answer, dict) else None
            # no usable answer: every task of the chunk counts as missing (retried, then NoResult)
            return [r for r in values if isinstance(r, dict)] if isinstance(values, list) else []

        with batch_call(what):  # connection errors; HTTP errors are translated inside
            return add_task_collection(
                post, options, concurrency=concurrency, max_server_retries=max_server_retries,
                chunk_size=chunk_size, what=what,
            )

    def task_ids(self, job_id: str) -> set[str]:
        """Ids of every task already in the job (for renumbering generated ids, SPEC §5)."""
        what = self._what(f"list task ids of job '{job_id}'")
        with batch_call(what):
            return {t["id"] for t in self._pages(f"/jobs/{_segment(job_id)}/tasks", what, {"$select": "id"}) if t.get("id")}

    def list_tasks(self, job_id: str, *, state: str | None = None) -> list[TaskInfo]:
        """Tasks of a job: state, exit code, node, start/end times (``state`` filters)."""
        flt = f"state eq '{state}'" if state else None
        with batch_call(self._what(f"list tasks of job '{job_id}'")):
            tasks = [task_info(t) for t in self._client.list_tasks(job_id, filter=flt, select=TASK_SELECT)]
        return [t for t in tasks if state is None or t.state == state]

    def get_task(self, job_id: str, task_id: str) -> TaskInfo:
        with batch_call(self._what(f"get task '{task_id}' of job '{job_id}'")):
            return task_info(self._client.get_task(job_id, task_id, select=TASK_SELECT))

    def read_task_file(self, job_id: str, task_id: str, path: str = "stdout.txt", *, max_bytes: int | None = None) -> bytes:
        """A file of a task's folder (``stdout.txt``, ``stderr.txt``, ...), at most ``max_bytes``."""
        what = self._what(f"read {path} of task '{task_id}' in job '{job_id}'")
        try:
            out = bytearray()
            for block in self._client.download_task_file(job_id, task_id, path):
                out += block
                if max_bytes is not None and len(out) >= max_bytes:
                    return bytes(out[:max_bytes])
            return bytes(out)
        except HttpResponseError as exc:
            err = translate(exc, what)
            if exc.status_code == 404 and err.code is None:
                err.code = "FileNotFound"  # the service sends no code for a missing file
            raise err from exc
        except AzureError as exc:
            raise translate(exc, what) from exc

    def task_output(self, job_id: str, task_id: str, stream: str = "stdout", *, max_bytes: int | None = None) -> str:
        """``stdout.txt`` / ``stderr.txt`` as text (undecodable bytes replaced)."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be 'stdout' or 'stderr'")
        return self.read_task_file(job_id, task_id, f"{stream}.txt", max_bytes=max_bytes).decode("utf-8", "replace")


# --- one BatchAccount per service URL, per process ------------------------------------------------

_accounts: dict[str, BatchAccount] = {}
_accounts_lock = threading.Lock()


def get_account(service_url: str, *, workspace: str | os.PathLike[str] | None = None) -> BatchAccount:
    """The process-wide :class:`BatchAccount` for a URL, created on first use (thread-safe).
    Credentials are resolved from the URL (see :mod:`.credentials`)."""
    key = normalize_service_url(service_url)
    with _accounts_lock:
        account = _accounts.get(key)
        if account is None:
            account = _accounts[key] = BatchAccount(key, workspace=workspace)
        return account


def close_accounts() -> None:
    """Close and forget every cached account (tests, shutdown)."""
    with _accounts_lock:
        accounts = list(_accounts.values())
        _accounts.clear()
    for a in accounts:
        a.close()
