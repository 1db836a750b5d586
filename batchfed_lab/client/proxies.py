"""The proxy here (start, status, suspend, logs, stop), the embedded stack (up, down) and the
proxy deployed on Azure (create, destroy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results import TextOutput
from . import stackstate
from .base import ClientBase

if TYPE_CHECKING:
    import pandas as pd

    from ..data.local import LocalStorageInfo
    from ..deploy import DeployReport
    from ..proxy import Acknowledgement, ProxyProcess


class ProxiesMixin(ClientBase):
    """The proxy and the embedded stack of the workspace."""

    def proxy_start(self, *, config: Any = None, standby: bool = False) -> tuple[ProxyProcess, bool]:
        """Start a detached proxy (idempotent; ``standby`` starts one more for HA).
        Returns ``(proxy, started)``."""
        from .. import proxy

        res = proxy.start(self.workspace, config=config, standby=standby)
        if res[1]:
            stackstate.note_for_lab(self.workspace)
        return res

    def proxy_stop(self, *, all: bool = False, proxy_id: str | None = None, timeout: float = 40.0) -> list[str]:
        """Stop a proxy wherever it runs; returns the stopped ids. One of this machine is
        signalled; one elsewhere gets a stop request through the store and is waited for
        (``timeout``). Without ``proxy_id``: the first local proxy, else the remote leader;
        ``all``: every live proxy sharing the store."""
        from .. import proxy

        return proxy.stop_anywhere(self.workspace, self.store, all=all, proxy_id=proxy_id, timeout=timeout)

    def proxy_status(self) -> list[dict[str, Any]]:
        """Every proxy sharing the store, wherever it runs, from its heartbeat (a record
        whose heartbeat is older than its lease is reported stale, then cleaned)."""
        from .. import proxy

        return proxy.status(self.workspace, store=self.store)

    def proxy_status_frame(self) -> pd.DataFrame:
        from ..frames import proxies_frame

        return proxies_frame(self.proxy_status())

    def proxy_suspend(self, *, timeout: float = 10.0) -> Acknowledgement:
        """Running proxies, wherever they run, stop claiming actions (metadata and queues are
        kept); waits until each reports it (``timeout``; the flag holds in the store regardless)."""
        from .. import proxy

        return proxy.suspend(self.workspace, self.store, True, timeout=timeout)

    def proxy_resume(self, *, timeout: float = 10.0) -> Acknowledgement:
        """Running proxies pick up at once; waits until each reports it (``timeout``)."""
        from .. import proxy

        return proxy.suspend(self.workspace, self.store, False, timeout=timeout)

    def proxy_logs(self, lines: int = 50, *, proxy_id: str | None = None) -> TextOutput:
        """The tail of the proxy log: this machine's file, or a remote proxy's log blobs."""
        from .. import proxy

        return TextOutput(proxy.log_tail(self.workspace, lines, store=self.store, proxy_id=proxy_id))

    def proxy_logs_follow(self, lines: int = 50, *, proxy_id: str | None = None, poll: float = 1.0) -> Iterator[str]:
        """The tail, then the proxy's new log text as it is written, until that proxy stops."""
        from .. import proxy

        return proxy.follow_logs(self.workspace, lines, store=self.store, proxy_id=proxy_id, poll=poll)

    def up(self, *, config: Any = None) -> dict[str, Any]:
        """Bring the embedded stack up: localbatch, the embedded Azurite (the storage account
        ``local``, when Azurite is installed; a warning otherwise), then the proxy (each idempotent).

        The proxy options come from ``config`` (federation.yaml), else from the last ``up``
        given one, else the defaults; a bad config is refused before anything starts, and a
        failed start stops the localbatch this call started. Returns ``{"localbatch":
        LocalBatchInfo, "proxy": ProxyProcess, "storage": LocalStorageInfo | None, "storage_started":
        bool, "started": bool, "localbatch_started": bool,
        "config": str | None, "config_source": "given" | "last up" | "running" | "defaults",
        "suspended": bool, "warnings": [str]}``."""
        from .. import localbatch
        from ..data import local as local_storage

        chosen, source, warnings = self._proxy_config(config)
        before = localbatch.info(self.workspace.path)
        lb = localbatch.start(self.workspace)
        lb_started = before is None or before.pid != lb.pid
        storage, storage_started = None, False
        try:
            storage, storage_started, storage_warnings = self._start_local_storage()
            warnings += storage_warnings
            proxy, started = self.proxy_start(config=chosen)
        except BaseException:
            if storage_started:
                local_storage.stop(self.workspace)
            if lb_started:
                localbatch.stop(self.workspace)
            raise
        if lb_started or started or storage_started:
            stackstate.mark_started(self.workspace)
        if chosen is not None and source == "given" and started:
            stackstate.remember_config(self.workspace, chosen)
        if not started:
            source = "running"
            warnings += _running_keeps(proxy.config, chosen)
        return {
            "localbatch": lb,
            "proxy": proxy,
            "storage": storage,
            "storage_started": storage_started,
            "started": started,
            "localbatch_started": lb_started,
            "config": proxy.config if not started else (str(chosen) if chosen else None),
            "config_source": source,
            "suspended": self.store.is_suspended(),
            "warnings": warnings,
        }

    def _start_local_storage(self) -> tuple[LocalStorageInfo | None, bool, list[str]]:
        """The embedded Azurite, started on every ``up`` where Azurite is installed: whether a
        workspace uses storage is only known when a later command or job names ``local``."""
        from ..data import local as local_storage

        if not local_storage.available():
            return None, False, ["Azurite is not installed (`make azurite`): the storage account 'local' is unavailable"]
        before = local_storage.info(self.workspace)
        rec = local_storage.start(self.workspace)
        return rec, before is None or before.pid != rec.pid, []

    def _proxy_config(self, config: Any) -> tuple[Path | None, str, list[str]]:
        """The federation.yaml ``up`` runs the proxy with (validated), where it came from, and
        what to warn about."""
        from ..config import load_federation

        if config is not None:
            path = Path(config).expanduser().absolute()
            load_federation(path)
            return path, "given", []
        last = stackstate.remembered_config(self.workspace)
        if last is None:
            return None, "defaults", []
        if not last.is_file():
            return None, "defaults", [f"{last} (the last up's) is gone: the proxy runs with default options"]
        load_federation(last)
        return last, "last up", []

    def down(self, *, if_started_here: bool = False) -> dict[str, Any]:
        """Stop every proxy of the workspace, then localbatch (its task processes too) and the
        embedded Azurite (its blobs stay in the workspace).
        ``if_started_here``: only if this process started the stack (``up``); otherwise it is
        left running (``left_running``), as a notebook should leave a stack it did not start."""
        from .. import localbatch, proxy
        from ..data import local as local_storage

        if if_started_here and not stackstate.started_here(self.workspace):
            running = bool(proxy.running(self.workspace)) or localbatch.info(self.workspace.path) is not None
            running = running or local_storage.info(self.workspace) is not None
            return {"proxies": [], "localbatch": False, "storage": False, "left_running": running}
        stopped = proxy.stop(self.workspace, all=True)  # this machine's: a proxy elsewhere keeps running
        res = {
            "proxies": stopped,
            "localbatch": localbatch.stop(self.workspace),
            "storage": local_storage.stop(self.workspace),
            "left_running": False,
        }
        stackstate.forget_started(self.workspace)
        return res

    # -- the proxy on Azure ------------------------------------------------------------
    def proxy_create(self, *, config: Any, standby: int = 0, what_if: bool = False, azure: Any = None) -> DeployReport:
        """Deploy the proxy to Azure Container Instances (a leader and ``standby`` standbys)
        from federation.yaml; ``what_if`` only shows the template, parameters and role
        assignments (and runs ARM what-if when an Azure login is at hand). ``azure``: a
        factory of :class:`~batchfed_lab.deploy.AzureApi` (tests pass a fake)."""
        from .. import deploy

        return deploy.create(self.workspace, self.store, config, standby=standby, what_if=what_if, azure=azure)

    def proxy_destroy(
        self, *, config: Any, standby: int = 0, what_if: bool = False, purge: bool = False, azure: Any = None
    ) -> DeployReport:
        """Remove the deployed proxies' role assignments and container groups; federation
        data stays unless ``purge``. ``what_if`` lists what would go."""
        from .. import deploy

        return deploy.destroy(self.workspace, self.store, config, standby=standby, what_if=what_if, purge=purge, azure=azure)


def _running_keeps(running: str | None, asked: Path | None) -> list[str]:
    """A running proxy is not restarted by ``up``: say so when other options were asked for."""
    if asked is None or (running is not None and Path(running) == asked):
        return []
    was = running or "the defaults"
    return [f"the running proxy keeps the options of {was}; `down`, then `up --config {asked}`, applies {asked}"]
