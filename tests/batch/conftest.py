"""One real localbatch per test session (temporary workspace, loopback, relaxed limits), stopped
by pid at the end; teardown fails if the server or any task process it started survives."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from batchfed_lab import runtime

T = TypeVar("T")
_ACCOUNT_SEQ = itertools.count()


def wait_for(probe: Callable[[], T], what: str, timeout: float = 20.0, interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)  # polling interval of a deadline-bounded wait, not a synchronisation sleep
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")


def processes_under(root: Path) -> list[tuple[int, str]]:
    """Live processes whose command line or working directory lies in ``root``."""
    found = []
    needle = str(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            if runtime.is_zombie(int(entry.name)):
                continue  # a zombie runs nothing
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                cwd = ""
        except OSError:
            continue
        if needle in argv or cwd.startswith(needle):
            found.append((int(entry.name), argv.strip()[:200]))
    return found


@pytest.fixture(scope="session")
def localbatch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from batchfed_lab.localbatch import control

    ws = tmp_path_factory.mktemp("lbws")
    info = control.start(ws, relaxed_limits=True, timeout=30)
    try:
        yield info
    finally:
        from batchfed_lab.batch.adapter import close_accounts

        close_accounts()
        control.stop(ws, timeout=10)
        # control.stop signals the pid recorded in the discovery file, then kills recorded task groups
        wait_for(lambda: not runtime.alive(info.pid), f"localbatch pid {info.pid} to exit", 10)
        left: list[tuple[int, str]] = []

        def nothing_left() -> bool:
            left[:] = processes_under(ws)
            return not left

        try:
            wait_for(nothing_left, "every process of the workspace to exit", 10)
        except AssertionError:
            raise AssertionError(f"processes survived localbatch: {left}") from None


@pytest.fixture(scope="session")
def lb_workspace(localbatch: Any) -> Path:
    return Path(localbatch.workspace)


@pytest.fixture
def account(localbatch: Any, lb_workspace: Path) -> Iterator[Any]:
    """A fresh account (accounts are implicit in localbatch) so pool listings start empty."""
    from batchfed_lab.batch.adapter import BatchAccount

    name = f"t{os.getpid() % 10000}n{next(_ACCOUNT_SEQ)}"
    acct = BatchAccount(localbatch.account_url(name), workspace=lb_workspace)
    yield acct
    acct.close()
