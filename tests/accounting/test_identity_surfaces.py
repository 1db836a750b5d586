"""The submitter shows in ``jobs list`` (locations, --queued, --blocked), in ``--raw`` and in
the frames, and ``--user`` keeps one submitter's work."""

from __future__ import annotations

from types import SimpleNamespace

from batchfed_lab.commands import jobs as jobs_cmd
from batchfed_lab.store import LocationUpdate, NewAction

URL = "https://acct.westeurope.batch.azure.com"


def _list(client, **kw):
    args = {"federation_id": "lab", "job_id": None, "schedule_id": None, "queued": False, "blocked": False}
    args.update({"recurrences": False, "user": None, "moves": False, **kw})
    return jobs_cmd.jobs_list(client, SimpleNamespace(**args))


def _two_users(client, as_user):
    client.store.create_federation("lab")
    ada, bob = as_user("ada"), as_user("bob")
    ada.enqueue("lab", [NewAction("job", "add", "a1"), NewAction("job", "add", "a2")])
    bob.enqueue("lab", [NewAction("job", "add", "b1", priority=5)])
    claim = ada.claim("lab", "w")
    assert claim is not None
    ada.mark_placed(claim, location=LocationUpdate(URL, "p1", unique_id=claim.action.id))
    return claim.action


def test_jobs_list_shows_who_placed_each_job_and_filters_by_user(client, as_user):
    placed = _two_users(client, as_user)
    df = client.jobs_frame("lab")
    assert list(zip(df["job_id"], df["submitter"])) == [(placed.target_id, "ada")]
    queued = client.jobs_frame("lab", queued=True)
    assert sorted(zip(queued["job_id"], queued["submitter"], queued["priority"])) == sorted(
        [(t, "ada", 0) for t in ("a1", "a2") if t != placed.target_id] + [("b1", "bob", 5)]
    )
    assert list(client.jobs_frame("lab", queued=True, user="bob")["job_id"]) == ["b1"]
    assert client.jobs_frame("lab", user="bob").empty


def test_the_cli_text_and_raw_records_carry_the_submitter(client, as_user):
    _two_users(client, as_user)
    res = _list(client, queued=True, user="bob")
    assert "bob" in res.text and "ada" not in res.text
    assert [r["submitter"] for r in res.data] == ["bob"]


def test_share_lists_each_user_with_their_work_and_equal_default_shares(client, as_user):
    _two_users(client, as_user)
    df = client.share_frame("lab")
    rows = {r["user"]: r for r in df.to_dict("records")}
    assert set(rows) == {"ada", "bob"}
    assert (rows["ada"]["queued"], rows["ada"]["placed"], rows["bob"]["queued"]) == (1, 1, 1)
    assert rows["ada"]["norm_shares"] == rows["bob"]["norm_shares"] == 0.5
    assert rows["ada"]["fair_share"] == 1.0  # no proxy has published usage


def test_the_cli_share_and_cost_verbs_print_tables_and_raw_records(client, as_user):
    from batchfed_lab.commands import accounting as acct_cmd

    _two_users(client, as_user)
    res = acct_cmd.share(client, SimpleNamespace(federation_id="lab"))
    assert "ada" in res.text and [r["user"] for r in res.data] == ["ada", "bob"]
