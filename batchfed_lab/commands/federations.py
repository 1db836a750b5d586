"""``fed create``, ``fed destroy``, ``fed list``: the federations themselves."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .shape import Result, done, table

if TYPE_CHECKING:
    from ..client import Client


# The columns the CLI prints; --raw and the DataFrames have them all.
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


def create_federation(c: Client, a: SimpleNamespace) -> Result:
    fed = c.create_federation(a.federation_id, unique_job_ids=not a.no_unique_job_ids, force=a.force)
    mode = "unique job ids" if fed.unique_job_ids else "non-unique job ids"
    if fed.id != a.federation_id:  # the original's rule: federation ids are lower-cased, silently; we say so
        mode += f"; ids are lower-cased: '{a.federation_id}' → '{fed.id}'"
    data = {"federation_id": fed.id, "unique_job_ids": fed.unique_job_ids, "created_at": fed.created_at.isoformat()}
    return done(f"federation {fed.id} created ({mode})", fed, data)


def destroy_federation(c: Client, a: SimpleNamespace) -> Result:
    res = c.destroy_federation(a.federation_id, delete_jobs=a.delete_jobs)
    r = res.report
    data = {
        "federation_id": r.federation_id,
        "pools": r.pools,
        "actions": r.actions,
        "active_actions": r.active_actions,
        "locations": r.locations,
        "deleted_jobs": res.deleted_jobs,
    }
    # the store forgets where jobs live; the jobs themselves are kept in Batch unless deleted
    jobs = f"{res.deleted_jobs} Batch job(s) deleted" if a.delete_jobs else f"{r.locations} Batch job(s) kept"
    text = f"federation {r.federation_id} destroyed ({r.pools} pool(s), {r.actions} action(s) removed; {jobs})"
    return done(text, res, data, res.warnings)


def list_federations(c: Client, a: SimpleNamespace) -> Result:
    from ..frames import federations_frame, frame_records

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

    return Result(df, lambda: table(df, FEDERATION_TEXT, "no federations"), data, rich=True)
