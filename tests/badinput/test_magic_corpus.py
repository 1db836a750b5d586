"""Bad ``%fed`` lines and ``%%fed`` cells, run as a notebook runs them (``run_cell``): the cell
fails (so papermill fails), with one line of the expected error type, and no traceback is
shown. The bad jobs files of the YAML corpus go through ``%%fed submit`` as cell bodies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from badinput_helpers import assert_proxy_alive_and_placing
from corpus import BAD_FILES, MAGIC
from ipshell import ipython_shell
from stack import Stack, job_yaml


@pytest.fixture(scope="module")
def ip(tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> Iterator[Any]:
    with ipython_shell(tmp_path_factory.mktemp("ipython"), stack.root) as shell:
        yield shell


def run(ip: Any, line: str, cell: str | None) -> tuple[Any, str]:
    """Run like a notebook cell; return the result and everything shown."""
    from IPython.utils.capture import capture_output

    source = f"%%fed {line}\n{cell}" if cell is not None else f"%fed {line}"
    with capture_output() as shown:
        result = ip.run_cell(source)
    return result, shown.stdout + shown.stderr


@pytest.mark.parametrize("case", MAGIC, ids=[c[0] for c in MAGIC])
def test_magic_fails_the_cell_with_one_line(case: tuple[str, str, str | None, str, str], ip: Any, stack: Stack) -> None:
    name, line, cell, error, fragment = case
    before = stack.total_actions()
    result, shown = run(ip, line, cell)
    exc = result.error_in_exec or result.error_before_exec
    assert not result.success and exc is not None, f"{name}: the cell succeeded"
    assert type(exc).__name__ == error, f"{name}: {type(exc).__name__}: {exc}"
    message = str(exc)
    assert fragment in message and "\n" not in message, f"{name}: {message!r}"
    assert "Traceback" not in shown and "----> " not in shown, f"{name}: a traceback was shown:\n{shown}"
    assert f"{error}: " in shown or error == "UsageError", f"{name}: the error was not shown:\n{shown}"
    assert stack.total_actions() == before, f"{name}: something was enqueued"


JOB_FILES = [p for p in BAD_FILES if p.name.startswith("jobs-")]


@pytest.mark.parametrize("path", JOB_FILES, ids=[p.stem for p in JOB_FILES])
def test_bad_jobs_file_as_a_cell_body(path: Path, ip: Any, stack: Stack) -> None:
    before = stack.total_actions()
    # {name} is substituted only for names of user variables; the corpus uses none
    result, shown = run(ip, "submit bad", path.read_text(encoding="utf-8"))
    exc = result.error_in_exec
    assert not result.success and type(exc).__name__ in ("ConfigError", "ConflictError"), f"{path.name}: {exc!r}"
    assert str(exc).startswith("<cell>: ") and "\n" not in str(exc), str(exc)
    assert "Traceback" not in shown, shown
    assert stack.total_actions() == before


def test_output_of_a_missing_task_logs_no_traceback(ip: Any, stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """A notebook kernel has no log handler: a warning with a traceback would print in red
    above the one-line error, so there must be none."""
    job = "corpus-missing-task"
    stack.client.submit("bad", job_yaml(job)).wait(30)
    caplog.set_level(logging.WARNING)
    result, shown = run(ip, f"output bad --job-id {job} --task-id no-such-task", None)
    exc = result.error_in_exec
    assert type(exc).__name__ == "BatchNotFoundError" and "TaskNotFound" in str(exc) and "\n" not in str(exc), exc
    assert "Traceback" not in shown, shown
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_the_proxy_survived_the_magic_corpus(stack: Stack, proxy_pid: int) -> None:
    assert_proxy_alive_and_placing(stack, proxy_pid, "after-magic-corpus")
