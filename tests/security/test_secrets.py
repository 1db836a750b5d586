"""Keys and connection strings never show: not in any file the stack writes (logs, runtime
files, the store, task output), not in ``--raw`` output, not in what a notebook displays,
not in the repr or str of the main objects, not in error messages about them."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from security_helpers import Secrets, files_under
from stack import Stack, wait_until

from batchfed_lab.localbatch.launch import isolation

JOBS = "job_specifications:\n- id: {id}\n  tasks: [{{command: 'env; echo done'}}]\n"


@pytest.fixture(scope="module")
def exercised(secret_stack: tuple[Stack, Secrets], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Use the stack the way people do — submit, wait, read outputs, list, explain, status,
    logs — and keep every text it showed."""
    stack, known = secret_stack
    c = stack.client
    jobs = tmp_path_factory.mktemp("jobs") / "jobs.yaml"
    jobs.write_text(JOBS.format(id="envdump"))
    sub = c.submit("sec", jobs)
    sub.wait(30)
    wait_until(lambda: all(t.task.state == "completed" for t in c.tasks("sec", "envdump")), "the env task", 30)
    shown: dict[str, str] = {"task stdout": str(c.task_output("sec", "envdump", "task-00000"))}
    return {"stack": stack, "known": known, "jobs": jobs, "sub": sub, "shown": shown}


def test_the_search_finds_a_planted_secret(exercised: dict[str, Any]) -> None:
    known = exercised["known"]
    for secret in known.all.values():
        assert _search({"planted": f"xx{secret}yy"}, known)
    assert _search({"planted": b"\0" + base64.b64decode(known.localbatch_key)}, known)


def test_the_stack_really_used_the_environment_keys(exercised: dict[str, Any]) -> None:
    from batchfed_lab.batch.credentials import resolve_credential

    stack = exercised["stack"]
    assert resolve_credential(stack.urls["lab1"]).source == "env BATCHFED_BATCH_KEY_LAB1"
    assert resolve_credential("https://azacct.westeurope.batch.azure.com").source == "env BATCHFED_BATCH_KEY_AZACCT"
    assert exercised["sub"].done()  # lab1's pools were driven with the environment's key


def _search(texts: dict[str, str | bytes], known: Secrets) -> list[str]:
    found = []
    raw_key = base64.b64decode(known.localbatch_key)
    for where, text in texts.items():
        data = text.encode("utf-8", "replace") if isinstance(text, str) else text
        for name, secret in known.all.items():
            if secret and secret.encode() in data:
                found.append(f"{name} in {where}")
        if raw_key in data:
            found.append(f"the localbatch key's bytes in {where}")
    return found


def test_cli_raw_output_never_shows_a_secret(exercised: dict[str, Any]) -> None:
    from batchfed_lab.cli import main

    stack, known, jobs = exercised["stack"], exercised["known"], exercised["jobs"]
    env = {"BATCHFED_HOME": str(stack.root)}
    runner = CliRunner()
    commands = [
        ["fed", "list"],
        ["fed", "pools", "sec"],
        ["fed", "jobs", "list", "sec"],
        ["fed", "jobs", "list", "sec", "--queued"],
        ["fed", "jobs", "list", "sec", "--blocked"],
        ["fed", "explain", "sec", str(jobs)],
        ["fed", "tasks", "sec", "--job-id", "envdump"],
        ["fed", "output", "sec", "--job-id", "envdump", "--task-id", "task-00000"],
        ["fed", "proxy", "status"],
        ["fed", "proxy", "logs", "-n", "100000"],
        ["fed", "proxy", "start"],
        ["up"],
        ["fed", "jobs", "add", "sec", str(Path(jobs).with_name("raw.yaml"))],
        ["pool", "list", "--account", "lab1"],
    ]
    Path(jobs).with_name("raw.yaml").write_text(JOBS.format(id="raw-submit"))
    texts: dict[str, str] = {}
    for argv in commands:
        r = runner.invoke(main, [*argv, "--raw"] if argv[0] != "pool" else argv, env=env, catch_exceptions=False)
        assert r.exit_code == 0, (argv, r.stderr)
        texts[" ".join(argv) + " --raw"] = r.stdout + r.stderr
    assert not _search(texts, known), _search(texts, known)


def test_notebook_outputs_never_show_a_secret(exercised: dict[str, Any], tmp_path: Path) -> None:
    from ipshell import ipython_shell
    from IPython.utils.capture import capture_output

    stack, known, jobs = exercised["stack"], exercised["known"], exercised["jobs"]
    texts: dict[str, str] = {}
    with ipython_shell(tmp_path / "ipython", stack.root) as ip:
        cells = [
            "%fed list",
            "%fed pools sec",
            "%fed jobs sec",
            "%fed jobs sec --blocked",
            f"%fed explain sec {jobs}",
            "%fed tasks sec --job-id envdump",
            "%fed output sec --job-id envdump --task-id task-00000",
            "%fed proxy status",
            "%fed proxy logs -n 100000",
            "%fed proxy start",
            "%fed up",
            "import batchfed_lab; batchfed_lab.connect()",
            "batchfed_lab.connect().account(batchfed_lab.connect().default_service_url('lab1'))",
        ]
        for cell in cells:
            with capture_output() as shown:
                result = ip.run_cell(cell)
            assert result.success, (cell, result.error_in_exec)
            data, _ = ip.display_formatter.format(result.result)
            texts[cell] = shown.stdout + shown.stderr + "".join(str(v) for v in data.values())
    assert not _search(texts, known), _search(texts, known)


def test_reprs_and_errors_never_show_a_secret(exercised: dict[str, Any], azurite: Any) -> None:
    from batchfed_lab.batch.credentials import resolve_credential
    from batchfed_lab.config.workspace import open_workspace
    from batchfed_lab.errors import BatchfedError
    from batchfed_lab.localbatch import control
    from batchfed_lab.proxy import lifecycle
    from batchfed_lab.store import open_store
    from batchfed_lab.store.azure import AzureStore

    stack, known, sub = exercised["stack"], exercised["known"], exercised["sub"]
    c = stack.client
    lab1, azure_url = stack.urls["lab1"], "https://azacct.westeurope.batch.azure.com"
    objects: dict[str, Any] = {
        "client": c,
        "workspace": c.workspace,
        "settings": c.workspace.settings,
        "store": c.store,
        "account lab1": c.account(lab1),
        "account lab2": c.account(stack.urls["lab2"]),
        "credential lab1 (env key)": resolve_credential(lab1),
        "credential azacct (env key)": resolve_credential(azure_url),
        "submission": sub,
        "actions": sub.actions(),
        "locations": c.locations("sec"),
        "explanations": c.explain("sec", exercised["jobs"]),
        "federations": c.describe_federations(),
        "proxies": lifecycle.running(c.workspace),
        "proxy status": c.proxy_status(),
        "localbatch": control.info(c.workspace),
        "pool snapshots": c.pool_snapshots("sec"),
        "tasks": c.tasks("sec", "envdump"),
    }
    texts = {f"repr({k})": repr(v) for k, v in objects.items()}
    texts.update({f"str({k})": str(v) for k, v in objects.items()})

    # the Azure store, built from a real (Azurite) connection string: its key is a secret here too
    az = AzureStore.from_connection_string(azurite.connection_string, prefix="secrepr")
    try:
        texts["repr(AzureStore)"] = repr(az) + str(az)
    finally:
        az.close()
    dev_key = azurite.connection_string.split("AccountKey=")[1].split(";")[0]
    assert dev_key not in texts["repr(AzureStore)"]

    # errors that are about the secrets themselves
    errors: dict[str, str] = {}
    os.environ["BATCHFED_BATCH_KEY_BADACCT"] = "not-base64-" + known.storage_key[:20]
    try:
        with pytest.raises(BatchfedError) as info:
            resolve_credential("https://badacct.westeurope.batch.azure.com")
        errors["bad shared key"] = str(info.value)
        assert "not-base64-" not in errors["bad shared key"]
    finally:
        del os.environ["BATCHFED_BATCH_KEY_BADACCT"]
    azure_ws = stack.root.parent / "azure-ws"
    azure_ws.mkdir(exist_ok=True)
    (azure_ws / "settings.yaml").write_text("store: {backend: azure, azure: {credential: connection_string}}\n")
    with pytest.raises(BatchfedError) as info:  # the fake connection string points at a dead loopback port
        open_store(open_workspace(azure_ws), retries=0)
    errors["store unreachable"] = str(info.value)
    os.environ["BATCHFED_STORAGE_CONNECTION_STRING"], saved = (
        "AccountKey=" + known.storage_key + ";garbage",
        os.environ["BATCHFED_STORAGE_CONNECTION_STRING"],
    )
    try:
        with pytest.raises(BatchfedError) as info:
            open_store(open_workspace(azure_ws), retries=0)
        errors["malformed connection string"] = str(info.value)
    finally:
        os.environ["BATCHFED_STORAGE_CONNECTION_STRING"] = saved
    texts.update({f"error: {k}": v for k, v in errors.items()})
    assert not _search(texts, known), _search(texts, known)


def test_no_file_of_the_workspace_holds_a_secret(exercised: dict[str, Any]) -> None:
    """Logs (proxy at debug level, localbatch), runtime files, the SQLite store and its WAL,
    localbatch's state and every task's output — everything but the key file itself."""
    stack, known = exercised["stack"], exercised["known"]
    assert "BATCHFED_BATCH_KEY" not in exercised["shown"]["task stdout"], "a task saw the batchfed environment"
    key_file = stack.root / "localbatch" / "key"
    texts: dict[str, bytes] = {}
    node_root = isolation.node_root(stack.root / "localbatch")  # the task folders: outside the workspace as root
    for base, label in ((stack.root, ""), (node_root, "noderoot/")):
        for path in files_under(base) if base.exists() else []:
            if path.is_file() and not path.is_symlink() and path != key_file:  # links: the traversal test plants some
                texts.setdefault(label + str(path.relative_to(base)), path.read_bytes())
    assert any(p.startswith("logs/") and p.endswith(".log") for p in texts), sorted(texts)
    assert any(p.endswith("stdout.txt") for p in texts), sorted(texts)
    assert "store.sqlite" in texts
    found = _search(texts, known)
    assert not found, found
