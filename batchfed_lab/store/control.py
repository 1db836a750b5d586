"""Commands to one proxy through the store, for proxies on other machines: a flag per proxy
that the proxy polls and obeys (today: stop). Suspend and resume need none of this: they are
the store-wide ``suspended`` flag, which every claim honours."""

from __future__ import annotations

import hashlib

from . import rules
from .primitives import StorePrimitives


def stop_flag(proxy_id: str) -> str:
    """The flag that asks ``proxy_id`` to stop. Hashed: a proxy id may hold characters that
    Azure Table row keys refuse, and flag names are row keys there."""
    digest = hashlib.sha256(rules.name(proxy_id, "proxy id").encode("utf-8")).hexdigest()[:32]
    return f"stop-{digest}"


class ProxyControl(StorePrimitives):
    """``request_stop`` (any machine), ``stop_requested`` / ``clear_stop`` (the proxy)."""

    def request_stop(self, proxy_id: str) -> None:
        """Ask ``proxy_id`` to shut down cleanly. It sees the request at its next heartbeat
        (at once where it watches the store's control mark), clears it and stops; its
        record disappears when it is done, which is how the requester learns it obeyed."""
        self._set_flag(stop_flag(proxy_id), True)

    def stop_requested(self, proxy_id: str) -> bool:
        return self._get_flag(stop_flag(proxy_id))

    def clear_stop(self, proxy_id: str) -> None:
        """Withdraw a stop request (the proxy does this when it obeys, and when it starts, so
        a request left for a dead incarnation does not stop the next one)."""
        self._set_flag(stop_flag(proxy_id), False)
