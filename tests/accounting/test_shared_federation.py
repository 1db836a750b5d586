"""A federation shared by a group, end to end on the embedded stack (localbatch + a detached
proxy + SQLite) with federation.yaml accounting: quotas make placements wait with a verdict
that ``jobs list --blocked`` and ``explain`` show, and removing work lets them go."""

from __future__ import annotations

import getpass

import pytest
from federation_stack import FAST_FEDERATION, running_stack, wait_for

from batchfed_lab.store import ActionState

ACCOUNTING = """\
  accounting:
    quotas:
      default_user: {tasks: 1}
"""
ME = getpass.getuser()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("shared") / "ws", federation_yaml=FAST_FEDERATION + ACCOUNTING) as s:
        s.federation("shared", ["we-native"], unique_job_ids=True)
        s.start_proxy()
        yield s


def _job(jid: str) -> str:
    return f"job_specifications:\n- id: {jid}\n  tasks: [{{command: 'sleep 30'}}]\n"


def test_over_quota_waits_with_its_verdict_in_jobs_list_and_explain_until_work_is_removed(stack):
    c = stack.client
    first = c.submit("shared", _job("q1"))
    first.wait(timeout=30)
    second = c.submit("shared", _job("q2"))
    wanted = f"quota: user {ME} has 1 of 1 tasks"

    def blocked():
        (a,) = second.actions()
        return a.state is ActionState.BLOCKED and a

    a = wait_for(blocked, 30, "the second job to wait for the quota")
    assert a.reason == wanted
    df = c.jobs_frame("shared", blocked=True)
    assert set(df["reason"]) == {wanted} and "quota" in set(df["constraint"])
    # explain reads what the proxy publishes with its heartbeat (every 2 s)
    e = wait_for(lambda: (x := c.explain("shared", _job("q3"))[0]).pool_id is None and x, 10, "explain to see the quota")
    assert e.decision.reason == wanted
    row = e.frame().iloc[0]
    assert row["constraint"] == "quota" and row["price_per_hour"] > 0 and row["est_cost"] == row["price_per_hour"] / 2
    c.terminate("shared", ["q1"])
    wait_for(lambda: second.actions()[0].state is ActionState.PLACED, 30, "the waiting job to be placed")


def test_cost_and_share_show_the_running_work(stack):
    """q2 runs now (placed once q1 was terminated, in the test above)."""
    c = stack.client

    def costed():
        df = c.cost_frame("shared", by="user")
        return (not df.empty and df["est_cost"].iloc[0] > 0, df)

    (by_user,) = wait_for(lambda: (got := costed())[0] and [got[1]], 20, "a cost")
    assert by_user["user"].iloc[0] == ME and by_user.attrs["note"].startswith("estimates")
    per_task = c.cost_frame("shared")
    assert set(per_task["job_id"]) >= {"q2"} and (per_task["price_per_hour"] > 0).all()

    def used():
        df = c.share_frame("shared")
        return (not df.empty and df["usage"].iloc[0] > 0, df)

    (share,) = wait_for(lambda: (got := used())[0] and [got[1]], 10, "published usage")
    me = share[share["user"] == ME].iloc[0]
    assert me["placed"] >= 1 and me["held_cores"] >= 1 and 0 < me["fair_share"] <= 1


def test_a_job_whose_tasks_completed_no_longer_counts_against_the_quota(stack):
    c = stack.client
    c.terminate("shared", ["q2"])  # the tests above leave q2 running
    quick = "job_specifications:\n- id: done1\n  tasks: [{command: 'true'}]\n"
    c.submit("shared", quick).wait(timeout=30)
    wait_for(lambda: c.tasks("shared", "done1") and c.tasks("shared", "done1")[0].task.state == "completed", 30, "done1")
    # done1 is placed and finished; its job stays active (no auto_complete), yet it holds nothing
    c.submit("shared", "job_specifications:\n- id: next1\n  tasks: [{command: 'true'}]\n").wait(timeout=30)


def test_a_finished_job_is_settled_at_what_its_tasks_ran(stack):
    """The leader asks Batch about placed jobs every few seconds: once done2's task completed,
    its placement is no longer open and its usage is the task's measured run time (a `true`
    runs well under a second), not the assumed hour."""
    from batchfed_lab.accounting.published import last_published, open_of, usage_of

    c = stack.client
    c.submit("shared", "job_specifications:\n- id: done2\n  tasks: [{command: 'true'}]\n").wait(timeout=30)

    def settled():
        record = last_published(c.store) or {}
        jobs = {p.target_id for p in open_of(record, "shared")}
        return "done2" not in jobs and record

    record = wait_for(settled, 30, "done2 to be settled")
    # everything placed in this module ran for at most a few minutes on one core
    assert usage_of(record, "shared")[ME] < 0.5
