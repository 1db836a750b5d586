"""Store contention: 8 processes enqueue into one federation at once while 2 more claim.

Every enqueuer writes its own sequence over 20 shared job ids in batches of 1-10 actions
(one transaction each); two claimer processes drain the queue at the same time. Checked
from the store and the claimers' logs: every action accounted (present once, claimed once),
and FIFO per job id: each job id's actions are claimed in position order, and each
enqueuer's actions of one job id in the order it enqueued them.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from batchfed_lab.config.workspace import CONNECTION_STRING_ENV, open_workspace
from batchfed_lab.store import open_store

from .common import REPO, Outcome, timed

NAME = "contention"
TITLE = "store contention: 8 enqueuing processes (and 2 claiming) on one federation"

ENQUEUERS, CLAIMERS, TARGETS = 8, 2, 20


def run(root: Path, short: bool = False) -> Outcome:
    # SQLite: 8 x 500 either way; Azure (Azurite, far slower per call): 8 x 50 short, 8 x 500 full
    runs = [("sqlite", 500), ("azure", 50 if short else 500)]

    def body(out: Outcome) -> None:
        out.figure("processes", f"{ENQUEUERS} enqueuing (+{CLAIMERS} claiming), {TARGETS} job ids")
        for backend, per in runs:
            if backend == "azure":
                from batchfed_lab.store.emulator import Azurite, find_azurite

                script = find_azurite(REPO)
                if script is None:
                    out.bound("azure: Azurite is installed (make azurite)", False)
                    continue
                with Azurite.start(script) as az:
                    _one(out, root.with_name(root.name + "-azure"), per, backend, az.connection_string)
            else:
                _one(out, root, per, backend, None)

    return timed(NAME, TITLE, body)


def _one(out: Outcome, root: Path, per: int, backend: str, conn: str | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if backend == "azure":
        (root / "settings.yaml").write_text("store: {backend: azure, azure: {credential: connection_string, prefix: drill}}\n")
        env[CONNECTION_STRING_ENV] = conn  # type: ignore[assignment]
        os.environ[CONNECTION_STRING_ENV] = conn  # type: ignore[assignment]
    try:
        ws = open_workspace(root)
        fed = "contend"
        total = ENQUEUERS * per
        with open_store(ws) as store:
            store.create_federation(fed, unique_job_ids=False)
        logs = root.parent / f"contend-{backend}"
        logs.mkdir(exist_ok=True)
        worker = [sys.executable, "-m", "drills._contend_worker"]
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [*worker, "enqueue", str(root), fed, str(p), str(per), str(TARGETS), str(p), str(logs / f"enq-{p}")],
                env=env,
                cwd=REPO,
                stderr=subprocess.PIPE,
            )
            for p in range(ENQUEUERS)
        ]
        procs += [
            subprocess.Popen(
                [*worker, "claim", str(root), fed, str(total), str(logs / f"claim-{k}")],
                env=env,
                cwd=REPO,
                stderr=subprocess.PIPE,
            )
            for k in range(CLAIMERS)
        ]
        errors = []
        enqueued_at = None
        for k, p in enumerate(procs):
            try:
                _, err = p.communicate(timeout=900)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                err = b"timed out"
            if p.returncode != 0:
                errors.append(err.decode(errors="replace")[-300:])
            if k == ENQUEUERS - 1:
                enqueued_at = time.monotonic() - t0
        elapsed = time.monotonic() - t0
        sent: dict[int, list[str]] = {}
        worst = 0.0
        for p in range(ENQUEUERS):
            f = logs / f"enq-{p}"
            if f.exists():
                calls = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
                sent[p] = [i for c in calls for i in c["ids"]]
                worst = max([worst, *(c["call_s"] for c in calls)])
        claims: list[list[Any]] = []
        for k in range(CLAIMERS):
            f = logs / f"claim-{k}"
            if f.exists():
                claims += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        claims.sort(key=lambda c: c[0])
        with open_store(ws) as store:
            actions = store.list_actions(fed)
            counts = store.counts(fed)
        all_sent = [i for ids in sent.values() for i in ids]
        in_store = {a.id for a in actions}
        claimed = [c[5] for c in claims]
        # FIFO per job id: claim order = position order, and per enqueuer = its own order
        by_target: dict[str, list[list[Any]]] = {}
        for c in claims:
            by_target.setdefault(c[1], []).append(c)
        position_breaks = sum(1 for seq in by_target.values() for a, b in itertools.pairwise(seq) if b[4] <= a[4])
        order_breaks = 0
        for seq in by_target.values():
            last: dict[int, int] = {}
            for _, _, p, i, _, _ in seq:
                if i <= last.get(p, -1):
                    order_breaks += 1
                last[p] = i
        tag = f"{backend}:"
        out.figure(f"{tag} actions per process", per)
        out.figure(f"{tag} enqueued (ids returned)", len(all_sent))
        out.figure(f"{tag} in the store", len(in_store))
        out.figure(f"{tag} claimed and placed", f"{len(claimed)} / {counts.placed}")
        out.figure(f"{tag} enqueue throughput (actions/s)", total / enqueued_at if enqueued_at else 0.0)
        out.figure(f"{tag} worst enqueue call (s)", worst)
        out.figure(f"{tag} total time (s)", elapsed)
        out.figure(f"{tag} FIFO breaks (position / per-enqueuer order)", f"{position_breaks} / {order_breaks}")
        out.bound(f"{tag} every process exited cleanly", not errors)
        out.bound(
            f"{tag} all accounted: {total} sent = {len(in_store)} stored = {len(set(claimed))} claimed once",
            len(all_sent) == len(set(all_sent)) == total
            and set(all_sent) == in_store
            and len(claimed) == len(set(claimed)) == total
            and counts.placed == total,
        )
        out.bound(f"{tag} FIFO kept per job id", position_breaks == 0 and order_breaks == 0 and len(by_target) == TARGETS)
        if errors:
            out.notes.append(f"{tag} {errors[0]}")
    finally:
        if backend == "azure":
            os.environ.pop(CONNECTION_STRING_ENV, None)
