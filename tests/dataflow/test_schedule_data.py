"""A job schedule's data keys on the embedded stack: the proxy maps input_data / output_data for
each recurrence job it fills (a fresh SAS each time), and ``{job_id}`` in an output path is
the recurrence job's id."""

from __future__ import annotations

from pathlib import Path

from stack import Stack, wait_until

from batchfed_lab.data.accounts import resolve_account
from batchfed_lab.data.transfer import list_blobs, upload

SCHEDULE = """\
job_specifications:
- id: every3s
  recurrence:
    schedule: {recurrence_interval: 3}
  input_data:
    azure_storage:
    - storage_account_settings: local
      remote_path: schedin
      include: [word.txt]
  tasks:
  - id: shout
    command: tr a-z A-Z < word.txt > loud.txt
    output_data:
      azure_storage:
      - storage_account_settings: local
        remote_path: schedout/{job_id}/{task_id}
        include: [loud.txt]
        condition: tasksuccess
"""


def test_each_recurrence_reads_its_input_and_writes_under_its_own_job_id(data_stack: Stack, tmp_path: Path) -> None:
    account = resolve_account(data_stack.client.workspace, "local")
    word = tmp_path / "word.txt"
    word.write_text("tick\n")
    upload(account, "schedin/word.txt", word)
    batch = data_stack.client.account(data_stack.urls["lab1"])
    data_stack.client.submit("demo", SCHEDULE).wait(timeout=30)

    def two_done() -> list[str] | None:
        done = sorted(j.id for j in batch.list_jobs_from_schedule("every3s") if j.state == "completed")
        return done[:2] if len(done) >= 2 else None

    try:
        jobs = wait_until(two_done, "two recurrences of the schedule to complete", 40)
    finally:
        data_stack.client.terminate("demo", schedule_ids=["every3s"])
    for job_id in jobs:
        (task,) = batch.list_tasks(job_id)
        assert task.exit_code == 0, f"{job_id}: {task}"
        names = [b.name for b in list_blobs(account, f"schedout/{job_id}/shout/")]
        assert names == [f"{job_id}/shout/loud.txt"]
        got = tmp_path / job_id.replace(":", "_")
        account.service_client().get_blob_client("schedout", names[0]).download_blob().readinto(got.open("wb"))
        assert got.read_text() == "TICK\n"
