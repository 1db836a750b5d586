"""The Azure store goes away mid-stream: the proxy must ride it out and lose nothing.

The store is Azure Storage served by Azurite; the Batch service is localbatch. Two outages:

* **pause** (short and full): Azurite is frozen with SIGSTOP, then thawed with SIGCONT.
  Connections stay open and requests hang, as when a storage front end stops answering.
  Azurite keeps its data (it runs in memory; nothing is restarted).
* **restart** (full only): Azurite runs with its data on disk (``--location``), is stopped
  (SIGTERM) and, once the proxy has met the refused connections, started again on the same
  ports. Connections are refused meanwhile, as when the service is down.

Submitting goes on during the outage from a thread: a submit that fails tells the caller so
(one-line error) and is not counted; every submit that returned ids must be placed exactly
once (counted in localbatch), and the proxy must still be the same live process, placing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from batchfed_lab.config.workspace import CONNECTION_STRING_ENV
from batchfed_lab.errors import BatchfedError
from batchfed_lab.proxy import lifecycle
from batchfed_lab.store.emulator import Azurite, find_azurite

from .common import REPO, Outcome, located_counts, running_stack, timed, wait_for

NAME = "azure_outage"
TITLE = "Azure store (Azurite) outage mid-stream"

SETTINGS = """\
store: {backend: azure, azure: {credential: connection_string, prefix: drill}}
proxy: {lease_seconds: 15, renew_seconds: 5, workers: 8}
"""


def run(root: Path, short: bool = False) -> Outcome:
    modes = [("pause", 5.0 if short else 20.0)] + ([] if short else [("restart", 15.0)])

    def body(out: Outcome) -> None:
        script = find_azurite(REPO)
        if script is None:
            out.bound("Azurite is installed (make azurite)", False)
            return
        for mode, pause in modes:
            _one(out, root.with_name(f"{root.name}-{mode}"), script, mode, pause, short)

    return timed(NAME, TITLE, body)


def _one(out: Outcome, root: Path, script: Path, mode: str, down: float, short: bool) -> None:
    data = root.parent / f"azurite-data-{mode}" if mode == "restart" else None  # not under the workspace path
    az = Azurite.start(script, location=data)
    old_env = os.environ.get(CONNECTION_STRING_ENV)
    os.environ[CONNECTION_STRING_ENV] = az.connection_string
    tag = f"{mode}:"
    try:
        with running_stack(root, settings=SETTINGS) as stack:
            fed = f"az{mode}"
            stack.federation(fed, ["we-native", "eus-hpc", "eus-lowpri", "jp-custom"])
            proxy = stack.start_proxy()
            store = stack.client.store
            accepted: list[str] = []
            refused: list[str] = []
            stop = threading.Event()

            def stream() -> None:  # 3 one-task jobs every 200 ms, through the outage
                n = 0
                while not stop.is_set():
                    body = "job_specifications:\n" + "".join(
                        f"- id: {fed}-{i:05d}\n  tasks: [{{command: 'true'}}]\n" for i in range(n, n + 3)
                    )
                    n += 3
                    try:
                        accepted.extend(stack.client.submit(fed, body).unique_ids)
                    except BatchfedError as exc:  # the caller is told; nothing of it may be placed
                        refused.append(str(exc))
                    stop.wait(0.2)

            feeder = threading.Thread(target=stream, name="az-stream", daemon=True)
            feeder.start()
            try:
                wait_for(lambda: store.counts(fed).placed >= 15, 120, "placements before the outage")
                before = store.counts(fed).placed
                t_down = time.monotonic()
                if mode == "pause":
                    os.kill(az.pid, signal.SIGSTOP)
                    # the outage lasts `down` seconds; the proxy's calls hang meanwhile
                    stop.wait(down)
                    os.kill(az.pid, signal.SIGCONT)
                else:
                    ports = dict(az.ports)
                    az.stop()
                    # stay down until the proxy has met the refused connections, and for at
                    # least `down` seconds (longer than the federations poll and the SDK retries)
                    wait_for(
                        lambda: _log_mentions(stack, "unreachable") and time.monotonic() - t_down >= down,
                        120,
                        "the proxy to meet the outage",
                    )
                    az = Azurite.start(script, location=data, ports=ports)
                outage = time.monotonic() - t_down
                t_up = time.monotonic()
                wait_for(lambda: _placed(store, fed) > before, 180, "the first placement after the outage")
                recovery = time.monotonic() - t_up
                flowing = 30 if short else 150
                wait_for(lambda: _placed(store, fed) >= before + flowing, 300, "the stream to flow again")
            finally:
                stop.set()
                feeder.join(60)
            total = len(accepted)
            wait_for(lambda: _placed(store, fed) + store.counts(fed).failed >= total, 300, f"all {total} accepted actions")
            counts = store.counts(fed)
            pools, tasks = located_counts(stack, fed)
            in_store = {a.id for a in store.list_actions(fed)}
            ghosts = in_store - set(accepted)  # enqueued although the caller was told it failed
            lost = len(set(accepted) - {a.id for a in store.list_actions(fed) if a.state.value == "placed"})
            dups = sum(n - 1 for n in pools.values()) + sum(n - 1 for n in tasks.values())
            alive = lifecycle.running(stack.client.workspace)
            same_proxy = [p.pid for p in alive] == [proxy.pid]
            out.figure(f"{tag} outage (s)", outage)
            out.figure(f"{tag} recovery: first placement after it (s)", recovery)
            out.figure(f"{tag} actions accepted / submits refused (one-line error)", f"{total} / {len(refused)}")
            out.figure(f"{tag} placed (jobs in localbatch)", len(pools))
            out.figure(f"{tag} failed (store)", counts.failed)
            out.figure(f"{tag} lost", lost)
            out.figure(f"{tag} duplicated (jobs + tasks)", dups)
            out.figure(f"{tag} enqueued although refused", len(ghosts))
            out.figure(f"{tag} proxy pid before / after", f"{proxy.pid} / {' '.join(str(p.pid) for p in alive) or 'none'}")
            out.bound(f"{tag} the proxy survived (same process, still running)", same_proxy)
            out.bound(f"{tag} lost = 0, failed = 0", lost == 0 and counts.failed == 0 and len(pools) == total)
            out.bound(f"{tag} duplicated = 0", dups == 0)
            out.bound(f"{tag} a refused submit left nothing behind", not ghosts)
            if refused:
                out.notes.append(f"{tag} a refused submit said: {refused[0][:160]}")
    finally:
        az.stop()
        if old_env is None:
            os.environ.pop(CONNECTION_STRING_ENV, None)
        else:
            os.environ[CONNECTION_STRING_ENV] = old_env


def _placed(store: Any, fed: str) -> int:
    try:
        return store.counts(fed).placed
    except BatchfedError:  # the drill's own reads meet the outage too
        return -1


def _log_mentions(stack: Any, word: str) -> bool:
    return any(word in p.read_text(errors="replace") for p in stack.client.workspace.logs_dir.glob("fedproxy-*.log"))
