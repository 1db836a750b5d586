"""No per-job cap: one entity (row) per action with a sortable FIFO key."""

from __future__ import annotations

import pytest

from batchfed_lab.store import ActionState, NewAction

ON_ONE_JOB = {"sqlite": 20_000, "azure": 2_000}  # the original stopped at 14,625 per job id


@pytest.mark.slow
def test_thousands_of_actions_on_one_job_id_drain_in_order(backend, store):
    n = ON_ONE_JOB[backend.name]
    store.create_federation("fed", unique_job_ids=False)
    # one submission, as a large jobs file would make it; all of it or nothing
    store.enqueue("fed", [NewAction("job", "add" if i % 2 == 0 else "terminate", "job-1", {"i": i}) for i in range(n)])
    queued = store.list_queued("fed", "job-1")
    assert len(queued) == n and queued[-1].position == n
    assert store.counts("fed").queued == n

    seen = []
    while (claim := store.claim("fed", "proxy")) is not None:
        if len(seen) < 50:
            assert store.claim("fed", "other") is None  # one job id: strictly one at a time
        seen.append(claim.action.payload["i"])
        if claim.action.method.value == "add":
            store.mark_placed(claim)
        else:
            store.mark_done(claim)
    assert seen == list(range(n))
    counts = store.counts("fed")
    assert (counts.queued, counts.placed, counts.done) == (0, n // 2, n // 2)
    assert store.head("fed", "job-1") is None
    assert [a.state for a in store.list_actions("fed", limit=2)] == [ActionState.PLACED, ActionState.DONE]
