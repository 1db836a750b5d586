"""Task re-write for placement (SPEC §5)."""

from __future__ import annotations

import pytest

from batchfed_lab.config import load_jobs
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.errors import SchedulingError
from batchfed_lab.scheduler import renumber_generated_ids, rewrite_for_placement, suffix_task_ids
from batchfed_lab.scheduler.rewrite import highest_generated

UID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


def tasks(yaml_tasks: str):
    return list(load_jobs(f"job_specifications:\n- id: j\n  tasks:\n{yaml_tasks}").job_specifications[0].task_definitions)


def test_non_unique_federation_suffixes_ids_and_dependencies():
    ts = tasks("  - {id: prep, command: a}\n  - {id: run, command: b, depends_on: [prep]}\n")
    out = rewrite_for_placement(ts, unique_id=UID, unique_job_ids=False)
    assert [t.id for t in out] == ["prep-3f2a9c1e", "run-3f2a9c1e"]
    assert out[1].depends_on == ("prep-3f2a9c1e",)


def test_unique_federation_keeps_dependency_ids():
    ts = tasks("  - {id: prep, command: a}\n  - {id: run, command: b, depends_on: [prep]}\n")
    out = rewrite_for_placement(ts, unique_id=UID, unique_job_ids=True)
    assert [t.id for t in out] == ["prep", "run"]


def test_suffixed_ids_are_limited_to_55_characters():
    long_id = "x" * 56
    with pytest.raises(SchedulingError, match="at most 55"):
        suffix_task_ids([TaskDefinition(id=long_id, command="a", depends_on=())], UID)
    assert len(suffix_task_ids([TaskDefinition(id="y" * 55, command="a")], UID)[0].id) == 64


def test_generated_ids_renumbered_after_the_highest_in_the_target_job():
    ts = tasks("  - {command: a}\n  - {command: b}\n  - {id: mine, command: c}\n")
    out = renumber_generated_ids(ts, existing_ids=["task-00000", "task-00007", "other"])
    assert [t.id for t in out] == ["task-00008", "task-00009", "mine"]


def test_renumbering_works_when_existing_ids_do_not_start_with_the_prefix():
    # the original crashed when the first sorted id lacked the prefix
    out = renumber_generated_ids(tasks("  - {command: a}\n"), existing_ids=["alpha", "mytask"])
    assert [t.id for t in out] == ["task-00000"]


def test_renumbering_skips_ids_already_taken_and_remaps_dependencies():
    ts = [
        TaskDefinition(id="task-00000", command="a", generated_id=True),
        TaskDefinition(id="task-00001", command="b", generated_id=True, depends_on=("task-00000",)),
        TaskDefinition(id="task-00003", command="c"),
    ]
    out = renumber_generated_ids(ts, existing_ids=["task-00001"])
    assert [t.id for t in out] == ["task-00002", "task-00004", "task-00003"]
    assert out[1].depends_on == ("task-00002",)


def test_empty_target_job_keeps_ids():
    ts = tasks("  - {command: a}\n")
    assert renumber_generated_ids(ts, existing_ids=[]) == ts


def test_highest_generated():
    assert highest_generated(["task-00009", "task-10", "task-x", "merge-task-00100"]) == 10
    assert highest_generated([]) == -1


def test_a_retried_placement_renumbers_the_same_way():
    ts = tasks("  - {command: a}\n  - {command: b}\n")
    first = renumber_generated_ids(ts, existing_ids=["task-00004"])
    # the retry sees its own first task in the job, but passes the highest seen at the start
    again = renumber_generated_ids(ts, existing_ids=["task-00004", first[0].id], highest=4)
    assert [t.id for t in again] == [t.id for t in first] == ["task-00005", "task-00006"]
