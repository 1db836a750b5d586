"""batchfed_lab.proxy: the daemon that places queued actions, and what a client needs of it.

The client reaches the proxy only through the names below: the lifecycle of the background
process (``start``, ``stop``, ``status``, ``log_tail``), what reaches a proxy wherever it
runs through the store (``stop_anywhere``, ``suspend``, ``follow_logs``, ``Acknowledgement``), a one-off capacity read as the proxy
would make it (``live_snapshots``) and the action payloads it understands (``add_payload``,
``parse_add``, ``remove_payload``). Names are imported on first use (PEP 562), so importing one submodule
(the daemon process imports ``daemon``) does not load the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from .capacity import live_snapshots as live_snapshots
    from .lifecycle import ProxyProcess as ProxyProcess
    from .lifecycle import follow_logs as follow_logs
    from .lifecycle import logs as log_tail  # noqa: F401  (exported as log_tail through __getattr__)
    from .lifecycle import running as running
    from .lifecycle import start as start
    from .lifecycle import status as status
    from .lifecycle import stop as stop
    from .lifecycle import stop_anywhere as stop_anywhere
    from .lifecycle import suspend as suspend
    from .payload import add_payload as add_payload
    from .payload import parse_add as parse_add
    from .payload import remove_payload as remove_payload
    from .remote import Acknowledgement as Acknowledgement

# name -> (module, attribute); ``log_tail`` is not ``logs``, which is a submodule's name
_EXPORTS = {
    "ProxyProcess": (".lifecycle", "ProxyProcess"),
    "start": (".lifecycle", "start"),
    "stop": (".lifecycle", "stop"),
    "status": (".lifecycle", "status"),
    "log_tail": (".lifecycle", "logs"),
    "running": (".lifecycle", "running"),
    "stop_anywhere": (".lifecycle", "stop_anywhere"),
    "suspend": (".lifecycle", "suspend"),
    "follow_logs": (".lifecycle", "follow_logs"),
    "Acknowledgement": (".remote", "Acknowledgement"),
    "live_snapshots": (".capacity", "live_snapshots"),
    "add_payload": (".payload", "add_payload"),
    "parse_add": (".payload", "parse_add"),
    "remove_payload": (".payload", "remove_payload"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where[0], __name__), where[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
