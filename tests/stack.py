"""The embedded stack for tests: a temp workspace, localbatch, pools over several accounts
and locations, federations, and the proxy as a detached process.

Use it as a context manager::

    with embedded_stack(tmp_path / "ws") as s:
        sub = s.client.submit("demo", JOBS_YAML)
        sub.wait(10)

or as a pytest fixture of any scope (``stack = stack_fixture("module")`` in a test module
or conftest). Federations are created *before* the proxy starts so it watches them from
its first loop. On exit the proxy and localbatch are stopped by pid and the exit fails if
any process of the workspace (server, proxy, task) survives.

``$BATCHFED_HOME`` points at the stack's workspace while it runs (so ``connect()``, the
CLI and ``%fed`` find it) and is restored afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from unittest.mock import patch

import pytest

from batchfed_lab.client import Client, connect
from batchfed_lab.config import load_pool

T = TypeVar("T")


@dataclass(frozen=True)
class PoolDef:
    """A localbatch pool: where it "is" and what it offers."""

    id: str
    account: str
    location: str
    vm_size: str = "standard_d2_v3"
    dedicated: int = 1
    slots: int = 2
    extra: tuple[tuple[str, Any], ...] = ()  # more pool_specification keys

    def spec(self) -> dict[str, Any]:
        body = {
            "id": self.id,
            "vm_size": self.vm_size,
            "location": self.location,
            "vm_count": {"dedicated": self.dedicated},
            "task_slots_per_node": self.slots,
            **dict(self.extra),
        }
        return {"pool_specification": body}


#: four pools, two accounts, three locations, one GPU size
DEFAULT_POOLS: tuple[PoolDef, ...] = (
    PoolDef("we-small", "lab1", "westeurope", "standard_d2_v3", dedicated=2, slots=2),
    PoolDef("we-big", "lab1", "westeurope", "standard_d16_v3", dedicated=1, slots=4),
    PoolDef("us-gpu", "lab2", "eastus", "standard_nc6s_v3", dedicated=1, slots=1),
    PoolDef("jp-small", "lab2", "japaneast", "standard_d2_v3", dedicated=1, slots=2),
)

LOCATIONS = ("westeurope", "eastus", "japaneast", "australiaeast")


def many_pools(n: int, *, prefix: str = "p", accounts: Sequence[str] = ("lab1", "lab2")) -> tuple[PoolDef, ...]:
    """``n`` small pools spread round-robin over ``accounts`` and four locations."""
    return tuple(
        PoolDef(f"{prefix}{i:03d}", accounts[i % len(accounts)], LOCATIONS[i % len(LOCATIONS)], dedicated=1, slots=2)
        for i in range(n)
    )


#: no blackout after a placement, so back-to-back test submissions are not held back
FAST_FEDERATION_YAML = """\
federation:
  proxy_options:
    polling_interval: {federations: 5, actions: 1}
    scheduling:
      after_success: {blackout_interval: 0}
"""


def wait_until(probe: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """Poll ``probe`` until it returns something truthy; AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(0.02)  # the poll interval of a deadline-bounded wait


def workspace_pids(root: Path) -> list[int]:
    """Live (non-zombie) processes whose command line or working folder is in ``root``."""
    needle, found = str(root), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and (needle in argv or cwd == needle or cwd.startswith(needle + os.sep)):
            found.append(int(entry.name))
    return found


@dataclass
class Stack:
    """A running embedded stack. ``urls``: localbatch account → service URL."""

    root: Path
    client: Client
    urls: dict[str, str]
    pools: dict[str, PoolDef]
    config: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess (``batchfed …``) that should use this stack."""
        return {**os.environ, "BATCHFED_HOME": str(self.root)}

    def action_count(self, federation_id: str) -> int:
        """Every action the store holds for the federation, in any state."""
        return len(self.client.store.list_actions(federation_id))

    def total_actions(self) -> int:
        return sum(self.action_count(f.id) for f in self.client.federations())


def _create_pools(client: Client, urls: Mapping[str, str], pools: Sequence[PoolDef]) -> None:
    for p in pools:
        client.account(urls[p.account]).create_pool(load_pool(p.spec()).pool_specification)

    def steady() -> bool:
        snaps = [s for url in urls.values() for s in client.account(url).list_pools()]
        return len(snaps) >= len(pools) and all(s.allocation_state == "steady" for s in snaps)

    wait_until(steady, "the pools to reach their size", 30)


@contextmanager
def embedded_stack(
    root: Path,
    *,
    pools: Sequence[PoolDef] = DEFAULT_POOLS,
    federations: Mapping[str, Sequence[str] | None] = {"demo": None},
    non_unique: Collection[str] = (),
    proxy: bool = True,
    federation_yaml: str = FAST_FEDERATION_YAML,
    storage: bool = False,
    settings_yaml: str | None = None,
    relaxed_limits: bool = False,
) -> Iterator[Stack]:
    """Start the stack in a fresh workspace at ``root``.

    ``storage=True`` also starts the embedded Azurite (the storage account ``local``) as
    ``batchfed up`` does; ``settings_yaml`` is written as the workspace's settings.yaml first.
    ``relaxed_limits=True``: localbatch accepts recurrences of seconds (Azure's floor is a minute).

    ``federations`` maps a federation id to its pool ids (None: every pool of ``pools``;
    a pool belongs to one federation, so None can be used once); ids in ``non_unique``
    allow non-unique job ids. ``proxy=False`` leaves the proxy to the test.
    """
    from batchfed_lab.batch.adapter import close_accounts
    from batchfed_lab.data import local as local_storage
    from batchfed_lab.localbatch import control
    from batchfed_lab.proxy import lifecycle

    root.mkdir(parents=True, exist_ok=True)
    if settings_yaml is not None:
        (root / "settings.yaml").write_text(settings_yaml)
    clean_exit = False
    try:
        with patch.dict(os.environ, {"BATCHFED_HOME": str(root)}):
            client = connect(root)
            config = root / "federation.yaml"
            config.write_text(federation_yaml)
            try:
                control.start(client.workspace, allocation_delay_ms=20, relaxed_limits=relaxed_limits)
                if storage:
                    local_storage.start(client.workspace)
                accounts = sorted({p.account for p in pools})
                urls = {a: control.account_url(a, client.workspace) for a in accounts}
                _create_pools(client, urls, pools)
                by_id = {p.id: p for p in pools}
                for fed_id, members in federations.items():
                    client.create_federation(fed_id, unique_job_ids=fed_id not in non_unique)
                    chosen = [by_id[m] for m in members] if members is not None else list(pools)
                    for account in sorted({p.account for p in chosen}):
                        ids = [p.id for p in chosen if p.account == account]
                        client.add_pools(fed_id, pool_ids=ids, batch_service_url=urls[account])
                if proxy:
                    lifecycle.start(client.workspace, config=config)
                yield Stack(root, client, urls, by_id, config)
            finally:
                try:
                    lifecycle.stop(client.workspace, all=True)
                    control.stop(client.workspace)
                    local_storage.stop(client.workspace)  # started by a test's `up`, if any
                finally:
                    client.close()
                    close_accounts()
        clean_exit = True
    finally:
        try:
            wait_until(lambda: not workspace_pids(root), "every process of the workspace to exit", 10)
        except AssertionError:
            left = workspace_pids(root)
            for pid in left:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if clean_exit:  # while a test's own error propagates, do not hide it behind this one
                raise AssertionError(f"processes of {root} survived the stack: {left}") from None


def stack_fixture(scope: str = "module", **options: Any) -> Any:
    """A pytest fixture (of ``scope``) yielding a :class:`Stack` built with ``options``."""

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        with embedded_stack(tmp_path_factory.mktemp("stack") / "ws", **options) as s:
            yield s

    return stack


def batchfed_exe() -> list[str]:
    """The ``batchfed`` console script next to this Python, else on PATH, else the module."""
    exe = Path(sys.executable).with_name("batchfed")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("batchfed")
    return [found] if found else [sys.executable, "-c", "from batchfed_lab.cli import main; main()"]


def job_yaml(job_id: str, command: str = "echo hello", *, tasks: int = 1, constraints: str | None = None) -> str:
    """jobs.yaml text for one job of ``tasks`` identical tasks; ``constraints`` is a flow
    mapping such as ``"{pool: {location: eastus}}"``."""
    lines = ["job_specifications:", f"- id: {job_id}"]
    if constraints:
        lines.append(f"  federation_constraints: {constraints}")
    lines.append("  tasks:")
    lines += [f"  - command: {command}"] * tasks
    return "\n".join(lines) + "\n"
