"""Job schedules: recurrences really create jobs ``<schedule>:job-N`` on the schedule's pool."""

from __future__ import annotations

import datetime
import json

import pytest
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from .lb_helpers import make_pool, sh, stdout_of, wait_for


def _spec(**kwargs) -> bm.BatchJobSpecification:
    return bm.BatchJobSpecification(pool_info=bm.BatchPoolInfo(pool_id="pool"), **kwargs)


def _job_or_none(client, job_id: str) -> bm.BatchJob | None:
    try:
        return client.get_job(job_id)
    except ResourceNotFoundError:
        return None


def _completed_jobs(client, schedule_id: str) -> list[bm.BatchJob]:
    jobs = list(client.list_jobs_from_schedule(schedule_id))
    return [j for j in jobs if j.state == bm.BatchJobState.COMPLETED]


def _add_tasks_and_close(client, job_id: str, tasks: list[dict]) -> None:
    """What the proxy does with each recurrence's job: add the group, then let the job end
    when its tasks are done."""
    group = bm.BatchTaskGroup(task_values=[bm.BatchTaskCreateOptions(id=t["id"], command_line=t["commandLine"]) for t in tasks])
    client.create_task_collection(job_id, group)
    client.update_job(job_id, bm.BatchJobUpdateOptions(all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.TERMINATE_JOB))


def test_schedule_jobs_get_only_their_specification_and_recur_once_tasks_are_added(client):
    make_pool(client, dedicated=1, slots=2)
    tasks = [
        {"id": "hello", "commandLine": sh('echo "hi from $AZ_BATCH_JOB_ID of $AZ_BATCH_JOB_SCHEDULE_ID"')},
        {"id": "two", "commandLine": "true"},
    ]
    client.create_job_schedule(
        bm.BatchJobScheduleCreateOptions(
            id="every-second",
            schedule=bm.BatchJobScheduleConfiguration(recurrence_interval=datetime.timedelta(seconds=1)),
            # task JSON in the metadata is only metadata, as on Azure: nobody adds it
            job_specification=_spec(metadata=[bm.BatchMetadataItem(name="batchfed_tasks", value=json.dumps(tasks))]),
        )
    )
    for n in (1, 2):
        job_id = f"every-second:job-{n}"
        job = wait_for(lambda job_id=job_id: _job_or_none(client, job_id), timeout=20, what=f"recurrence {n}")
        # as on Azure Batch: the schedule's job holds what its specification says, no tasks
        assert job.state == bm.BatchJobState.ACTIVE and list(client.list_tasks(job_id)) == []
        assert job.all_tasks_complete_mode == bm.BatchAllTasksCompleteMode.NO_ACTION
        _add_tasks_and_close(client, job_id, tasks)
    done = wait_for(
        lambda: (jobs := _completed_jobs(client, "every-second")) and len(jobs) >= 2 and jobs,
        timeout=20,
        what="two completed recurrences",
    )
    assert [j.id for j in done[:2]] == ["every-second:job-1", "every-second:job-2"]
    assert all(j.execution_info.termination_reason == "AllTasksComplete" for j in done)
    assert stdout_of(client, "every-second:job-1", "hello") == "hi from every-second:job-1 of every-second\n"
    assert sorted(t.id for t in client.list_tasks("every-second:job-2")) == ["hello", "two"]
    sched = client.get_job_schedule("every-second")
    assert sched.state == bm.BatchJobScheduleState.ACTIVE
    assert sched.execution_info.recent_job.id.startswith("every-second:job-")
    assert sched.execution_info.next_run_time is not None

    client.begin_terminate_job_schedule("every-second", polling_interval=0.05).result()
    sched = client.get_job_schedule("every-second")
    assert sched.state == bm.BatchJobScheduleState.COMPLETED and sched.execution_info.next_run_time is None
    assert all(j.state == bm.BatchJobState.COMPLETED for j in client.list_jobs_from_schedule("every-second"))

    client.begin_delete_job_schedule("every-second", polling_interval=0.05).result()
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job_schedule("every-second")
    assert exc.value.error.code == "JobScheduleNotFound"
    assert [j.id for j in client.list_jobs()] == []


def test_schedule_with_job_manager_waits_for_the_previous_job(client):
    make_pool(client, dedicated=1)
    client.create_job_schedule(
        bm.BatchJobScheduleCreateOptions(
            id="jm",
            schedule=bm.BatchJobScheduleConfiguration(recurrence_interval=datetime.timedelta(seconds=1)),
            job_specification=_spec(
                job_manager_task=bm.BatchJobManagerTask(id="manager", command_line=sh("sleep 1.5; echo managed"))
            ),
        )
    )
    done = wait_for(
        lambda: (jobs := _completed_jobs(client, "jm")) and len(jobs) >= 2 and jobs, timeout=20, what="two job-manager runs"
    )
    first, second = done[:2]
    assert first.execution_info.termination_reason == "JMComplete"
    assert stdout_of(client, first.id, "manager") == "managed\n"
    # at most one active job per schedule: the second starts after the first ended
    assert second.creation_time >= first.execution_info.end_time
    client.begin_terminate_job_schedule("jm", polling_interval=0.05).result()


def test_one_off_schedule_and_errors(client):
    make_pool(client, dedicated=1)
    spec = _spec(job_manager_task=bm.BatchJobManagerTask(id="once", command_line="true"))
    client.create_job_schedule(
        bm.BatchJobScheduleCreateOptions(id="once", schedule=bm.BatchJobScheduleConfiguration(), job_specification=spec)
    )
    wait_for(lambda: client.get_job_schedule("once").state == bm.BatchJobScheduleState.COMPLETED, what="the one-off schedule")
    assert [j.id for j in client.list_jobs_from_schedule("once")] == ["once:job-1"]
    with pytest.raises(ResourceExistsError) as exc:
        client.create_job_schedule(
            bm.BatchJobScheduleCreateOptions(id="ONCE", schedule=bm.BatchJobScheduleConfiguration(), job_specification=spec)
        )
    assert exc.value.error.code == "JobScheduleExists"
    with pytest.raises(HttpResponseError) as exc:  # even relaxed limits keep a 1-second floor
        client.create_job_schedule(
            bm.BatchJobScheduleCreateOptions(
                id="fast",
                schedule=bm.BatchJobScheduleConfiguration(recurrence_interval=datetime.timedelta(milliseconds=200)),
                job_specification=spec,
            )
        )
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidPropertyValue"
    # metadata is the caller's own text, as on Azure: nothing in it is read as tasks
    client.create_job_schedule(
        bm.BatchJobScheduleCreateOptions(
            id="freetext",
            schedule=bm.BatchJobScheduleConfiguration(),
            job_specification=_spec(metadata=[bm.BatchMetadataItem(name="batchfed_tasks", value="not json")]),
        )
    )
    job = wait_for(lambda: _job_or_none(client, "freetext:job-1"), what="the free-text schedule's job")
    assert job.metadata[0].value == "not json" and list(client.list_tasks("freetext:job-1")) == []
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job_schedule("absent")
    assert exc.value.error.code == "JobScheduleNotFound"
    assert client.job_schedule_exists("once") is True
