"""Proxy benchmark on the Azure store (Azurite), in one run (``bench/proxy.py --store azure``).

Localbatch answers every Batch call after 100 ms, as in bench/proxy.py's (c). The proxy reaches
Azurite through a loopback forwarder (bench/netdelay.py) that adds 0 ms, then 10 ms, to every
storage call (in-region Azure Storage), and reaches localbatch through another that adds
nothing; both count the requests by kind. For each storage latency, on a fresh store prefix:

(a) submit → placed latency p50 / p99, one job at a time (target p50 ≤ 1 s);
(b) placements/s, one action per job id for ``ACTIONS`` ids, proxy in event mode;
(d) the same workload with the proxy in "original cadence" mode, and the ratio (target ≥ 5×).

Then where a placement's time goes: storage and Batch calls per placement, by kind; the
proxy's and Azurite's CPU per placement; and Azurite alone under the store's own round trips
from as many threads as the proxy has workers, to show whether Azurite is the ceiling.
The bench's own client talks to Azurite directly (not delayed, not counted). Latency comes from
the store's timestamps (enqueued_at → placed_at).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netdelay import Forwarders
from proxy import ACCOUNTS, FEDERATION_YAML, POOLS, create_pools, percentile

from batchfed_lab.batch.adapter import close_accounts
from batchfed_lab.client import connect
from batchfed_lab.localbatch import control
from batchfed_lab.proxy import lifecycle
from batchfed_lab.store import NewAction
from batchfed_lab.store.azure import AzureStore
from batchfed_lab.store.azure.connection import CONNECTION_STRING_ENV
from batchfed_lab.store.emulator import DEV_ACCOUNT, DEV_KEY, Azurite

WORKERS = 32  # as bench/proxy.py's (c): 100 ms Batch calls
BATCH_LATENCY_MS = 100
STORAGE_DELAYS_MS = (0, 10)
SERVICES = ("blob", "queue", "table")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def connection_string(ports: dict[str, int]) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};" + "".join(
        f"{s.capitalize()}Endpoint=http://127.0.0.1:{ports[s]}/{DEV_ACCOUNT};" for s in SERVICES
    )


class Bench:
    """One Azurite, one localbatch (100 ms a call), forwarders; a fresh store prefix per phase."""

    def __init__(self, root: Path, az: Azurite, net: Forwarders, quick: bool):
        self.root, self.az, self.net = root, az, net
        # the original cadence places ~0.2/s here (each action waits on ~30 Batch calls of 100 ms)
        self.actions, self.samples = (16, 10) if quick else (64, 40)
        self.direct = connection_string(az.ports)
        self.delayed = {
            ms: connection_string({s: net.add(s, az.ports[s], ms / 1000) for s in SERVICES}) for ms in STORAGE_DELAYS_MS
        }
        self.config = root / "federation.yaml"
        self.config.write_text(FEDERATION_YAML)
        self.phase = 0
        self.tag = ""
        os.environ[CONNECTION_STRING_ENV] = self.direct
        self.client = self.use_prefix("bsetup")
        control.start(self.client.workspace, allocation_delay_ms=10, latency_ms=BATCH_LATENCY_MS, relaxed_limits=True)
        info = control.info(self.client.workspace)
        assert info is not None
        self.batch_port = net.add("batch", info.port)
        create_pools(self.client)

    def use_prefix(self, prefix: str) -> Any:
        (self.root / "settings.yaml").write_text(
            f"store: {{backend: azure, azure: {{credential: connection_string, prefix: {prefix}}}}}\nproxy: {{workers: {WORKERS}}}\n"
        )
        self.net.prefix = prefix
        return connect(self.root)

    def federation(self, client: Any, fed: str) -> None:
        client.create_federation(fed, unique_job_ids=False)
        for n, account in enumerate(ACCOUNTS):
            ids = [f"pool-{i:03d}" for i in range(n, POOLS, len(ACCOUNTS))]
            client.add_pools(fed, pool_ids=ids, batch_service_url=f"http://127.0.0.1:{self.batch_port}/accounts/{account}")

    def run(self, delay_ms: int, mode: str, body: Callable[[Any, str], dict[str, float]]) -> dict[str, Any]:
        """Start a proxy on a fresh prefix with ``delay_ms`` per storage call; ``body`` measures."""
        self.phase += 1
        prefix = f"b{self.phase}{mode[0]}{delay_ms}"
        # job ids unique per phase: the Batch accounts are shared, and a job id of an earlier phase
        # would make every create a conflict (and extra Batch calls)
        self.tag = prefix
        client = self.use_prefix(prefix)
        try:
            self.federation(client, "fed")
            proxy, _ = lifecycle.start(
                client.workspace, config=self.config, mode=mode, extra_env={CONNECTION_STRING_ENV: self.delayed[delay_ms]}
            )
            idle = self.idle_calls()
            calls0, cpu0, az0, t0 = self.net.counts(), cpu_seconds(proxy.pid), cpu_seconds(self.az.pid), time.monotonic()
            out = body(client, "fed")
            wall = time.monotonic() - t0
            calls = self.net.counts() - calls0
            out["idle_calls_s"] = sum(idle.values())
            if body == self.latency:  # mostly waiting: take out what the proxy calls anyway meanwhile
                calls.subtract({k: v * wall for k, v in idle.items()})
            placed = out.get("placed", 0)
            out["proxy_cpu_ms"] = (cpu_seconds(proxy.pid) - cpu0) / max(placed, 1) * 1e3
            out["azurite_cpu_ms"] = (cpu_seconds(self.az.pid) - az0) / max(placed, 1) * 1e3
            out["azurite_busy"] = (cpu_seconds(self.az.pid) - az0) / wall
            out["calls"] = Counter({k: v / max(placed, 1) for k, v in calls.items()})
            return out
        finally:
            lifecycle.stop(client.workspace, all=True)
            client.close()

    def idle_calls(self, seconds: float = 3.0) -> Counter[tuple[str, str]]:
        """Storage calls per second of the proxy with nothing to do (its polling)."""
        time.sleep(1.0)  # let it settle after start (lease, registration)
        before = self.net.counts()
        time.sleep(seconds)  # a measuring window, not synchronisation
        return Counter({k: v / seconds for k, v in (self.net.counts() - before).items()})

    def latency(self, client: Any, fed: str) -> dict[str, float]:
        lat = []
        for i in range(self.samples):
            sub = client.submit(fed, f"job_specifications:\n- id: {self.tag}-lat{i:03d}\n  tasks: [{{command: 'true'}}]\n")
            sub.wait(timeout=60)
            (a,) = sub.actions()
            lat.append((a.placed_at - a.enqueued_at).total_seconds())
        return {"p50": statistics.median(lat), "p99": percentile(lat, 0.99), "placed": len(lat)}

    def throughput(self, client: Any, fed: str, timeout: float = 900) -> dict[str, float]:
        body = "job_specifications:\n" + "".join(
            f"- id: {self.tag}-j{i:03d}\n  tasks: [{{command: 'true'}}]\n" for i in range(self.actions)
        )
        began = time.monotonic()
        client.submit(fed, body)
        submitted = time.monotonic() - began  # inside the measured time: the store's enqueue of the batch
        deadline = time.monotonic() + timeout
        # the figures come from the store's timestamps: a coarse poll costs no accuracy and
        # keeps the bench's own reads (every action entity) off Azurite
        while (c := client.store.counts(fed)).placed + c.failed < self.actions:
            if time.monotonic() > deadline:
                raise SystemExit(f"{fed}: only {c.placed} of {self.actions} placed after {timeout:.0f}s ({c})")
            time.sleep(1.0)
        if c.failed:
            raise SystemExit(f"{fed}: {c.failed} action(s) failed")
        actions = client.store.list_actions(fed)
        start = min(a.enqueued_at for a in actions).timestamp()
        end = max(a.placed_at for a in actions if a.placed_at).timestamp()
        return {"rate": self.actions / (end - start), "placed": self.actions, "submit_s": submitted}

    def close(self) -> None:
        lifecycle.stop(self.client.workspace, all=True)
        control.stop(self.client.workspace)
        self.client.close()
        close_accounts()


def azurite_alone(az: Azurite, net: Forwarders, threads: int, seconds: float) -> dict[str, float]:
    """The store's enqueue → claim → placed round trips from ``threads`` threads (one
    federation each), straight at Azurite through a counting forwarder with no delay."""
    port = {s: net.add(s, az.ports[s]) for s in SERVICES}
    stores = [AzureStore.from_connection_string(connection_string(port), prefix="balone", retries=1) for _ in range(threads)]
    done = [0] * threads
    stop = threading.Event()

    def loop(n: int) -> None:
        st = stores[n]
        st.create_federation(f"f{n}", unique_job_ids=False)
        while not stop.is_set():
            st.enqueue(f"f{n}", [NewAction("job", "add", f"job-{done[n] % 50}", {"tasks": [{"id": "t1", "command": "true"}]})])
            claim = st.claim(f"f{n}", "bench")
            assert claim is not None
            st.mark_placed(claim)
            done[n] += 1

    workers = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    time.sleep(3)  # warm up: tables, federations, connections
    calls0, cpu0, done0, t0, own0 = net.counts(), cpu_seconds(az.pid), sum(done), time.monotonic(), time.process_time()
    time.sleep(seconds)  # a measuring window, not synchronisation
    wall = time.monotonic() - t0
    calls = sum((net.counts() - calls0).values())
    out = {
        "calls_s": calls / wall,
        "rt_s": (sum(done) - done0) / wall,
        "busy": (cpu_seconds(az.pid) - cpu0) / wall,
        "client_busy": (time.process_time() - own0) / wall,
        "client_cpu_ms": (time.process_time() - own0) / max(calls, 1) * 1e3,
    }
    stop.set()
    for w in workers:
        w.join(30)
    for st in stores:
        st.close()
    return out


def report(r: dict[str, Any], alone: dict[str, float], took: float) -> bool:
    ok = True
    print(
        f"Azure store on Azurite (this machine); {POOLS} pools over {len(ACCOUNTS)} accounts; {WORKERS} workers; "
        f"{BATCH_LATENCY_MS} ms per Batch call"
    )
    for ms in STORAGE_DELAYS_MS:
        lat, ours, orig = r[ms, "lat"], r[ms, "ours"], r[ms, "orig"]
        ratio = ours["rate"] / orig["rate"]
        p50_ok, ratio_ok = lat["p50"] <= 1.0, ratio >= 5
        ok = ok and p50_ok and ratio_ok
        print(f"\n+{ms} ms per storage call:")
        print(
            f"  (a) submit → placed: p50 {lat['p50'] * 1e3:.0f} ms (≤ 1000: {'met' if p50_ok else 'MISSED'}), "
            f"p99 {lat['p99'] * 1e3:.0f} ms over {lat['placed']}"
        )
        lat_storage = sum(v for (s, _), v in lat["calls"].items() if s != "batch")
        lat_batch = sum(v for (s, _), v in lat["calls"].items() if s == "batch")
        print(
            f"      one placement on its own: {lat_storage:.1f} storage calls, {lat_batch:.1f} Batch calls "
            f"(≥ {lat_batch * BATCH_LATENCY_MS:.0f} ms waiting on Batch); an idle proxy: {lat['idle_calls_s']:.1f} storage calls/s"
        )
        print(
            f"  (b) placements/s, {ours['placed']} job ids: {ours['rate']:.1f}/s (the submission itself took "
            f"{ours['submit_s']:.2f} s of it)"
        )
        print(
            f"  (d) original cadence, same workload: {orig['rate']:.2f}/s; ratio {ratio:.1f}× (≥ 5×: {'met' if ratio_ok else 'MISSED'})"
        )
        for name, phase in (("ours", ours), ("original", orig)):
            calls: Counter[tuple[str, str]] = phase["calls"]
            storage = sum(v for (s, _), v in calls.items() if s != "batch")
            batch = sum(v for (s, _), v in calls.items() if s == "batch")
            print(
                f"  per placement, {name}: {storage:.1f} storage calls, {batch:.1f} Batch calls, proxy CPU "
                f"{phase['proxy_cpu_ms']:.1f} ms, Azurite CPU {phase['azurite_cpu_ms']:.1f} ms (Azurite busy "
                f"{phase['azurite_busy']:.0%} of a core)"
            )
        for (service, kind), v in sorted(ours["calls"].items(), key=lambda kv: -kv[1]):
            if v >= 0.05:
                print(f"      {v:5.2f}  {service:<5} {kind}")
    ours0 = r[0, "ours"]
    used = sum(v for (s, _), v in ours0["calls"].items() if s != "batch") * ours0["rate"]
    print(
        f"\nAzurite alone, the store's enqueue→claim→placed from {WORKERS} threads: {alone['calls_s']:.0f} storage calls/s "
        f"({alone['rt_s']:.1f} round trips/s), Azurite busy {alone['busy']:.0%} of a core; the proxy's (b) at +0 ms "
        f"drove {used:.0f} storage calls/s ({used / alone['calls_s']:.0%} of that)"
    )
    print(
        f"  the calling process was busy {alone['client_busy']:.0%} of a core, {alone['client_cpu_ms']:.1f} ms of CPU per "
        f"storage call (the SDK's pipeline and this bench's forwarder): the Python side, not Azurite, is the limit "
        f"when Azurite is busy well under a core"
    )
    print(
        f"  the proxy's CPU per placement at +0 ms ({ours0['proxy_cpu_ms']:.0f} ms) caps one proxy at "
        f"~{1000 / ours0['proxy_cpu_ms']:.0f} placements/s on one free core"
    )
    print(f"benchmark took {took:.0f}s")
    return ok


def main(quick: bool = False) -> int:
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="batchfed-bench-az-")) / "ws"
    root.mkdir()
    saved = {k: os.environ.get(k) for k in ("BATCHFED_HOME", CONNECTION_STRING_ENV)}
    os.environ["BATCHFED_HOME"] = str(root)
    az = Azurite.start()
    results: dict[tuple[int, str], dict[str, Any]] = {}
    try:
        with Forwarders() as net:
            bench = Bench(root, az, net, quick)
            try:
                for ms in STORAGE_DELAYS_MS:
                    results[ms, "lat"] = bench.run(ms, "event", bench.latency)
                    results[ms, "ours"] = bench.run(ms, "event", bench.throughput)
                    results[ms, "orig"] = bench.run(ms, "original", bench.throughput)
            finally:
                bench.close()
            alone = azurite_alone(az, net, WORKERS, 5 if quick else 15)
    finally:
        az.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return 0 if report(results, alone, time.monotonic() - t0) else 1
