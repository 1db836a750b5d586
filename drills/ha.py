"""HA: a leader and a standby; the leader is killed (-9) again and again during a stream.

Failover time = from the kill until a proxy other than the dead one holds the leader lease
*and* has placed an action (so a takeover that does not work does not count). After each
takeover a fresh standby is started, so two proxies run at every kill. Lost and duplicated
are counted in localbatch at the end.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from batchfed_lab.proxy import lifecycle

from .common import Outcome, located_counts, running_stack, timed, wait_for

NAME = "ha"
TITLE = "HA: two proxies, the leader killed again and again"


def run(root: Path, short: bool = False) -> Outcome:
    kills = 5
    # short: 3 s lease renewed every second; full: the production defaults (15 s, renewed every 5 s)
    lease, renew = (3.0, 1.0) if short else (15.0, 5.0)
    settings = f"proxy: {{lease_seconds: {lease:g}, renew_seconds: {renew:g}, workers: 8}}\n"

    def body(out: Outcome) -> None:
        fed = "ha"
        out.figure("lease / renew (s)", f"{lease:g} / {renew:g}")
        with running_stack(root, settings=settings) as stack:
            stack.federation(fed, ["we-native", "eus-hpc", "eus-lowpri", "jp-custom"])
            store = stack.client.store
            procs = {p.proxy_id: p for p in (stack.start_proxy(), stack.start_proxy(standby=True))}
            submitted: list[str] = []
            stop = threading.Event()
            errors: list[BaseException] = []

            def stream() -> None:  # 5 one-task jobs every 100 ms until the drill ends
                n = 0
                try:
                    while not stop.is_set():
                        body = "job_specifications:\n" + "".join(
                            f"- id: {fed}-{i:05d}\n  tasks: [{{command: 'true'}}]\n" for i in range(n, n + 5)
                        )
                        submitted.extend(stack.client.submit(fed, body).unique_ids)
                        n += 5
                        stop.wait(0.1)
                except BaseException as exc:
                    errors.append(exc)

            def leader_id() -> str | None:
                held = store.get_lease("proxy-leader")
                return held.holder if held is not None else None

            wait_for(lambda: leader_id() in procs, lease + renew + 10, "a first leader")
            feeder = threading.Thread(target=stream, name="ha-stream", daemon=True)
            feeder.start()
            failovers: list[float] = []
            lease_takeovers: list[float] = []
            try:
                for _ in range(kills):
                    wait_for(lambda: store.counts(fed).placed >= 20 + 25 * len(failovers), 60, "placements before a kill")
                    dead = procs.pop(leader_id())  # type: ignore[arg-type]
                    placed_at_kill = store.counts(fed).placed
                    stack.kill9(dead)
                    killed = time.monotonic()
                    # the killed pid is gone; its slot id may be reused by the next standby,
                    # so "taken over" = the lease holder is one of the live proxies
                    wait_for(lambda: leader_id() in procs, lease + renew + 30, "a standby to take the lease")
                    lease_takeovers.append(time.monotonic() - killed)
                    wait_for(lambda: store.counts(fed).placed > placed_at_kill, lease + renew + 30, "the new leader to place")
                    failovers.append(time.monotonic() - killed)
                    fresh = stack.start_proxy(standby=True)
                    procs[fresh.proxy_id] = fresh
            finally:
                stop.set()
                feeder.join(30)
            total = len(submitted)
            t_drain = time.monotonic()
            wait_for(lambda: store.counts(fed).placed + store.counts(fed).failed >= total, 300, f"all {total} actions")
            drain = time.monotonic() - t_drain
            counts = store.counts(fed)
            pools, tasks = located_counts(stack, fed)
            lost = total - len(pools)
            dups = sum(n - 1 for n in pools.values()) + sum(n - 1 for n in tasks.values())
            out.figure("kills", len(failovers))
            out.figure("lease takeover (s) per kill", " ".join(f"{x:.2f}" for x in lease_takeovers))
            out.figure("failover (s) per kill", " ".join(f"{x:.2f}" for x in failovers))
            out.figure("worst failover (s)", max(failovers))
            out.figure("actions", total)
            out.figure("drain after the last failover (s)", drain)
            out.figure("placed (jobs in localbatch)", len(pools))
            out.figure("lost", lost)
            out.figure("duplicated (jobs + tasks)", dups)
            out.figure("proxies alive at the end", len(lifecycle.running(stack.client.workspace)))
            out.bound("the stream submitted without error", not errors)
            out.bound(f"{kills} leader kills, each taken over", len(failovers) == kills)
            out.bound(f"worst failover {max(failovers):.2f} s <= lease + 5 s = {lease + 5:g} s", max(failovers) <= lease + 5)
            out.bound("lost = 0", lost == 0 and counts.failed == 0 and counts.placed == total)
            out.bound("duplicated = 0", dups == 0)

    return timed(NAME, TITLE, body)
