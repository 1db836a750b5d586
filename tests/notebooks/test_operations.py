"""05-operations under papermill: status, suspend/resume, a standby taking over, clean-up."""

from __future__ import annotations

import pytest

from nbrun import execute


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return execute("05-operations", tmp_path_factory.mktemp("nb05"))


def test_suspended_proxy_holds_work_until_resumed(run):
    (queued,) = run.glue["queued_while_suspended"]
    (resumed,) = run.glue["after_resume"]
    assert queued["state"] == "queued" and queued["job_id"].startswith("waits-")
    assert resumed["job_id"] == queued["job_id"] and resumed["state"] == "placed" and resumed["pool_id"]


def test_the_standby_takes_over_from_the_stopped_leader(run):
    before, after, leader = run.glue["before"], run.glue["after"], run.glue["leader_before"]
    assert len(before) == 2 and all(p["running"] for p in before)
    assert [p["proxy_id"] for p in before if p["leader"]] == [leader]
    (survivor,) = after
    assert survivor["proxy_id"] != leader and survivor["leader"] and survivor["running"]
    failover = run.cell("widgets.SubmissionView(after_failover)")
    assert "placed" in failover.outputs[0]["data"]["text/plain"]


def test_clean_up_leaves_nothing(run):
    listing = run.cell("%fed destroy").outputs[-1]["data"]["text/plain"]
    assert "Empty DataFrame" in listing
    last = [c for c in run.nb.cells if c.cell_type == "code"][-2]  # before the probe: the status after `down`
    assert last.source == "%fed proxy status"
    assert "Empty DataFrame" in last.outputs[0]["data"]["text/plain"]
    assert not run.errors() and all(names == [] for names in run.glue["_threads_after_cell"])


def test_two_users_share_the_federation_with_a_quota_fair_share_and_cost(run):
    import getpass

    (blocked,) = run.glue["grace_blocked"]
    assert blocked["submitter"] == "grace" and blocked["state"] == "blocked"
    assert blocked["reason"] == "quota: user grace has 1 of 1 tasks"
    share = {r["user"]: r for r in run.glue["share"]}
    me = getpass.getuser()
    assert set(share) == {me, "grace"}
    assert share["grace"]["shares"] == 2 and share["grace"]["budget"] == 5 and share["grace"]["placed"] == 1
    assert share["grace"]["usage"] > 0 and 0 < share["grace"]["fair_share"] <= 1
    costs = {r["user"]: r for r in run.glue["cost_by_user"]}
    assert costs["grace"]["tasks"] == 1 and costs["grace"]["est_cost"] >= 0
    widget = run.cell("widgets.ShareView(client, federation)").outputs[0]["data"]["text/plain"]
    assert "grace" in widget and "fair share in" in widget
