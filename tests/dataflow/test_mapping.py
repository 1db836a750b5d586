"""input_data / output_data → Batch resourceFiles / outputFiles (pure: no storage, no Batch)."""

from __future__ import annotations

from typing import Any

from batchfed_lab.config.jobs import JobSpecification
from batchfed_lab.data.mapping import StorageAccess, map_tasks

SAS = "?sv=x&sig=s"


def url_for(account: str, container: str, write: bool) -> str:
    return f"https://{account}.blob/{container}{'?w' if write else ''}{SAS}"


def tasks_of(**task: Any) -> JobSpecification:
    return JobSpecification.model_validate({"id": "job1", "tasks": [{"id": "t1", "command": "true", **task}]})


def storage(**entry: Any) -> dict[str, Any]:
    return {"azure_storage": [{"storage_account_settings": "acct", **entry}]}


def test_a_container_prefix_becomes_one_container_resource_file() -> None:
    spec = tasks_of(input_data=storage(remote_path="inputs/run1"))
    (task,) = map_tasks(spec.id, spec.task_definitions, StorageAccess(url_for))
    assert task.resource_files == ({"storageContainerUrl": f"https://acct.blob/inputs{SAS}", "blobPrefix": "run1"},)


def test_a_named_blob_becomes_an_http_url_so_a_missing_one_fails_the_task() -> None:
    spec = tasks_of(input_data=storage(remote_path="inputs/run1", local_path="in", include=["x.txt", "part-*"]))
    (task,) = map_tasks(spec.id, spec.task_definitions, StorageAccess(url_for))
    assert task.resource_files == (
        {"httpUrl": f"https://acct.blob/inputs/run1/x.txt{SAS}", "filePath": "in/run1/x.txt"},
        {"storageContainerUrl": f"https://acct.blob/inputs{SAS}", "blobPrefix": "run1/part-", "filePath": "in"},
    )


def test_blob_names_are_url_quoted_in_http_urls() -> None:
    spec = tasks_of(input_data=storage(remote_path="inputs", include=["a b#1.txt"]))
    (task,) = map_tasks(spec.id, spec.task_definitions, StorageAccess(url_for))
    assert task.resource_files[0]["httpUrl"] == f"https://acct.blob/inputs/a%20b%231.txt{SAS}"
    assert task.resource_files[0]["filePath"] == "a b#1.txt"


def test_outputs_map_patterns_conditions_and_per_task_prefixes() -> None:
    spec = tasks_of(
        output_data=storage(
            remote_path="outputs/{job_id}/{task_id}",
            local_path="res",
            include=["**/*.csv", "summary.txt"],
            condition="tasksuccess",
        )
    )
    (task,) = map_tasks(spec.id, spec.task_definitions, StorageAccess(url_for))
    container = f"https://acct.blob/outputs?w{SAS}"
    assert task.output_files == (
        {
            "filePattern": "res/**/*.csv",
            "destination": {"container": {"containerUrl": container, "path": "job1/t1"}},
            "uploadOptions": {"uploadCondition": "tasksuccess"},
        },
        {
            "filePattern": "res/summary.txt",
            "destination": {"container": {"containerUrl": container, "path": "job1/t1/summary.txt"}},
            "uploadOptions": {"uploadCondition": "tasksuccess"},
        },
    )


def test_a_pool_identity_replaces_the_sas_with_an_identity_reference() -> None:
    minted: list[tuple[str, str, bool]] = []

    def bare(account: str, container: str, write: bool) -> str:
        minted.append((account, container, write))
        return f"https://{account}.blob/{container}"

    identity = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    spec = tasks_of(input_data=storage(remote_path="inputs"), output_data=storage(remote_path="outputs"))
    (task,) = map_tasks(spec.id, spec.task_definitions, StorageAccess(bare, identity=identity))
    assert task.resource_files[0]["identityReference"] == {"resourceId": identity}
    assert task.output_files[0]["destination"]["container"]["identityReference"] == {"resourceId": identity}
    assert "?" not in task.resource_files[0]["storageContainerUrl"]


def test_one_url_is_minted_per_container_and_access_for_a_whole_group() -> None:
    minted: list[tuple[str, str, bool]] = []

    def counting(account: str, container: str, write: bool) -> str:
        minted.append((account, container, write))
        return url_for(account, container, write)

    spec = JobSpecification.model_validate(
        {
            "id": "j",
            "input_data": storage(remote_path="inputs"),
            "tasks": [
                {"command": "true", "output_data": storage(remote_path="outputs")},
                {"command": "true", "output_data": storage(remote_path="outputs")},
            ],
        }
    )
    mapped = map_tasks(spec.id, spec.task_definitions, StorageAccess(counting))
    assert len(mapped) == 2 and all(t.resource_files for t in mapped)
    assert sorted(minted) == [("acct", "inputs", False), ("acct", "outputs", True)]


def test_tasks_without_data_are_returned_unchanged() -> None:
    spec = tasks_of()
    (task,) = map_tasks(spec.id, spec.task_definitions, StorageAccess(url_for))
    assert task is spec.task_definitions[0]
