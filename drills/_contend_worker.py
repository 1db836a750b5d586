"""A process of the store-contention drill (``python -m drills._contend_worker …``).

``enqueue WS FED P N TARGETS SEED OUT``: enqueue N actions, the i-th for job id
``job-<i mod TARGETS>``, in batches of 1-10 actions (one ``enqueue`` call each); the payload
says who and which (``{"p": P, "i": i}``). Writes one JSON line per call (its action ids and
duration) to OUT.

``claim WS FED EXPECTED OUT``: claim and mark placed until EXPECTED actions are placed in
the federation, writing one line per claim (monotonic ns, target, p, i, position) to OUT.
"""

from __future__ import annotations

import json
import random
import sys
import time


def _store(ws: str):  # type: ignore[no-untyped-def]
    from batchfed_lab.config.workspace import open_workspace
    from batchfed_lab.store import open_store

    return open_store(open_workspace(ws))


def enqueue(ws: str, fed: str, p: int, n: int, targets: int, seed: int, out: str) -> None:
    from batchfed_lab.store import NewAction

    rng = random.Random(seed)
    # one line per enqueue call, written as it returns: exact accounting even if we die
    with _store(ws) as store, open(out, "w") as fh:
        i = 0
        while i < n:
            size = min(n - i, rng.randint(1, 10))
            batch = [NewAction("job", "add", f"job-{(i + k) % targets:02d}", {"p": p, "i": i + k}) for k in range(size)]
            t0 = time.monotonic()
            ids = [a.id for a in store.enqueue(fed, batch)]
            fh.write(json.dumps({"ids": ids, "call_s": time.monotonic() - t0}) + "\n")
            fh.flush()
            i += size


def claim(ws: str, fed: str, expected: int, out: str) -> None:
    worker = f"claimer-{out.rsplit('-', 1)[-1]}"
    with _store(ws) as store, open(out, "w") as fh:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            c = store.claim(fed, worker, ttl=120)
            if c is None:
                if store.counts(fed).placed >= expected:
                    return
                marks = store.change_marks()
                store.wait_for_change(marks, timeout=0.2)
                continue
            a = c.action
            fh.write(json.dumps([time.monotonic_ns(), a.target_id, a.payload["p"], a.payload["i"], a.position, a.id]) + "\n")
            store.mark_placed(c)
        raise SystemExit("claimer: deadline passed")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "enqueue":
        ws, fed, p, n, targets, seed, out = args
        enqueue(ws, fed, int(p), int(n), int(targets), int(seed), out)
    elif cmd == "claim":
        ws, fed, expected, out = args
        claim(ws, fed, int(expected), out)
    else:
        raise SystemExit(f"unknown command {cmd!r}")
