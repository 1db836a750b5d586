"""Operation from any machine sharing the federation's store: two workspaces on one Azure
store (Azurite). The proxy runs from workspace A; workspace B — which has no process of its
own, as on another machine — watches it, reads its logs from the append blobs, suspends,
resumes and stops it, all through the store."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from federation_stack import Stack, running_stack, wait_for

from batchfed_lab.client import Client, connect
from batchfed_lab.config.workspace import CONNECTION_STRING_ENV
from batchfed_lab.proxy import lifecycle
from batchfed_lab.store import ActionState

FED = "remote"


def _settings(prefix: str) -> str:
    # Azure blob leases last 15-60 s; heartbeats come every 2 s either way
    return (
        f"store: {{backend: azure, azure: {{credential: connection_string, prefix: {prefix}}}}}\n"
        "proxy: {lease_seconds: 15, renew_seconds: 1, workers: 4}\n"
    )


@pytest.fixture(scope="module")
def two(azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Client, lifecycle.ProxyProcess]]:
    saved = os.environ.get(CONNECTION_STRING_ENV)
    os.environ[CONNECTION_STRING_ENV] = azurite.connection_string
    root = tmp_path_factory.mktemp("two")
    settings = _settings("r" + uuid.uuid4().hex[:12])
    try:
        with running_stack(root / "a", settings=settings) as a:
            (root / "b").mkdir()
            (root / "b" / "settings.yaml").write_text(settings)
            b = connect(root / "b")
            a.federation(FED, ["we-native"])
            proxy = a.start_proxy()
            try:
                yield a, b, proxy
            finally:
                b.close()
                if lifecycle.pid_alive(proxy.pid):  # the test failed before its stop: stop it by pid
                    os.kill(proxy.pid, signal.SIGTERM)
                    wait_for(lambda: not lifecycle.pid_alive(proxy.pid), 40, "the proxy to exit")
    finally:
        if saved is None:
            os.environ.pop(CONNECTION_STRING_ENV, None)
        else:
            os.environ[CONNECTION_STRING_ENV] = saved


def _cli(b: Client, *args: str) -> str:
    from batchfed_lab.cli import main

    result = CliRunner().invoke(main, ["fed", "proxy", *args], env={"BATCHFED_HOME": str(b.workspace.path)})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_other_workspace_watches_suspends_resumes_stops_and_reads_the_proxy(two) -> None:
    a, b, proxy = two
    assert lifecycle.running(b.workspace) == [], "B runs no proxy of its own"

    # status: the remote leader, from its heartbeat; B's reads keep its record
    row = wait_for(
        lambda: next((r for r in b.proxy_status() if r["proxy_id"] == proxy.proxy_id and r["leader"]), None),
        30,
        "B to see the leader",
    )
    assert (row["running"], row["role"], row["stale"], row["local"], row["pid"]) == (True, "leader", False, False, proxy.pid)
    (raw,) = json.loads(_cli(b, "status", "--raw"))
    assert (raw["proxy_id"], raw["role"], raw["running"]) == (proxy.proxy_id, "leader", True)
    assert b.store.get_proxy(proxy.proxy_id) is not None, "the remote proxy's record is kept"
    assert lifecycle.running(a.client.workspace)[0].pid == proxy.pid

    # logs: from the append blobs (B has no log file of this proxy)
    assert not list((b.workspace.logs_dir).glob("*.log"))
    wait_for(lambda: "started" in b.proxy_logs(200), 30, "the proxy's start line in its log blob")
    assert f"proxy {proxy.proxy_id}" in _cli(b, "logs", "-n", "200")
    followed: list[str] = []
    follower = threading.Thread(target=lambda: followed.extend(b.proxy_logs_follow(5, poll=0.2)), daemon=True)
    follower.start()

    # suspend: acknowledged by the remote proxy; a job submitted meanwhile stays queued
    ack = b.proxy_suspend(timeout=20)
    assert (ack.obeyed, ack.pending) == ([proxy.proxy_id], [])
    sub = b.submit(FED, "job_specifications:\n- id: held-remote\n  tasks: [{command: 'true'}]\n")
    seen = b.store.get_proxy(proxy.proxy_id).heartbeat_at
    for _ in range(2):  # two heartbeats of the suspended proxy with the job waiting
        wait_for(lambda s=seen: b.store.get_proxy(proxy.proxy_id).heartbeat_at > s, 20, "a heartbeat")
        seen = b.store.get_proxy(proxy.proxy_id).heartbeat_at
    assert b.store.get_proxy(proxy.proxy_id).info["suspended"] is True
    assert sub.actions()[0].state is ActionState.QUEUED

    # resume: acknowledged, and the job is placed
    ack = b.proxy_resume(timeout=20)
    assert ack.obeyed == [proxy.proxy_id]
    assert [x.state for x in sub.wait(60)] == [ActionState.PLACED]

    # stop: through the store; the process on A's side exits
    assert b.proxy_stop(timeout=60) == [proxy.proxy_id]
    wait_for(lambda: not lifecycle.pid_alive(proxy.pid), 20, "the proxy process to exit")
    assert [r for r in b.proxy_status() if r["running"]] == []
    follower.join(timeout=30)
    assert not follower.is_alive(), "following ends when the proxy stops"
    assert "a stop was requested through the store" in "".join(followed)


def test_stopping_a_proxy_that_does_not_run_is_one_clear_line(two) -> None:
    from batchfed_lab.cli import main

    _, b, _ = two
    result = CliRunner().invoke(
        main, ["fed", "proxy", "stop", "--proxy-id", "nobody", "--timeout", "1"], env={"BATCHFED_HOME": str(b.workspace.path)}
    )
    assert result.exit_code == 1
    assert result.output.strip() == "error: proxy 'nobody' is not running: no process here, no fresh heartbeat in the store"


def test_the_store_keeps_the_logs_per_proxy(two) -> None:
    _, b, proxy = two
    container = b.store.log_container()
    wait_for(lambda: any(x.name.startswith(f"{proxy.proxy_id}/") for x in container.list_blobs()), 30, "a log blob")
    assert Path(next(x.name for x in container.list_blobs())).suffix == ".log"
