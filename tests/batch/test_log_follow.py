"""Following a task's log costs its new bytes only: each look reads the task file from where
the last one stopped (a ranged read), so a 5 MB log followed over many looks moves ~5 MB,
not a whole re-read per look. Bytes are counted at the adapter, against a real localbatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchfed_lab.batch.adapter import BatchAccount
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.outcomes import TaskLogs
from batchfed_lab.results import FederatedTask

from .conftest import wait_for
from .test_adapter import spec, steady

CHUNK = 1 << 20  # each gate lets the task write one line of 1 MiB (newline included)
GATED = (
    'echo "$AZ_BATCH_TASK_WORKING_DIR"; '
    "for i in 1 2 3 4 5; do "
    "n=0; while [ ! -e go$i ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; "
    f'head -c {CHUNK - 1} /dev/zero | tr "\\0" x; echo; '
    "done"
)


class OnePool:
    """The two calls TaskLogs makes of a client, over one account; download bytes counted."""

    def __init__(self, account: BatchAccount) -> None:
        self.account = account
        self.moved = 0
        client = account._client
        download = client.download_task_file

        def counted(*args: Any, **kwargs: Any) -> Any:
            for block in download(*args, **kwargs):
                self.moved += len(block)
                yield block

        client.download_task_file = counted

    def tasks(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> list[FederatedTask]:
        assert job_id is not None
        return [FederatedTask(job_id, "p", None, None, t) for t in self.account.list_tasks(job_id)]

    def task_output_bytes(
        self, federation_id: str, job_id: str, task_id: str, stream: str, offset: int, *, max_bytes: int
    ) -> bytes:
        return self.account.read_task_file(job_id, task_id, f"{stream}.txt", offset=offset, max_bytes=max_bytes)


def test_a_5_mb_log_followed_over_many_looks_moves_about_5_mb(account: BatchAccount) -> None:
    account.create_pool(spec("logs"))
    steady(account, "logs", idle=1)
    account.create_job("logs-job", "logs")
    assert account.add_tasks("logs-job", [TaskDefinition(id="big", command=f"/bin/sh -c '{GATED}'")]).ok
    source = OnePool(account)
    logs = TaskLogs(source, "f", ["logs-job"], streams=("stdout",))
    lines: list[str] = []
    looks = 0

    def look() -> int:
        nonlocal looks
        looks += 1
        piece, _ = logs.step()
        lines.extend(piece.splitlines())
        return len(lines)

    wait_for(look, "the task's first line", timeout=30)
    workdir = Path(lines[0].removeprefix("[logs-job/big] "))
    for i in range(1, 6):
        (workdir / f"go{i}").touch()
        wait_for(lambda i=i: look() > i, f"line {i} of 1 MiB", timeout=30)
    wait_for(lambda: logs.step()[1], "the task to complete", timeout=30)
    assert [len(line) for line in lines[1:]] == [len("[logs-job/big] ") + CHUNK - 1] * 5
    size = 5 * CHUNK + len(str(workdir)) + 1
    assert looks > 10  # many looks, most of them while the file grew
    assert size <= source.moved <= size * 1.05, f"{source.moved} bytes moved over {looks} looks for a {size}-byte log"
