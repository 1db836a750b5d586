"""Fair-share benchmark on the embedded stack (detached proxy + localbatch + SQLite), in one run:

(a) user A enqueues 2,000 actions; once 200 of them are placed, user B enqueues 10 (equal
    shares): B's first placement waits ≤ 1 s (enqueued → placed), and B's 10 are all placed before A's next 100;
(b) shares A:B = 3:1, both with 1,000 actions queued (enqueued while the proxy is suspended,
    so both start together): the placement ratio while both have work queued is 3:1 ± 10 %.

Two users on one machine: each client opens the workspace's store under its own identity
(a store subclass standing in for two logins; the proxy never learns names from clients).
Figures come from the store's timestamps. Run: ``.venv/bin/python bench/fairshare.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from batchfed_lab.batch.adapter import close_accounts
from batchfed_lab.client import Client, connect
from batchfed_lab.config import load_pool
from batchfed_lab.localbatch import control
from batchfed_lab.proxy import lifecycle
from batchfed_lab.store.identity import Submitter
from batchfed_lab.store.sqlite import SqliteStore

POOLS = 20
A_HEAD_START = 200
WORKERS = 8
FEDERATION_YAML = """\
federation:
  proxy_options:
    logging: {{level: info}}
    scheduling: {{after_success: {{blackout_interval: 0, evaluate_autoscale: false}}}}
  accounting:
    fair_share: {{shares: {{{shares}}}}}
"""


class StoreAs(SqliteStore):
    """The workspace's store under another user's identity (the bench's second login)."""

    def __init__(self, path: Path, who: str):
        super().__init__(path)
        self._as = Submitter(who, f"os:{who}@bench")

    def _identity(self) -> Submitter:
        return self._as


def start_stack(root: Path, shares: str) -> tuple[Client, Path]:
    (root / "settings.yaml").write_text(f"proxy: {{workers: {WORKERS}}}\n")
    config = root / "federation.yaml"
    config.write_text(FEDERATION_YAML.format(shares=shares))
    client = connect(root)
    control.start(client.workspace, allocation_delay_ms=10, relaxed_limits=True)
    url = control.account_url("bench1", client.workspace)
    for i in range(POOLS):
        spec = load_pool(
            {
                "pool_specification": {
                    "id": f"pool-{i:03d}",
                    "vm_size": "standard_d4_v3",
                    "location": "westeurope",
                    "vm_count": {"dedicated": 2},
                    "task_slots_per_node": 4,
                }
            }
        ).pool_specification
        client.account(url).create_pool(spec, exists_ok=True)
    client.create_federation("lab", unique_job_ids=False)
    client.add_pools("lab", pool_ids=[f"pool-{i:03d}" for i in range(POOLS)], batch_service_url=url)
    lifecycle.start(client.workspace, config=config)
    return client, config


def as_user(client: Client, who: str) -> Client:
    return Client(client.workspace, store=StoreAs(client.workspace.sqlite_path, who))


def jobs(prefix: str, n: int) -> str:
    return "job_specifications:\n" + "".join(f"- id: {prefix}{i:04d}\n  tasks: [{{command: 'true'}}]\n" for i in range(n))


def wait_placed(client: Client, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (c := client.store.counts("lab")).placed + c.failed < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {c.placed} of {total} placed after {timeout:.0f}s ({c})")
        time.sleep(0.2)


def late_user(client: Client) -> dict[str, float]:
    ada, bob = as_user(client, "ada"), as_user(client, "bob")
    ada.submit("lab", jobs("a", 2000))
    wait_placed(client, A_HEAD_START, 120)  # A's backlog is being worked on when B arrives
    bob_at = time.time()
    bob.submit("lab", jobs("b", 10))
    wait_placed(client, 2010, 600)
    acts = [a for a in client.store.list_actions("lab") if a.placed_at]
    b_acts = sorted((a for a in acts if a.submitter == "bob"), key=lambda a: a.placed_at)
    first_wait = (b_acts[0].placed_at - b_acts[0].enqueued_at).total_seconds()
    b_last = b_acts[-1].placed_at
    a_between = sum(1 for a in acts if a.submitter == "ada" and bob_at <= a.placed_at.timestamp() <= b_last.timestamp())
    a_before = sum(1 for a in acts if a.submitter == "ada" and a.placed_at.timestamp() < bob_at)
    for c in (ada, bob):
        c.close()
    return {"first_wait": first_wait, "a_between": a_between, "a_before": a_before}


def ratio_under_contention(client: Client) -> dict[str, float]:
    ada, bob = as_user(client, "ada"), as_user(client, "bob")
    client.store.set_suspended(True)  # both backlogs queued before the first placement
    ada.submit("lab", jobs("a", 1000))
    bob.submit("lab", jobs("b", 1000))
    client.store.set_suspended(False)
    wait_placed(client, 2000, 600)
    acts = sorted((a for a in client.store.list_actions("lab") if a.placed_at), key=lambda a: a.placed_at)
    start = max(min(a.enqueued_at for a in acts if a.submitter == u) for u in ("ada", "bob"))
    placed = [a.submitter for a in acts if a.placed_at >= start]
    # contention lasts until one user's backlog runs out: the first 1000 placements after both
    # enqueued (ada's 1000 run out first at 3:1: 750 + 250)
    window = placed[:1000]
    for c in (ada, bob):
        c.close()
    return {"ada": window.count("ada"), "bob": window.count("bob"), "ratio": window.count("ada") / max(1, window.count("bob"))}


def run(shares: str, body):  # type: ignore[no-untyped-def]
    root = Path(tempfile.mkdtemp(prefix="batchfed-bench-")) / "ws"
    root.mkdir()
    old = os.environ.get("BATCHFED_HOME")
    os.environ["BATCHFED_HOME"] = str(root)
    client, _ = start_stack(root, shares)
    try:
        return body(client)
    finally:
        lifecycle.stop(client.workspace, all=True)
        control.stop(client.workspace)
        client.close()
        close_accounts()
        if old is None:
            os.environ.pop("BATCHFED_HOME", None)
        else:
            os.environ["BATCHFED_HOME"] = old


def main() -> int:
    t0 = time.monotonic()
    a = run("", late_user)
    b = run("ada: 3, bob: 1", ratio_under_contention)
    ok = {
        "wait": a["first_wait"] <= 1.0,
        "before_100": a["a_between"] < 100,
        "ratio": 2.7 <= b["ratio"] <= 3.3,
    }
    mark = {True: "met", False: "MISSED"}
    print(f"{POOLS} pools, {WORKERS} proxy workers, SQLite store")
    print(
        f"(a) A enqueued 2,000, then B 10 (A had {a['a_before']:.0f} placed by then): B's first placement waited "
        f"{a['first_wait'] * 1e3:.0f} ms (≤ 1 s: {mark[ok['wait']]}); A placed {a['a_between']:.0f} while B's 10 "
        f"were placed (< 100: {mark[ok['before_100']]})"
    )
    print(
        f"(b) shares 3:1, 1,000 queued each: first 1,000 placements ada {b['ada']:.0f}, bob {b['bob']:.0f}, "
        f"ratio {b['ratio']:.2f}:1 (3:1 ± 10 %: {mark[ok['ratio']]})"
    )
    print(f"benchmark took {time.monotonic() - t0:.0f}s")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
