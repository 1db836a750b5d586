"""Every file and folder the stack creates in the workspace is owner-only: settings, the
SQLite store (and its WAL), the localbatch key and state, discovery files, logs, task folders
and task output. Files a task itself writes in its working folder follow its umask, but sit
inside owner-only folders, so nobody else can reach them either."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from security_helpers import files_under
from stack import Stack


def _loose(root: Path) -> list[str]:
    bad = []
    for path in [root, *files_under(root)]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & 0o077:
            bad.append(f"{path.relative_to(root.parent)}: {stat.filemode(st.st_mode)}")
    return bad


def test_everything_the_stack_created_is_owner_only(secret_stack: tuple[Stack, Any], tmp_path: Path) -> None:
    stack, _ = secret_stack
    c = stack.client
    # work that creates every kind of file: settings, store, tasks and their output, logs
    # a settings file written by hand with the usual umask (0644)
    c.workspace.settings_file.write_text("proxy: {workers: 8}\n")
    c.workspace.settings_file.chmod(0o644)
    sub = c.submit("sec", "job_specifications:\n- id: perms\n  tasks: [{command: 'echo out; echo err >&2'}]\n")
    sub.wait(30)
    c.proxy_status()
    c.proxy_logs()
    root = stack.root
    expected = ["store.sqlite", "localbatch/key", "localbatch/state.sqlite", "runtime/localbatch.json", "logs/localbatch.log"]
    for rel in expected:
        assert (root / rel).exists(), rel
    assert list((root / "runtime").glob("proxy-*.json")), "no proxy discovery file"
    assert list((root / "logs").glob("fedproxy-*.log")), "no proxy log"
    # task folders exist once the task ran
    from stack import wait_until

    from batchfed_lab.localbatch.launch import isolation

    # the node root is the workspace's own folder unless localbatch runs as root (then tasks run
    # as nobody under /var/lib/batchfed-localbatch, outside this owner-only check)
    wait_until(lambda: list((isolation.node_root(root / "localbatch") / "tasks").rglob("stdout.txt")), "task output", 20)
    c.close()
    from batchfed_lab.client import connect

    connect(root).close()  # opening the workspace tightens a settings file written loosely
    # federation.yaml is this test harness's own file, not the stack's
    loose = [p for p in _loose(root) if not p.startswith("ws/federation.yaml")]
    assert not loose, "not owner-only:\n" + "\n".join(loose)


def test_a_fresh_workspace_is_owner_only_even_with_a_loose_umask(tmp_path: Path) -> None:
    import os

    from batchfed_lab.client import connect

    old = os.umask(0o000)
    try:
        c = connect(tmp_path / "fresh")
        c.create_federation("perm-check")
        c.close()
    finally:
        os.umask(old)
    loose = _loose(tmp_path / "fresh")
    assert not loose, "not owner-only:\n" + "\n".join(loose)
