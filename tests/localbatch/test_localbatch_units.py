"""Pure parts of localbatch: the autoscale formula subset, OData filters, durations, signing."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from azure.batch._patch import BatchSharedKeyAuthPolicy
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from batchfed_lab.localbatch import auth, formula, odata
from batchfed_lab.localbatch._util import ApiError, format_duration, parse_duration

CTX = {
    "$PendingTasks": 5,
    "$ActiveTasks": 3,
    "$RunningTasks": 2,
    "$CurrentDedicatedNodes": 1,
    "$CurrentLowPriorityNodes": 0,
    "$TaskSlotsPerNode": 4,
    "$PreemptedNodeCount": 0,
}
CURRENT = {"$TargetDedicatedNodes": 1.0, "$TargetLowPriorityNodes": 7.0}


@pytest.mark.parametrize(
    "text, dedicated, low, option",
    [
        ("$TargetDedicatedNodes = 2;", 2, 7, "requeue"),
        ("$TargetDedicatedNodes = min(10, $PendingTasks.GetSample(1));", 5, 7, "requeue"),
        ("$TargetLowPriorityNodes = max(0, $ActiveTasks.GetSample(1) - 5); $TargetDedicatedNodes=1", 1, 0, "requeue"),
        ("$TargetDedicatedNodes = ceil($PendingTasks.GetSample(1) / $TaskSlotsPerNode);", 2, 7, "requeue"),
        ("$TargetDedicatedNodes = floor(7 / 2) + 0.9;", 3, 7, "requeue"),
        (
            "$busy = $RunningTasks.GetSample(1) > 0 && !($ActiveTasks.GetSample(1) == 0);\n"
            "$TargetDedicatedNodes = $busy ? 4 : 0;\n$NodeDeallocationOption = taskcompletion;",
            4,
            7,
            "taskcompletion",
        ),
        ("$TargetDedicatedNodes = -3;", 0, 7, "requeue"),
        ("$NodeDeallocationOption = Terminate;", 1, 7, "terminate"),
    ],
)
def test_formula_subset(text, dedicated, low, option):
    result = formula.parse(text).evaluate(CTX, CURRENT)
    assert (result.dedicated, result.low_priority, result.deallocation) == (dedicated, low, option)
    assert result.text.startswith(
        f"$TargetDedicatedNodes={dedicated};$TargetLowPriorityNodes={low};$NodeDeallocationOption={option}"
    )


def test_formula_result_lists_user_variables():
    result = formula.parse("$half = $PendingTasks.GetSample(1) / 2; $TargetDedicatedNodes = $half;").evaluate(CTX, CURRENT)
    assert result.text == "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=7;$NodeDeallocationOption=requeue;$half=2.5"


@pytest.mark.parametrize(
    "text",
    [
        "",
        ";",
        "$TargetDedicatedNodes",
        "TargetDedicatedNodes = 1;",
        "$TargetDedicatedNodes = 1 < 2 < 3;",
        "$TargetDedicatedNodes = ceil(1, 2);",
        "$TargetDedicatedNodes = $ActiveTasks.GetSample(2);",
        "$TargetDedicatedNodes = $SucceededTasks.GetSample(1);",
        "$TaskSlotsPerNode = 2;",
        "$TargetDedicatedNodes = 1 # comment",
        "$TargetDedicatedNodes = (1 + 2;",
        "$x = requeue;",
    ],
)
def test_formula_outside_the_subset_is_refused(text):
    with pytest.raises(formula.FormulaError):
        formula.parse(text)


def test_formula_division_by_zero_is_an_evaluation_error():
    parsed = formula.parse("$TargetDedicatedNodes = 4 / ($RunningTasks.GetSample(1) - 2);")
    with pytest.raises(formula.FormulaError, match="division by zero"):
        parsed.evaluate(CTX, CURRENT)


DOCS = [
    {"id": "a1", "state": "completed", "executionInfo": {"result": "success", "exitCode": 0}, "priority": 1},
    {"id": "a2", "state": "completed", "executionInfo": {"result": "failure", "exitCode": 3}, "priority": 5},
    {"id": "b1", "state": "running", "executionInfo": {}, "priority": 5},
    {"id": "it's", "state": "active", "executionInfo": {}},
]


@pytest.mark.parametrize(
    "text, ids",
    [
        ("state eq 'completed'", ["a1", "a2"]),
        ("state eq 'active' or state eq 'running'", ["b1", "it's"]),
        ("executionInfo/result eq 'failure'", ["a2"]),
        ("executionInfo/exitCode gt 0", ["a2"]),
        ("startswith(id, 'a') and not (priority ge 5)", ["a1"]),
        ("id eq 'it''s'", ["it's"]),
        ("priority eq null", ["it's"]),
        ("(state ne 'completed')", ["b1", "it's"]),
    ],
)
def test_odata_filter(text, ids):
    pred = odata.parse_filter(text)
    assert [d["id"] for d in DOCS if pred(d)] == ids


@pytest.mark.parametrize("text", ["state = 'x'", "state eq", "state eq 'x' and", "substringof('a', id)", "state eq 'x')"])
def test_odata_bad_filter_is_400(text):
    with pytest.raises(ApiError) as exc:
        odata.parse_filter(text)
    assert exc.value.status == 400 and exc.value.code == "InvalidQueryParameterValue"


def test_durations():
    assert parse_duration("PT02S", "x") == 2  # the SDK's own spelling
    assert parse_duration("P1DT2H30M", "x") == 95400
    assert parse_duration("PT1.5S", "x") == 1.5
    assert parse_duration("P1W", "x") == 604800
    for bad in ("1h", "PT", "P1Y", "PT-1S", 5):
        with pytest.raises(ApiError):
            parse_duration(bad, "x")
    for seconds in (0, 1.5, 59, 3600, 93784):
        assert parse_duration(format_duration(seconds), "x") == seconds


KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5"


def _signed_by_sdk(method: str, url: str, **kwargs) -> tuple[str, list[tuple[str, str]]]:
    request = HttpRequest(method, url, **kwargs)
    BatchSharedKeyAuthPolicy(AzureNamedKeyCredential("acct", KEY)).on_request(PipelineRequest(request, PipelineContext(None)))
    parts = urlsplit(request.url)
    return parts.path + ("?" + parts.query if parts.query else ""), list(request.headers.items())


@pytest.mark.parametrize(
    "method, url, kwargs",
    [
        (
            "GET",
            "http://127.0.0.1:1/accounts/acct/jobs/sched%3Ajob-1/tasks?api-version=2025-06-01&$filter=state%20eq%20%27completed%27&$select=id,state",
            {},
        ),
        (
            "POST",
            "http://127.0.0.1:1/accounts/acct/jobs?api-version=2025-06-01",
            {
                "json": {"id": "j", "poolInfo": {"poolId": "p"}},
                "headers": {"content-type": "application/json; odata=minimalmetadata"},
            },
        ),
        (
            "DELETE",
            "http://127.0.0.1:1/accounts/acct/pools/p?api-version=2025-06-01&timeOut=30",
            {"headers": {"If-Match": '"0x1"'}},
        ),
        ("HEAD", "http://127.0.0.1:1/accounts/acct/pools/p?api-version=2025-06-01", {}),
    ],
)
def test_server_accepts_exactly_what_the_sdk_signs(method, url, kwargs):
    target, headers = _signed_by_sdk(method, url, **kwargs)
    auth.verify(method, target, headers, "acct", KEY)  # does not raise
    tampered = [
        (method, target.replace("/acct/", "/acct/x/", 1), headers),
        (method, target + "&maxresults=1", headers),
        ("PUT" if method != "PUT" else "GET", target, headers),
        (
            method,
            target,
            [(k, v) for k, v in headers if k.lower() != "ocp-date"] + [("ocp-date", "Mon, 01 Jan 2024 00:00:00 GMT")],
        ),
    ]
    for m, t, h in tampered:
        with pytest.raises(ApiError) as exc:
            auth.verify(m, t, h, "acct", KEY)
        assert exc.value.status == 403 and exc.value.code == "AuthenticationFailed"


def test_container_command_line_keeps_values_off_argv(tmp_path):
    from batchfed_lab.localbatch.runner import Instance, Run, RunSpec

    inst = Instance(0, "tvmps_x_d", "127.1.2.3", True, tmp_path / "task", tmp_path / "shared")
    spec = RunSpec(
        run_id=7,
        label="a/j/t",
        command_line="python train.py",
        coordination_command_line=None,
        instances=(inst,),
        env={"PATH": "/usr/bin", "TOKEN": "s3cret"},
        user_env_names=frozenset({"TOKEN"}),
        wall_clock_seconds=None,
        container={"imageName": "myacr.azurecr.io/worker:1", "containerRunOptions": "--gpus all --shm-size 1g"},
        prep=None,
    )
    run = Run(host=None, spec=spec, start_monotonic=0.0)  # type: ignore[arg-type]
    env = run._instance_env(inst)
    argv = run._docker_argv(["python", "train.py"], inst, env)
    assert argv[:3] == ["docker", "run", "--rm"]
    assert argv[-3:] == ["myacr.azurecr.io/worker:1", "python", "train.py"]  # no shell, as on Azure
    assert ["-w", str(tmp_path / "task" / "wd")] == argv[argv.index("-w") : argv.index("-w") + 2]
    assert "--gpus" in argv and "--shm-size" in argv
    passed = {argv[i + 1] for i, a in enumerate(argv) if a == "-e"}
    assert {"TOKEN", "AZ_BATCH_TASK_WORKING_DIR", "AZ_BATCH_NODE_ID"} <= passed and "PATH" not in passed
    assert not any("s3cret" in a for a in argv)  # values travel in docker's environment, not its argv


SCRIPTS = [
    "echo hi",
    "echo 'quoted' \"double\" && echo $HOME",
    "printf '%s\\n' a b | wc -l",
    "x=1; echo $((x+1)) > /dev/null; echo done",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_federation_shell_command_line_is_one_shell_with_the_script_as_its_argument(script):
    from batchfed_lab.batch.tasks import command_line
    from batchfed_lab.localbatch.launch.command_line import argv_of

    assert argv_of(command_line(script)) == ["/bin/sh", "-c", script]


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("echo hi", ["echo", "hi"]),
        ("echo $HOME | wc -l", ["echo", "$HOME", "|", "wc", "-l"]),  # nothing expanded, no pipe
        ('/bin/sh -c "echo $HOME"', ["/bin/sh", "-c", "echo $HOME"]),  # the named shell expands it
        ("/bin/sh -c 'echo a' && echo b", ["/bin/sh", "-c", "echo a", "&&", "echo", "b"]),
        ("printf '%s' \"a b\" c\\ d", ["printf", "%s", "a b", "c d"]),
    ],
)
def test_a_command_line_is_split_like_posix_shell_words_without_expansion(line, argv):
    from batchfed_lab.localbatch.launch.command_line import argv_of

    assert argv_of(line) == argv


@pytest.mark.parametrize("line", ["/bin/sh -c 'unbalanced", "   ", "trailing\\"])
def test_a_command_line_that_cannot_be_split_fails_to_launch(line):
    from batchfed_lab.localbatch.launch.command_line import LaunchError, argv_of

    with pytest.raises(LaunchError) as err:
        argv_of(line)
    assert err.value.code == "CommandLaunchFailed"
