"""Benchmark data in and out of tasks on the embedded stack (issue 18).

A job of N tasks (default 100), each reading a M MB input through ``input_data`` and writing a
M MB output through ``output_data`` (default 10 MB), on one pool of S slots, submitted through
the federation and waited for until every task has completed: end-to-end MB/s (inputs +
outputs, submit → all completed, placement and task start included). Side by side, in the
same run and against the same Azurite, the plain azure-storage-blob client moves the same
bytes (download each input, upload it as an output) with S threads. Target: ours ≥ 0.5 × the
plain client.

It brings its own stack up in a temporary workspace (localbatch, the embedded Azurite, the
proxy) and takes it down at the end.
Usage: python bench/data.py [--tasks N] [--mb M] [--slots S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_RATIO = 0.5
FEDERATION_YAML = """\
federation:
  proxy_options:
    polling_interval: {federations: 5, actions: 1}
    scheduling:
      after_success: {blackout_interval: 0}
"""


def _stack(root: Path, slots: int) -> tuple[object, str]:
    from batchfed_lab.client import connect
    from batchfed_lab.config import load_pool
    from batchfed_lab.localbatch import control

    (root / "federation.yaml").write_text(FEDERATION_YAML)
    client = connect(root)
    up = client.up(config=str(root / "federation.yaml"))
    if up.get("storage") is None:
        raise SystemExit("the embedded Azurite did not start (make azurite): " + "; ".join(up.get("warnings") or ()))
    url = control.account_url("local", client.workspace)
    spec = {"id": "bench", "vm_size": "standard_d4s_v3", "vm_count": {"dedicated": 1}, "task_slots_per_node": slots}
    client.account(url).create_pool(load_pool({"pool_specification": spec}).pool_specification)
    deadline = time.monotonic() + 60
    while not all(p.allocation_state == "steady" for p in client.account(url).list_pools()):
        if time.monotonic() > deadline:
            raise SystemExit("the pool never got its node")
        time.sleep(0.05)
    client.create_federation("bench")
    client.add_pools("bench", pool_ids=["bench"], batch_service_url=url)
    return client, url


def _jobs(tasks: int) -> str:
    lines = ["job_specifications:", "- id: data-bench", "  tasks:"]
    for i in range(tasks):
        lines += [
            f"  - id: t{i:03d}",
            f"    command: cat x-{i:03d}.bin > y-{i:03d}.bin",
            "    input_data:",
            "      azure_storage:",
            "      - {storage_account_settings: local, remote_path: bench-in, include: [" + f"x-{i:03d}.bin]" + "}",
            "    output_data:",
            "      azure_storage:",
            "      - {storage_account_settings: local, remote_path: bench-out, include: [" + f"y-{i:03d}.bin]" + "}",
        ]
    return "\n".join(lines) + "\n"


def _plain_client(service: object, tasks: int, slots: int, scratch: Path) -> float:
    """The same bytes with azure-storage-blob alone: download each input, upload it as an output."""
    inputs = service.get_container_client("bench-in")  # type: ignore[attr-defined]
    outputs = service.get_container_client("bench-plain")  # type: ignore[attr-defined]
    outputs.create_container()

    def one(i: int) -> None:
        path = scratch / f"x-{i:03d}.bin"
        with open(path, "wb") as fh:
            inputs.download_blob(f"x-{i:03d}.bin").readinto(fh)
        with open(path, "rb") as fh:
            outputs.upload_blob(f"y-{i:03d}.bin", fh, overwrite=True)
        path.unlink()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        list(pool.map(one, range(tasks)))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--mb", type=int, default=10)
    ap.add_argument("--slots", type=int, default=4)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="batchfed-bench-data-"))
    os.environ["BATCHFED_HOME"] = str(root)
    client = None
    try:
        client, _ = _stack(root, args.slots)
        from batchfed_lab.data.accounts import resolve_account

        service = resolve_account(client.workspace, "local").service_client()  # type: ignore[attr-defined]
        service.create_container("bench-in")
        payload = os.urandom(args.mb * 1024 * 1024)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(lambda i: service.get_blob_client("bench-in", f"x-{i:03d}.bin").upload_blob(payload), range(args.tasks))
            )
        moved_mb = 2 * args.tasks * args.mb  # every input read and every output written

        t0 = time.perf_counter()
        sub = client.submit("bench", _jobs(args.tasks))  # type: ignore[attr-defined]
        sub.wait(timeout=1800, until="completed", poll=0.1)
        ours = time.perf_counter() - t0
        written = [b for b in service.get_container_client("bench-out").list_blobs() if b.size == args.mb * 1024 * 1024]
        if len(written) != args.tasks:
            raise SystemExit(f"only {len(written)} of {args.tasks} outputs were uploaded")

        scratch = root / "plain"
        scratch.mkdir()
        plain = _plain_client(service, args.tasks, args.slots, scratch)
        ours_rate, plain_rate = moved_mb / ours, moved_mb / plain
        ratio = ours_rate / plain_rate
        print(f"{args.tasks} tasks x ({args.mb} MB in + {args.mb} MB out) on 1 node x {args.slots} slots, embedded Azurite")
        print(f"  federation job (input_data/output_data, submit -> all completed): {ours:7.2f} s  {ours_rate:7.1f} MB/s")
        print(f"  plain azure-storage-blob, {args.slots} threads, same bytes:           {plain:7.2f} s  {plain_rate:7.1f} MB/s")
        verdict = "ok" if ratio >= TARGET_RATIO else "MISSED"
        print(f"  ratio {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
        return 0 if ratio >= TARGET_RATIO else 1
    finally:
        if client is not None:
            client.down()  # type: ignore[attr-defined]
            client.close()  # type: ignore[attr-defined]
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
