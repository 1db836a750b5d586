"""localbatch handles a task's resourceFiles and outputFiles as Azure Batch does (issue 18,
point 3), against the test Azurite: inputs are in place before the command starts, outputs go
up after it ends by their upload condition, and every failure is a clear failureInfo."""

from __future__ import annotations

import pytest
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from batchfed_lab.data import StorageAccount, container_url

from .lb_helpers import make_job, make_pool, stdout_of, wait_tasks_done

_containers = iter(range(10_000))


@pytest.fixture
def storage(azurite):
    return StorageAccount("local", azurite.endpoint("blob"), None, "emulator")


@pytest.fixture
def blobs(azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def container(blobs) -> str:
    name = f"lbfiles{next(_containers)}"
    blobs.create_container(name)
    return name


def out_file(url: str, pattern: str, condition: str = "taskcompletion", path: str | None = None, headers=None) -> bm.OutputFile:
    return bm.OutputFile(
        file_pattern=pattern,
        destination=bm.OutputFileDestination(
            container=bm.OutputFileBlobContainerDestination(container_url=url, path=path, upload_headers=headers)
        ),
        upload_options=bm.OutputFileUploadConfiguration(upload_condition=condition),
    )


def run_one(client, task: bm.BatchTaskCreateOptions) -> bm.BatchTask:
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task("job", task)
    (done,) = wait_tasks_done(client, "job", 1, timeout=40)
    return done


def test_inputs_are_in_place_before_the_command_starts(client, storage, blobs, container) -> None:
    cc = blobs.get_container_client(container)
    cc.upload_blob("in/a.txt", b"alpha\n")
    cc.upload_blob("in/sub/b.txt", b"beta\n")
    cc.upload_blob("other.txt", b"not-me\n")
    url = container_url(storage, container, write=False)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="reads",
            command_line="/bin/sh -c 'cat data/in/a.txt data/in/sub/b.txt single.txt; ls data; stat -c %a single.txt'",
            resource_files=[
                bm.ResourceFile(storage_container_url=url, blob_prefix="in/", file_path="data"),
                bm.ResourceFile(
                    http_url=url.replace(f"/{container}?", f"/{container}/other.txt?"), file_path="single.txt", file_mode="0640"
                ),
            ],
        ),
    )
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS, task.execution_info.failure_info
    assert stdout_of(client, "job", "reads").split() == ["alpha", "beta", "not-me", "in", "640"]


def test_a_missing_input_blob_fails_the_task_with_its_code_not_a_hang(client, storage, container) -> None:
    url = container_url(storage, container, write=False)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="missing",
            command_line="/bin/sh -c 'echo ran > wd-ran.txt'",
            resource_files=[bm.ResourceFile(storage_container_url=url, blob_prefix="in/nope.txt")],
        ),
    )
    info = task.execution_info
    assert info.result == bm.BatchTaskExecutionResult.FAILURE and info.exit_code is None
    assert (info.failure_info.category, info.failure_info.code) == ("usererror", "BlobNotFound")
    assert "in/nope.txt" in info.failure_info.message and "sig=" not in info.failure_info.message
    names = {f.name for f in client.list_task_files("job", "missing", recursive=True)}
    assert "wd/wd-ran.txt" not in names  # the command never ran


def test_a_url_without_read_rights_is_access_denied(client, storage, blobs, container) -> None:
    blobs.get_container_client(container).upload_blob("x.txt", b"x")
    write_only = container_url(storage, container, write=True)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="denied", command_line="true", resource_files=[bm.ResourceFile(storage_container_url=write_only)]
        ),
    )
    assert task.execution_info.failure_info.code == "ResourceContainerAccessDenied"


def test_outputs_go_up_by_pattern_keeping_paths_below_the_fixed_part(client, storage, blobs, container) -> None:
    url = container_url(storage, container, write=True)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="writes",
            command_line="/bin/sh -c 'mkdir -p out/x && echo 1 > out/a.txt && echo 2 > out/x/b.txt && echo h > out/.hidden && echo r > result.csv'",
            output_files=[
                out_file(url, "out/**/*.txt", path="run1"),
                out_file(
                    url,
                    "result.csv",
                    path="final/r.csv",
                    headers=[bm.OutputFileUploadHeader(name="Content-Type", value="text/csv")],
                ),
                out_file(url, "../std*.txt", path="logs"),
            ],
        ),
    )
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS, task.execution_info.failure_info
    cc = blobs.get_container_client(container)
    assert sorted(b.name for b in cc.list_blobs()) == [
        "final/r.csv",
        "logs/stderr.txt",
        "logs/stdout.txt",
        "run1/a.txt",
        "run1/x/b.txt",
    ]
    assert cc.get_blob_client("final/r.csv").get_blob_properties().content_settings.content_type == "text/csv"
    log = stdout_of(client, "job", "writes", "fileuploadout.txt")
    assert "uploaded" in log and "run1/x/b.txt" in log and "sig=" not in log


@pytest.mark.parametrize(
    ("exit_code", "condition", "uploaded"),
    [
        (0, "tasksuccess", True),
        (3, "tasksuccess", False),
        (0, "taskfailure", False),
        (3, "taskfailure", True),
        (3, "taskcompletion", True),
    ],
)
def test_the_upload_condition_decides(client, storage, blobs, container, exit_code, condition, uploaded) -> None:
    url = container_url(storage, container, write=True)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="cond",
            command_line=f"/bin/sh -c 'echo x > r.txt; exit {exit_code}'",
            output_files=[out_file(url, "r.txt", condition)],
        ),
    )
    assert task.execution_info.exit_code == exit_code
    assert [b.name for b in blobs.get_container_client(container).list_blobs()] == (["r.txt"] if uploaded else [])
    if not uploaded:
        assert "does not hold" in stdout_of(client, "job", "cond", "fileuploadout.txt")


def test_a_pattern_matching_nothing_uploads_nothing_and_says_so(client, storage, blobs, container) -> None:
    url = container_url(storage, container, write=True)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(id="none", command_line="true", output_files=[out_file(url, "results/*.csv", "tasksuccess")]),
    )
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert list(blobs.get_container_client(container).list_blobs()) == []
    assert "results/*.csv: matched no file: nothing uploaded" in stdout_of(client, "job", "none", "fileuploadout.txt")


def test_an_upload_error_is_in_fileuploaderr_and_the_failure_info(client, storage, blobs) -> None:
    url = container_url(storage, "lbfiles-absent", write=True)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(id="upfail", command_line="/bin/sh -c 'echo x > r.txt'", output_files=[out_file(url, "r.txt")]),
    )
    info = task.execution_info
    assert info.exit_code == 0 and info.result == bm.BatchTaskExecutionResult.FAILURE
    assert (info.failure_info.category, info.failure_info.code) == ("usererror", "FileUploadContainerNotFound")
    err = stdout_of(client, "job", "upfail", "fileuploaderr.txt")
    assert "FileUploadContainerNotFound" in err and "sig=" not in err


@pytest.mark.parametrize(
    ("files", "code", "words"),
    [
        (
            {"resource_files": [bm.ResourceFile(http_url="http://127.0.0.1:1/c/x?sig=SECRET")]},
            "MissingRequiredProperty",
            "filePath",
        ),
        (
            {"resource_files": [bm.ResourceFile(http_url="http://127.0.0.1:1/c/x", file_path="../up")]},
            "InvalidPropertyValue",
            "filePath",
        ),
        (
            {"resource_files": [bm.ResourceFile(auto_storage_container_name="c")]},
            "UnsupportedProperty",
            "autoStorageContainerName",
        ),
        (
            {
                "resource_files": [
                    bm.ResourceFile(
                        storage_container_url="http://h/c", identity_reference=bm.BatchNodeIdentityReference(resource_id="/x")
                    )
                ]
            },
            "UnsupportedProperty",
            "identityReference",
        ),
        ({"output_files": [out_file("ftp://h/c?sig=SECRET", "x")]}, "InvalidPropertyValue", "containerUrl"),
    ],
)
def test_bad_task_files_are_refused_when_added_without_echoing_a_sas(client, files, code, words) -> None:
    make_pool(client, dedicated=1, wait=False)
    make_job(client)
    with pytest.raises(HttpResponseError) as err:
        client.create_task("job", bm.BatchTaskCreateOptions(id="bad", command_line="true", **files))
    text = str(err.value)
    assert code in text and words in text and "SECRET" not in text


def test_the_failure_shows_in_fed_tasks(client, storage, container) -> None:
    """The reason travels: localbatch failureInfo → the adapter → the tasks frame → `fed tasks`."""
    from types import SimpleNamespace

    from batchfed_lab.batch.tasks import task_info
    from batchfed_lab.commands.jobs import tasks
    from batchfed_lab.frames import tasks_frame
    from batchfed_lab.results import FederatedTask

    url = container_url(storage, container, write=False)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="t1", command_line="true", resource_files=[bm.ResourceFile(storage_container_url=url, blob_prefix="in/x.csv")]
        ),
    )
    df = tasks_frame([FederatedTask("job", "pool", "local", None, task_info(task))])
    stub = SimpleNamespace(tasks_frame=lambda *a, **k: df)
    res = tasks(stub, SimpleNamespace(federation_id="demo", job_id="job", schedule_id=None))  # type: ignore[arg-type]
    assert "BlobNotFound" in res.text and "failure" in res.text and "usererror" in res.text
    assert res.data[0]["failure_code"] == "BlobNotFound" and "in/x.csv" in res.data[0]["failure_message"]
    assert res.data[0]["failure_category"] == "usererror"  # Azure's category: the user's to fix, not the service's


def test_an_unreachable_endpoint_fails_fast_without_showing_the_sas(client, monkeypatch) -> None:
    dead = "http://127.0.0.1:9/devstoreaccount1/inputs?sv=2025-01-05&sp=rl&sig=SECRETSIG"
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="dead",
            command_line="true",
            resource_files=[bm.ResourceFile(storage_container_url=dead)],
            output_files=[out_file(dead, "x")],
        ),
    )
    info = task.execution_info
    assert info.failure_info.code == "BlobDownloadMiscError"
    assert "127.0.0.1:9" in info.failure_info.message and "SECRETSIG" not in info.failure_info.message


def test_a_task_owns_its_downloaded_inputs_even_when_it_runs_as_another_user(client, storage, blobs, container) -> None:
    """As root, tasks run as nobody: the files the server downloaded for them are handed over,
    so the task can rewrite them (Azure's task user owns its working directory too)."""
    blobs.get_container_client(container).upload_blob("in/a.txt", b"alpha\n")
    url = container_url(storage, container, write=False)
    task = run_one(
        client,
        bm.BatchTaskCreateOptions(
            id="rewrites",
            command_line="/bin/sh -c 'echo more >> in/a.txt && echo more >> in/new.txt && cat in/a.txt'",
            resource_files=[bm.ResourceFile(storage_container_url=url, blob_prefix="in/", file_mode="0600")],
        ),
    )
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS, task.execution_info.failure_info
    assert stdout_of(client, "job", "rewrites").split() == ["alpha", "more"]
