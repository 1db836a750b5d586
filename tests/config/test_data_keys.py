"""input_data / output_data (the original's keys): defaults, inheritance, what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchfed_lab.config import TaskDefinition, validate_file
from batchfed_lab.config.jobs import JobSpecification
from batchfed_lab.config.loading import validate
from batchfed_lab.errors import ConfigError

DATA = Path(__file__).resolve().parent.parent / "data"


def job(**extra: Any) -> JobSpecification:
    body: dict[str, Any] = {"id": "j", "tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "true"}]}
    body.update(extra)
    return JobSpecification.model_validate(body)


def test_job_level_inputs_go_to_every_task_before_the_tasks_own() -> None:
    (spec,) = validate_file(DATA / "good" / "jobs-data.yaml").job_specifications
    (task,) = spec.task_definitions
    assert [i.remote_path for i in task.inputs] == ["shared/reference", "inputs"]
    shared = job(input_data={"azure_storage": [{"storage_account_settings": "local", "remote_path": "shared"}]})
    assert all(t.inputs[0].container == "shared" for t in shared.task_definitions)


def test_local_path_defaults_to_the_working_directory_and_accepts_the_originals_variable() -> None:
    (spec,) = validate_file(DATA / "good" / "jobs-data.yaml").job_specifications
    (task,) = spec.task_definitions
    assert task.inputs[0].local_path == ""
    assert task.inputs[1].local_path == "inputs"
    assert task.inputs[1].include == ("x.txt", "part-*")


def test_outputs_default_to_every_file_on_task_completion() -> None:
    spec = JobSpecification.model_validate(
        {
            "id": "j",
            "tasks": [
                {
                    "command": "true",
                    "output_data": {"azure_storage": [{"storage_account_settings": "local", "remote_path": "out/r"}]},
                }
            ],
        }
    )
    (out,) = spec.task_definitions[0].outputs
    assert (out.include, out.condition, out.local_path, out.container) == (("**/*",), "taskcompletion", "", "out")


def test_output_prefix_names_the_job_and_task_when_asked() -> None:
    (spec,) = validate_file(DATA / "good" / "jobs-data.yaml").job_specifications
    (out,) = spec.task_definitions[0].outputs
    assert out.per_task and out.prefix_for("pipeline", "stage") == "pipeline/stage"


def test_input_accounts_are_the_jobs_and_its_tasks() -> None:
    (spec,) = validate_file(DATA / "good" / "jobs-data.yaml").job_specifications
    assert spec.input_accounts == frozenset({"local"})


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"remote_path": "/inputs"}, "without a leading /"),
        ({"remote_path": "inputs/../etc"}, "'.' / '..' segments"),
        ({"remote_path": "inputs", "local_path": "/etc"}, "relative to the task's working directory"),
        ({"remote_path": "inputs", "include": ["a?.txt"]}, "by name or by prefix only"),
        ({"remote_path": "inputs", "storage_account_settings": "a b"}, "storage_accounts"),
    ],
)
def test_bad_input_entries_are_refused_in_one_line(entry: dict[str, Any], fragment: str) -> None:
    body = {"storage_account_settings": "local", **entry}
    doc = {"job_specifications": [{"id": "j", "tasks": [{"command": "true", "input_data": {"azure_storage": [body]}}]}]}
    from batchfed_lab.config.jobs import JobsConfig

    with pytest.raises(ConfigError) as info:
        validate(JobsConfig, doc, "jobs.yaml")
    assert fragment in info.value.problems[0] and "\n" not in info.value.problems[0]
    assert info.value.problems[0].startswith("jobs.yaml: job_specifications[0].tasks[0].input_data.azure_storage[0].")


def test_task_definitions_round_trip_with_their_data() -> None:
    (spec,) = validate_file(DATA / "good" / "jobs-data.yaml").job_specifications
    (task,) = spec.task_definitions
    assert TaskDefinition.from_dict(task.to_dict()) == task


IDENTITY = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reader"


def pool_doc(**extra: Any) -> dict[str, Any]:
    return {"pool_specification": {"id": "p", "vm_size": "standard_d2_v3", "vm_count": {"dedicated": 1}, **extra}}


def test_a_pool_names_the_managed_identity_its_tasks_reach_storage_with() -> None:
    from batchfed_lab.batch.pools import META_IDENTITY, pool_create_options, pool_facts
    from batchfed_lab.config import PoolConfig

    spec = validate(PoolConfig, pool_doc(identity_reference=IDENTITY), "pool.yaml").pool_specification
    options = dict(pool_create_options(spec))
    assert {"name": META_IDENTITY, "value": IDENTITY} in options["metadata"]
    facts = pool_facts(options, service_url="http://127.0.0.1:1/accounts/a", account="a", region=None)
    assert facts.identity == IDENTITY


def test_an_identity_reference_that_is_no_user_assigned_identity_is_refused() -> None:
    from batchfed_lab.config import PoolConfig

    with pytest.raises(ConfigError) as info:
        validate(PoolConfig, pool_doc(identity_reference="reader"), "pool.yaml")
    assert (
        "pool_specification.identity_reference = 'reader': must be the ARM id of a user-assigned managed identity"
        in (info.value.problems[0])
    )


def test_a_job_schedule_takes_data_keys_like_a_job() -> None:
    spec = job(
        recurrence={"schedule": {"recurrence_interval": 60}},
        input_data={"azure_storage": [{"storage_account_settings": "local", "remote_path": "inputs"}]},
        tasks=[
            {
                "id": "a",
                "command": "true",
                "output_data": {"azure_storage": [{"storage_account_settings": "local", "remote_path": "out/{job_id}"}]},
            }
        ],
    )
    (task,) = spec.task_definitions
    assert spec.recurrence is not None and task.inputs[0].container == "inputs"
    assert task.outputs[0].prefix_for("j:job-1", "a") == "j:job-1"
