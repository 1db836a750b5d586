"""The adapter's pure parts (URLs, credentials, conversions) and the answers only a scripted
endpoint gives (RequestBodyTooLarge, per-task server errors, 5xx, dead ports)."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.batch import models as bm
from azure.core.exceptions import AzureError

from batchfed_lab.batch.adapter import BatchAccount, RetrySettings
from batchfed_lab.batch.credentials import key_env_var, normalize_service_url, parse_service_url, resolve_credential
from batchfed_lab.batch.jobs import JobInfo, JobSettings
from batchfed_lab.batch.pools import node_counts, pool_create_options, pool_facts
from batchfed_lab.batch.tasks import command_line, task_create_options
from batchfed_lab.config import load_pool
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.errors import (
    BatchAuthError,
    BatchConflictError,
    BatchError,
    BatchNotFoundError,
    ConfigError,
)
from batchfed_lab.scheduler.types import NodeCounts

from .fakebatch import FakeBatch, batch_error

KEY = base64.b64encode(b"k" * 32).decode()
FAST = RetrySettings(total=2, connect=1, read=1, status=2, backoff_factor=0.01, backoff_max=0.05, connection_timeout=2)


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://acme.westeurope.batch.azure.com", ("acme", "westeurope", False)),
        ("https://ACME.WestEurope.batch.azure.com/", ("acme", "westeurope", False)),
        ("https://gov1.usgovvirginia.batch.usgovcloudapi.net", ("gov1", "usgovvirginia", False)),
        ("http://127.0.0.1:8123/accounts/local", ("local", None, True)),
        ("http://localhost:8123/accounts/lab2/", ("lab2", None, True)),
        ("http://[::1]:8123/accounts/lab", ("lab", None, True)),
    ],
)
def test_parse_service_url(url, expected):
    assert tuple(parse_service_url(url)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.westeurope.batch.azure.com",  # Azure over http
        "https://acme.batch.azure.com",  # no region
        "https://acme.westeurope.batch.azure.com/accounts/x",
        "http://10.0.0.5:8123/accounts/local",  # not loopback
        "http://127.0.0.1/accounts/local",  # no port
        "http://127.0.0.1:8123/local",
        "http://127.0.0.1:8123/accounts/local?x=1",
        "http://127.0.0.1:99999/accounts/local",
        "ftp://127.0.0.1:1/accounts/a",
        "",
    ],
)
def test_parse_service_url_refuses(url):
    with pytest.raises(ConfigError) as info:
        parse_service_url(url)
    assert "expected https://<account>.<region>.batch.azure.com" in str(info.value)
    assert "\n" not in str(info.value)


def test_normalize_service_url():
    assert normalize_service_url("https://ACME.westeurope.batch.azure.com/") == "https://acme.westeurope.batch.azure.com"
    assert normalize_service_url("http://LOCALHOST:81/accounts/Lab/") == "http://localhost:81/accounts/Lab"


# --- credentials -------------------------------------------------------------------------------


def test_key_env_var_name():
    assert key_env_var("acme") == "BATCHFED_BATCH_KEY_ACME"
    assert key_env_var("my-lab_1") == "BATCHFED_BATCH_KEY_MY_LAB_1"


def test_env_key_wins_and_never_shows(tmp_path):
    cred = resolve_credential("https://acme.westeurope.batch.azure.com", environ={"BATCHFED_BATCH_KEY_ACME": KEY})
    assert cred.kind == "shared_key" and cred.source == "env BATCHFED_BATCH_KEY_ACME"
    assert cred.credential.named_key.key == KEY
    assert KEY not in repr(cred) and KEY not in str(cred)
    account = BatchAccount("https://acme.westeurope.batch.azure.com", cred)
    try:
        assert KEY not in repr(account) and "env BATCHFED_BATCH_KEY_ACME" in repr(account)
    finally:
        account.close()


def test_bad_key_message_names_source_not_key():
    secret = "not*base64*but*secret"
    with pytest.raises(BatchAuthError) as info:
        resolve_credential("https://acme.westeurope.batch.azure.com", environ={"BATCHFED_BATCH_KEY_ACME": secret})
    assert "BATCHFED_BATCH_KEY_ACME" in str(info.value) and secret not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_local_url_uses_workspace_key(tmp_path):
    (tmp_path / "localbatch").mkdir()
    (tmp_path / "localbatch" / "key").write_text(KEY + "\n")
    cred = resolve_credential("http://127.0.0.1:5/accounts/local", workspace=tmp_path, environ={})
    assert cred.kind == "shared_key" and cred.source == "workspace key"
    assert cred.credential.named_key == ("local", KEY)


def test_local_url_without_key_is_a_clear_error(tmp_path):
    with pytest.raises(BatchAuthError, match="no localbatch key"):
        resolve_credential("http://127.0.0.1:5/accounts/local", workspace=tmp_path, environ={})


def test_azure_url_defaults_to_default_azure_credential():
    cred = resolve_credential("https://acme.westeurope.batch.azure.com", environ={})
    assert cred.kind == "token" and type(cred.credential).__name__ == "DefaultAzureCredential"
    # one instance per process: its token cache is shared by every account
    assert resolve_credential("https://other.eastus.batch.azure.com", environ={}).credential is cred.credential


# --- conversions -------------------------------------------------------------------------------


def test_task_conversion_covers_every_field():
    t = TaskDefinition(
        id="t1",
        command="echo 'hi' > out.txt && cat out.txt",
        depends_on=("a", "b"),
        num_instances=3,
        coordination_command="hostname",
        environment={"A": "1"},
        docker_image="busybox:1",
        max_task_retries=2,
        max_wall_time_s=90,
    )
    doc = task_create_options(t).as_dict()
    assert doc["id"] == "t1"
    assert doc["commandLine"] == "/bin/sh -c 'echo '\"'\"'hi'\"'\"' > out.txt && cat out.txt'"
    assert doc["multiInstanceSettings"] == {"numberOfInstances": 3, "coordinationCommandLine": "/bin/sh -c hostname"}
    assert doc["containerSettings"] == {"imageName": "busybox:1"}
    assert doc["dependsOn"] == {"taskIds": ["a", "b"]}
    assert doc["environmentSettings"] == [{"name": "A", "value": "1"}]
    assert doc["constraints"]["maxTaskRetryCount"] == 2
    assert bm.BatchTaskConstraints(doc["constraints"]).max_wall_clock_time == timedelta(seconds=90)
    plain = task_create_options(TaskDefinition(id="p", command="run")).as_dict()
    assert set(plain) == {"id", "commandLine"}


def test_command_line_windows_and_raw():
    assert command_line("dir", windows=True) == "cmd /c dir"
    assert command_line("/bin/true", shell=False) == "/bin/true"


POOL_YAML = """
pool_specification:
  id: gpu-west
  vm_size: STANDARD_NC6S_V3
  vm_count: {dedicated: 2, low_priority: 1}
  task_slots_per_node: 4
  inter_node_communication_enabled: true
  location: westeurope
  vm_configuration:
    custom_image:
      arm_image_id: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/img
      node_agent: batch.node.ubuntu 22.04
      native: true
  virtual_network:
    arm_subnet_id: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default
  container_registries:
    - {server: MyACR.azurecr.io, username: bot}
    - {username: alice}
    - {server: docker.io, username: bob}
  vm_size_override: {gpus: 2}
"""


def test_pool_spec_round_trips_into_facts():
    spec = load_pool(POOL_YAML).pool_specification
    doc = pool_create_options(spec).as_dict()
    assert doc["targetDedicatedNodes"] == 2 and doc["targetLowPriorityNodes"] == 1
    assert "enableAutoScale" in doc and doc["enableAutoScale"] is False
    meta = {m["name"]: m["value"] for m in doc["metadata"]}
    assert meta["batchfed_location"] == "westeurope" and meta["batchfed_native"] == "1"
    # what the service returns is the create body plus state: read it back as facts
    facts = pool_facts(bm.BatchPool(doc), service_url="http://127.0.0.1:1/accounts/a", account="a", region=None)
    assert facts.location == "westeurope"
    assert facts.native and not facts.windows and facts.inter_node_communication
    assert facts.custom_image_id.endswith("/images/img")
    assert facts.subnet_id.endswith("/subnets/default")
    assert facts.registry_logins == {"myacr.azurecr.io", "dockerhub-alice", "dockerhub-bob"}
    assert facts.task_slots_per_node == 4 and (facts.target_dedicated, facts.target_low_priority) == (2, 1)
    assert facts.size is not None and facts.size.gpus == 2 and facts.size.cores == 6  # catalog + override
    # the service's JSON as it is (how listings are read) gives the same facts as the model
    assert pool_facts(doc, service_url="http://127.0.0.1:1/accounts/a", account="a", region=None) == facts
    # an Azure URL's region wins over the metadata label
    az = pool_facts(bm.BatchPool(doc), service_url="https://a.eastus.batch.azure.com", account="a", region="eastus")
    assert az.location == "eastus"


def test_autoscale_windows_and_shipyard_native_facts():
    spec = load_pool(
        {
            "pool_specification": {
                "id": "win",
                "vm_size": "standard_d2_v3",
                "autoscale": {"enabled": True, "formula": "$TargetDedicatedNodes=1;", "evaluation_interval": "PT5M"},
                "vm_configuration": {
                    "platform_image": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022"}
                },
            }
        }
    ).pool_specification
    doc = pool_create_options(spec).as_dict()
    assert doc["enableAutoScale"] is True and "targetDedicatedNodes" not in doc
    assert doc["virtualMachineConfiguration"]["nodeAgentSKUId"].startswith("batch.node.windows")
    doc["metadata"] = [{"name": "BATCH_SHIPYARD_NATIVE_CONTAINER_POOL", "value": "1"}]
    facts = pool_facts(bm.BatchPool(doc), service_url="u", account="a", region=None)
    assert facts.autoscale and facts.windows and facts.native
    assert facts.location == "local" and facts.custom_image_id is None
    unknown = pool_facts(bm.BatchPool({"id": "x", "vmSize": "standard_nope_v9"}), service_url="u", account="a", region=None)
    assert unknown.size is None and not unknown.native and unknown.task_slots_per_node == 1


def test_node_counts_read_from_json_or_model_alike():
    entry = {
        "poolId": "p",
        "dedicated": {"idle": 2, "running": 1, "starting": 3, "total": 6},
        "lowPriority": {"idle": 1, "running": 0, "preempted": 2, "unusable": 1},
    }  # no total: summed
    # of the other states, unusable and start-task-failed nodes are counted too (re-placement)
    expected = (NodeCounts(idle=2, running=1, other=3), NodeCounts(idle=1, running=0, other=3, unusable=1))
    assert node_counts(entry) == node_counts(bm.BatchPoolNodeCounts(entry)) == expected
    assert node_counts(None) == node_counts({"poolId": "p"}) == (NodeCounts(), NodeCounts())


def test_merge_conflict_rules():
    s = JobSettings(uses_task_dependencies=True, job_preparation_command="prep", on_task_failure="noaction")
    ok = JobInfo("j", "active", "p1", "/bin/sh -c prep", "noaction", "noaction", True)
    assert ok.merge_conflict("P1", s) is None  # pool ids are case-insensitive
    assert "pool 'p1'" in ok.merge_conflict("p2", s)
    assert "preparation" in ok.merge_conflict("p1", JobSettings(uses_task_dependencies=True))
    assert "dependencies" in ok.merge_conflict("p1", JobSettings(job_preparation_command="prep"))
    assert "onTaskFailure" in ok.merge_conflict("p1", JobSettings(True, "prep", on_task_failure="performexitoptionsjobaction"))
    done = JobInfo("j", "completed", "p1", "/bin/sh -c prep", "noaction", "noaction", True)
    assert "completed" in done.merge_conflict("p1", s)


# --- scripted endpoint -------------------------------------------------------------------------


@pytest.fixture
def fake():
    servers: list[FakeBatch] = []

    def make(script):
        servers.append(FakeBatch(script))
        return servers[-1], BatchAccount(servers[-1].url, key=KEY, retry=FAST)

    yield make
    for s in servers:
        s.close()


def _tasks(n: int) -> list[TaskDefinition]:
    return [TaskDefinition(id=f"t{i:03d}", command="true") for i in range(n)]


def test_request_body_too_large_halves_the_chunk(fake):
    def script(method, path, body):
        values = body["value"]
        if len(values) > 30:
            return 413, batch_error("RequestBodyTooLarge", "too large")
        return 200, {"value": [{"status": "success", "taskId": t["id"]} for t in values]}

    server, acct = fake(script)
    report = acct.add_tasks("job", _tasks(130))
    sizes = [len(b["value"]) for b in server.paths("POST", "/addtaskcollection")]
    # 100 → 50 → 25 ×4, then the rest (30) at the halved limit 25: 25 + 5
    assert sizes == [100, 50, 25, 25, 25, 25, 25, 5]
    assert report.ok and len(report.added) == 130 and report.requests == len(sizes)


def test_single_task_too_large_is_a_failure_not_an_exception(fake):
    def script(method, path, body):
        if any(t["id"] == "t001" for t in body["value"]):
            return 413, batch_error("RequestBodyTooLarge")
        return 200, {"value": [{"status": "success", "taskId": t["id"]} for t in body["value"]]}

    _, acct = fake(script)
    report = acct.add_tasks("job", _tasks(4))
    assert [(r.task_id, r.code) for r in report.failed] == [("t001", "RequestBodyTooLarge")]
    assert report.added == ["t000", "t002", "t003"]


def test_per_task_server_errors_are_retried_then_fail(fake):
    calls = {"n": 0}

    def script(method, path, body):
        calls["n"] += 1
        out = []
        for t in body["value"]:
            if t["id"] == "t000" and calls["n"] == 1:  # transient: ok on the retry
                out.append({"status": "servererror", "taskId": "t000", "error": batch_error("ServerBusy")})
            elif t["id"] == "t001":  # never succeeds
                out.append({"status": "servererror", "taskId": "t001", "error": batch_error("InternalError")})
            elif t["id"] == "t002":
                continue  # the service left it out of the answer
            else:
                out.append({"status": "success", "taskId": t["id"]})
        return 200, {"value": out}

    _, acct = fake(script)
    report = acct.add_tasks("job", _tasks(4), max_server_retries=2)
    assert report.added == ["t000", "t003"]
    assert {(r.task_id, r.code) for r in report.failed} == {("t001", "InternalError"), ("t002", "NoResult")}
    assert calls["n"] == 3  # first try + 2 retries


def test_other_client_errors_fail_and_task_exists_succeeds(fake):
    def script(method, path, body):
        out = []
        for t in body["value"]:
            if t["id"] == "t000":
                out.append({"status": "clienterror", "taskId": "t000", "error": batch_error("TaskExists")})
            elif t["id"] == "t001":
                out.append(
                    {
                        "status": "clienterror",
                        "taskId": "t001",
                        "error": batch_error("InvalidPropertyValue", "bad value\nmore", {"PropertyName": "commandLine"}),
                    }
                )
            else:
                out.append({"status": "success", "taskId": t["id"]})
        return 200, {"value": out}

    _, acct = fake(script)
    report = acct.add_tasks("job", _tasks(3))
    assert report.existing == ["t000"] and report.added == ["t002"]
    assert [(r.task_id, r.code, r.message) for r in report.failed] == [("t001", "InvalidPropertyValue", "bad value")]
    assert report.succeeded == 2 and not report.ok
    assert "1 failed" in report.summary()


def test_duplicate_ids_in_one_submission_are_refused_before_sending(fake):
    server, acct = fake(lambda *a: (500, None))
    with pytest.raises(BatchError, match="appears twice"):
        acct.add_tasks("job", [TaskDefinition(id="A", command="x"), TaskDefinition(id="a", command="y")])
    assert server.requests == []


def test_whole_request_errors_raise_mapped_and_chained(fake):
    _, acct = fake(lambda m, p, b: (404, batch_error("JobNotFound", "The specified job does not exist.")))
    with pytest.raises(BatchNotFoundError) as info:
        acct.add_tasks("nojob", _tasks(1))
    err = info.value
    assert err.code == "JobNotFound" and err.status == 404
    assert str(err).startswith("fake: add tasks to job 'nojob'") and "\n" not in str(err)
    assert "RequestId" not in str(err)
    assert isinstance(err.__cause__, AzureError)


def test_status_codes_map_to_our_classes(fake):
    answers = {
        "/jobs/a": (409, batch_error("JobExists")),
        "/jobs/b": (403, batch_error("AuthenticationFailed", "Server failed to authenticate the request.")),
        "/jobs/c": (401, batch_error("InvalidAuthenticationToken")),
        "/jobs/d": (400, batch_error("InvalidPropertyValue", "bad", {"PropertyName": "id", "Reason": "too long"})),
    }
    _, acct = fake(lambda m, p, b: answers[p])
    cases = [
        ("a", BatchConflictError, "JobExists", 409),
        ("b", BatchAuthError, "AuthenticationFailed", 403),
        ("c", BatchAuthError, "InvalidAuthenticationToken", 401),
        ("d", BatchError, "InvalidPropertyValue", 400),
    ]
    for job, cls, code, status in cases:
        with pytest.raises(cls) as info:
            acct.get_job(job)
        assert (info.value.code, info.value.status) == (code, status)
        assert type(info.value) is cls
    with pytest.raises(BatchError) as info:
        acct.get_job("d")
    assert "PropertyName=id; Reason=too long" in str(info.value)


def test_5xx_on_get_is_retried_by_the_pipeline(fake):
    seen = {"n": 0}

    def script(method, path, body):
        seen["n"] += 1
        if seen["n"] < 3:
            return 503, batch_error("ServerBusy")
        return 200, {"id": "j", "state": "active", "poolInfo": {"poolId": "p"}}

    _, acct = fake(script)
    assert acct.get_job("j").pool_id == "p"
    assert seen["n"] == 3
    assert acct.requests == {"GET /jobs/{id}": 1}  # the counter sees the call once, not each retry


@pytest.mark.parametrize("token", ["p2", "a%2Bb%3D%26c", "a%7Bx%7D", "a%20b%23c%25"])
def test_task_ids_follow_next_links_to_the_last_page(fake, token):
    def script(method, path, body):
        if "skiptoken" not in server.targets[-1]:
            link = f"{server.url}/jobs/j%201/tasks?$select=id&$skiptoken={token}&API-Version=1999-01-01"
            return 200, {"value": [{"id": "a"}, {"id": "b"}], "odata.nextLink": link}
        return 200, {"value": [{"id": "c"}]}

    server, acct = fake(script)
    version = acct._client._config.api_version  # the SDK's, which its models are written for
    assert acct.task_ids("j 1") == {"a", "b", "c"}
    first, second = (urlsplit(t) for t in server.targets)
    assert first.path == second.path == "/accounts/fake/jobs/j%201/tasks"
    assert dict(parse_qsl(first.query)) == {"$select": "id", "api-version": version}
    # the link's own query goes back as the service encoded it, with our api-version only
    assert sorted(second.query.split("&")) == sorted(["$select=id", f"$skiptoken={token}", f"api-version={version}"])


def test_an_answer_without_a_task_list_is_an_error_not_an_empty_job(fake):
    _, acct = fake(lambda method, path, body: (200, {"id": "j1", "state": "active"}))
    with pytest.raises(BatchError, match="no list of items"):
        acct.task_ids("j1")


def test_dead_port_fails_fast_with_service_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    acct = BatchAccount(f"http://127.0.0.1:{port}/accounts/gone", key=KEY, retry=FAST)
    started = time.monotonic()
    with pytest.raises(BatchError) as info:
        acct.get_job("j")
    assert info.value.code == "ServiceUnreachable" and time.monotonic() - started < 5
    assert KEY not in str(info.value)


def test_a_bare_string_credential_is_a_shared_key():
    cred = resolve_credential("https://acme.westeurope.batch.azure.com", credential=KEY, environ={})
    assert cred.kind == "shared_key" and cred.credential.named_key == ("acme", KEY)


def test_cli_import_does_not_load_the_sdk():
    code = (
        "import sys, batchfed_lab.cli, batchfed_lab.batch as b; "
        "assert not [m for m in sys.modules if m.startswith('azure')], 'azure imported'; "
        "b.BatchAccount; assert 'azure.batch' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_requests_are_packed_within_one_megabyte_and_an_oversized_task_is_never_sent(fake):
    def script(method, path, body):
        if len(json.dumps(body)) > 1024 * 1024:  # as Batch: a larger addtaskcollection is refused whole
            return 413, batch_error("RequestBodyTooLarge")
        return 200, {"value": [{"status": "success", "taskId": t["id"]} for t in body["value"]]}

    server, acct = fake(script)
    big = {f"V{i}": "x" * 90 for i in range(2_500)}  # ~300 KB of variables per task
    tasks = [TaskDefinition(id=f"t{i:03d}", command="true", environment=big) for i in range(7)]
    huge = TaskDefinition(id="huge", command="true", environment={f"V{i}": "x" * 90 for i in range(12_000)})
    report = acct.add_tasks("job", [*tasks[:3], huge, *tasks[3:]])
    bodies = server.paths("POST", "/addtaskcollection")
    assert [len(b["value"]) for b in bodies] == [3, 3, 1]  # no request refused, none resent
    assert [(r.task_id, r.code) for r in report.failed] == [("huge", "RequestBodyTooLarge")]
    assert len(report.added) == 7
