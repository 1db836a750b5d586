"""Strict by default, like Azurite: a body property localbatch cannot honour is refused with one
400 ``UnsupportedProperty`` naming every such property; ``--loose`` accepts and ignores them,
with one warning line each in the log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from batchfed_lab.localbatch import control
from batchfed_lab.localbatch.api import support

from .lb_helpers import make_job, make_pool, start_server, wait_for

API = "?api-version=2025-06-01"
IMAGE = {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"}
POOL = {
    "id": "p1",
    "vmSize": "standard_d2s_v3",
    "virtualMachineConfiguration": {"imageReference": IMAGE, "nodeAgentSKUId": "batch.node.ubuntu 22.04"},
    "targetDedicatedNodes": 1,
}
TWO_UNSUPPORTED = {
    "mountConfiguration": [{"nfsMountConfiguration": {"source": "srv:/x", "relativeMountPath": "x"}}],
    "virtualMachineConfiguration": {**POOL["virtualMachineConfiguration"], "osDisk": {"diskSizeGB": 100}},
}


def send(client, method: str, path: str, body: object = None):
    """A signed request with any JSON body; its response, whatever the status (the client's
    error policy raises on errors, with the response attached)."""
    try:
        return client.send_request(HttpRequest(method, path + API, json=body))
    except HttpResponseError as exc:
        return exc.response


def property_names(response) -> list[str]:
    return [v["value"] for v in response.json().get("values", []) if v["key"] == "PropertyName"]


def test_a_pool_with_two_unsupported_properties_gets_one_400_naming_both(client):
    r = send(client, "POST", "/pools", {**POOL, **TWO_UNSUPPORTED})
    assert r.status_code == 400
    assert r.json()["code"] == "UnsupportedProperty"
    assert property_names(r) == ["virtualMachineConfiguration.osDisk", "mountConfiguration"]
    assert send(client, "GET", "/pools/p1").status_code == 404  # nothing half-created


@pytest.mark.parametrize(
    "path, body, named",
    [
        (
            "/jobs",
            {"id": "j", "poolInfo": {"poolId": "p", "autoPoolSpecification": {"poolLifetimeOption": "job"}}},
            ["poolInfo.autoPoolSpecification"],
        ),
        (
            "/jobs",
            {
                "id": "j",
                "poolInfo": {"poolId": "p"},
                "networkConfiguration": {"subnetId": "s"},
                "jobReleaseTask": {"commandLine": "true"},
            },
            ["networkConfiguration", "jobReleaseTask"],
        ),
        ("/jobs", {"id": "j", "poolInfo": {"poolId": "p"}, "allowTaskPreemption": True}, ["allowTaskPreemption"]),
        (
            "/pools",
            {**POOL, "networkConfiguration": {"subnetId": "/subscriptions/x"}, "userAccounts": [{"name": "u"}]},
            ["networkConfiguration", "userAccounts"],
        ),
        (
            "/pools",
            {**POOL, "applicationPackageReferences": [{"applicationId": "a"}], "upgradePolicy": {"mode": "manual"}},
            ["applicationPackageReferences", "upgradePolicy"],
        ),
        ("/pools/p1", {"vmSize": "big", "mountConfiguration": [{"x": 1}]}, ["vmSize", "mountConfiguration"]),
    ],
    ids=["auto-pool", "job-network-and-release", "task-preemption", "pool-network-users", "packages-upgrade", "pool-patch"],
)
def test_every_unsupported_property_is_named_by_its_path(client, path, body, named):
    method = "PATCH" if path.startswith("/pools/") else "POST"
    if method == "PATCH":
        assert send(client, "POST", "/pools", POOL).status_code == 201
    r = send(client, method, path, body)
    assert (r.status_code, r.json()["code"]) == (400, "UnsupportedProperty")
    assert property_names(r) == named


def test_unset_values_are_not_unsupported(client):
    # Azure's own example replaces pool properties with an empty package list
    assert send(client, "POST", "/pools", {**POOL, "mountConfiguration": [], "userAccounts": None}).status_code == 201
    r = send(client, "POST", "/pools/p1/updateproperties", {"metadata": [], "applicationPackageReferences": []})
    assert r.status_code == 204


def test_a_task_may_ask_for_either_elevation_but_not_a_named_user(client):
    make_pool(client, "pool", wait=False)
    make_job(client, "job", "pool")
    for i, level in enumerate(("admin", "nonadmin")):
        task = {"id": f"t{i}", "commandLine": "true", "userIdentity": {"autoUser": {"elevationLevel": level}}}
        assert send(client, "POST", "/jobs/job/tasks", task).status_code == 201
    named = {"id": "t9", "commandLine": "true", "userIdentity": {"username": "ada"}}
    r = send(client, "POST", "/jobs/job/tasks", named)
    assert (r.status_code, property_names(r)) == (400, ["userIdentity.username"])


def test_a_task_collection_refuses_only_the_tasks_asking_for_the_unsupported(client):
    make_pool(client, "pool", wait=False)
    make_job(client, "job", "pool")
    tasks = [
        {"id": "ok", "commandLine": "true"},
        {"id": "bad", "commandLine": "true", "applicationPackageReferences": [{"applicationId": "a"}]},
    ]
    r = send(client, "POST", "/jobs/job/addtaskcollection", {"value": tasks})
    results = {v["taskId"]: v for v in r.json()["value"]}
    assert results["ok"]["status"] == "success"
    assert results["bad"]["status"] == "clienterror"
    assert results["bad"]["error"]["code"] == "UnsupportedProperty"


def test_the_unsupported_paths_of_nested_lists_carry_their_index():
    body = {"value": [{"id": "a"}, {"id": "b", "userIdentity": {"username": "bob"}}]}
    tree = {"value": support.TASK}
    assert support.unsupported(body, tree) == ["value[1].userIdentity.username"]


@pytest.fixture
def loose_server(tmp_path_factory: pytest.TempPathFactory):
    ws = tmp_path_factory.mktemp("loose-ws")
    info = start_server(ws, loose=True)
    try:
        yield ws, info
    finally:
        control.stop(ws)


def test_loose_accepts_and_ignores_them_with_one_warning_each(loose_server, account):
    ws, info = loose_server
    assert info.loose
    with control.batch_client(account, ws, retry_total=0) as client:
        r = send(client, "POST", "/pools", {**POOL, **TWO_UNSUPPORTED})
        assert r.status_code == 201
        pool = send(client, "GET", "/pools/p1").json()
    assert "mountConfiguration" not in pool and "osDisk" not in pool["virtualMachineConfiguration"]
    log = Path(info.log_file)

    def warnings() -> list[str]:
        return [line for line in log.read_text().splitlines() if "WARNING" in line and "cannot honour" in line]

    found = wait_for(lambda: len(warnings()) >= 2 and warnings(), 5, "two warning lines")
    assert len(found) == 2
    assert "virtualMachineConfiguration.osDisk" in found[0] and "mountConfiguration" in found[1]


# -- the trees against the API's own models ----------------------------------------------------------
def _rest_fields(model: type) -> dict[str, type | None]:
    """A model's JSON property names -> the model class of its value (or of its list items)."""
    from azure.batch.models import _models

    annotations: dict = {}
    for klass in reversed(model.__mro__):
        annotations.update(getattr(klass, "__annotations__", {}))
    out: dict[str, type | None] = {}
    for klass in reversed(model.__mro__):
        for attr, value in vars(klass).items():
            if type(value).__name__ == "_RestField":
                names = re.findall(r"_models\.(\w+)", str(annotations.get(attr)))
                nested = [getattr(_models, n) for n in names if isinstance(getattr(_models, n, None), type)]
                out[value._rest_name_input or attr] = next((n for n in nested if _rest_fields_of(n)), None)
    return out


def _rest_fields_of(model: type) -> bool:
    return any(type(v).__name__ == "_RestField" for k in model.__mro__ for v in vars(k).values())


def _names_not_in_model(tree: dict, model: type, prefix: str = "") -> list[str]:
    fields = _rest_fields(model)
    wrong = []
    for name, rule in tree.items():
        if name not in fields:
            wrong.append(prefix + name)
        elif isinstance(rule, dict) and fields[name] is not None:
            wrong += _names_not_in_model(rule, fields[name], f"{prefix}{name}.")
    return wrong


@pytest.mark.parametrize(
    "tree, model",
    [
        ("POOL", "BatchPoolCreateOptions"),
        ("POOL_UPDATE", "BatchPoolUpdateOptions"),
        ("POOL_REPLACE", "BatchPoolReplaceOptions"),
        ("JOB", "BatchJobCreateOptions"),
        ("JOB_UPDATE", "BatchJobUpdateOptions"),
        ("TASK", "BatchTaskCreateOptions"),
        ("SCHEDULE", "BatchJobScheduleCreateOptions"),
        ("SCHEDULE_UPDATE", "BatchJobScheduleUpdateOptions"),
        ("POOL_RESIZE", "BatchPoolResizeOptions"),
        ("NODE_REMOVAL", "BatchNodeRemoveOptions"),
        ("AUTOSCALE", "BatchPoolEnableAutoScaleOptions"),
        ("JOB_DISABLE", "BatchJobDisableOptions"),
        ("TASK_UPDATE", "BatchTask"),
    ],
)
def test_every_property_localbatch_honours_is_one_of_the_api_models(tree, model):
    # the SDK's models are generated from the same 2025-06-01 description: a misspelt name here
    # would refuse a property Azure takes
    from azure.batch.models import _models

    assert _names_not_in_model(getattr(support, tree), getattr(_models, model)) == []


def test_the_workspace_setting_makes_every_start_loose(tmp_path_factory: pytest.TempPathFactory):
    # how `batchfed up` starts localbatch: no flags, the workspace's settings
    ws = tmp_path_factory.mktemp("loose-setting-ws")
    (ws / "settings.yaml").write_text("localbatch:\n  loose: true\n")
    info = start_server(ws)
    try:
        assert info.loose
    finally:
        control.stop(ws)


def test_a_terminate_body_is_screened_like_any_other(client):
    make_pool(client, "pool", wait=False)
    make_job(client, "job", "pool")
    r = send(client, "POST", "/jobs/job/terminate", {"terminateReason": "done", "cleanUp": True})
    assert (r.status_code, property_names(r)) == (400, ["cleanUp"])
    assert send(client, "POST", "/jobs/job/terminate", {"terminateReason": "done"}).status_code == 202
    assert client.get_job("job").execution_info.termination_reason == "done"
