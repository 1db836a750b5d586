"""The federation's placement rules beyond a pool's own facts, shared by the proxy's decision
and ``explain``: one function each calls, so a dry run predicts what submit does.

A Batch job id is unique per account: in a federation without unique job ids, where the
store locates the job id on one pool of an account, every other pool of that account would
refuse the job, so it is excluded up front. The proxy adds the pools where job creation
failed during this attempt (``failed``); a dry run has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..config.jobs import JobSpecification
from .decide import JOB_CREATE_FAILED, decide_requirements
from .policies import Policy
from .requirements import Requirements, resolve
from .taskgroup import summarize
from .types import Decision, PoolSnapshot, url_key


def job_requirements(
    job: JobSpecification,
    *,
    native_default: bool | None,
    windows_default: bool | None,
    data_regions: Mapping[str, str | None] | None = None,
) -> Requirements:
    """What a job's task group needs, with the pool.yaml defaults for ``native`` / ``windows``
    and the regions of the storage accounts its inputs come from (``data_regions``)."""
    return resolve(
        job.federation_constraints,
        summarize(job),
        native_default=native_default,
        windows_default=windows_default,
        data_regions=data_regions,
    )


def job_homes(locations: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Where the store locates a job id, from ``(batch service URL, pool id)`` pairs: the
    account (its normalised URL) → the pool id there."""
    return {url_key(url): pool_id for url, pool_id in locations}


def same_account_conflicts(job_id: str, pools: Iterable[PoolSnapshot], homes: Mapping[str, str]) -> dict[str, str]:
    """Pool key → why: the pools of an account where the job id already lives on another pool."""
    if not homes:
        return {}
    # one reason per account, written once: this runs per pool per decision
    by_url = {url: (home.lower(), f"job '{job_id}' already lives on pool {home} of this account") for url, home in homes.items()}
    out = {}
    for s in pools:
        hit = by_url.get(url_key(s.facts.service_url))
        if hit is not None and hit[0] != s.pool_id.lower():
            out[s.key] = hit[1]
    return out


def exclusions(
    job_id: str, pools: Iterable[PoolSnapshot], homes: Mapping[str, str], *, unique_job_ids: bool, failed: Iterable[str] = ()
) -> dict[str, str]:
    """Pool key → why the pool cannot take this job id, whatever its facts and load."""
    reasons = dict.fromkeys(failed, JOB_CREATE_FAILED)
    if not unique_job_ids:  # only there can a job id already live elsewhere
        reasons.update(same_account_conflicts(job_id, pools, homes))
    return reasons


def decide_placement(
    req: Requirements,
    pools: list[PoolSnapshot],
    now: float,
    policy: str | Policy,
    *,
    job_id: str,
    homes: Mapping[str, str],
    unique_job_ids: bool,
    failed: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
) -> Decision:
    """The decision for one add action: its requirements on the pools, without the pools
    this federation's rules keep out (:func:`exclusions`) and those ``extra`` names (pool key
    → why: a move's, see :func:`~.replacement.move_exclusions`). ``homes``: see
    :func:`job_homes` (empty for a job schedule)."""
    reasons = exclusions(job_id, pools, homes, unique_job_ids=unique_job_ids, failed=failed)
    if extra:
        reasons.update(extra)
    return decide_requirements(req, pools, now, policy, reasons)
