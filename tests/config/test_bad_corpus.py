"""Every file in tests/data/bad/ is refused with one readable line per problem.

Each corpus file starts with two header comments:

    # expect: <fragment the first problem must contain>
    # at: <what the first problem says right after "<file name>: ">

``at`` is the YAML path and the offending value (``tasks[0].gpus = 'two'``), the line and
column for a YAML syntax error, or the whole-document reason when there is no path.
The same lines must come out of ``batchfed config validate`` — exit 1, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from batchfed_lab.config import validate_file
from batchfed_lab.errors import ConfigError

DATA = Path(__file__).resolve().parent.parent / "data"
BAD = sorted((DATA / "bad").glob("*.yaml"))
BATCHFED = Path(sys.executable).parent / "batchfed"  # the console script of this venv


def header(path: Path) -> tuple[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 2 and lines[0].startswith("# expect: ") and lines[1].startswith("# at: "), (
        f"{path.name} must start with '# expect: …' and '# at: …' lines"
    )
    return lines[0][len("# expect: ") :], lines[1][len("# at: ") :]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_file(path)
    return info.value.problems


def test_the_corpus_is_large_and_every_file_has_its_expectation() -> None:
    assert len(BAD) >= 40, f"only {len(BAD)} bad config files"
    kinds = {p.name.split("-", 1)[0] for p in BAD}
    assert {"jobs", "pool", "federation"} <= kinds
    for path in BAD:
        expect, at = header(path)
        assert expect.strip() and at.strip(), path.name


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_file_is_refused_naming_file_path_value_and_why(path: Path) -> None:
    expect, at = header(path)
    problems = problems_of(path)
    assert problems, "a ConfigError must carry at least one problem"
    first = problems[0]
    assert first.startswith(f"{path.name}: {at}"), f"\n  got:  {first}\n  want: {path.name}: {at}…"
    assert expect in first, f"\n  got:  {first}\n  want fragment: {expect}"
    for line in problems:
        assert "\n" not in line and "\r" not in line, f"multi-line problem: {line!r}"
        assert line.startswith(f"{path.name}: "), line
        assert "Traceback" not in line and "pydantic" not in line.lower(), line
        # the why follows the location; nothing is left empty
        assert len(line) > len(path.name) + 10


def test_a_secret_is_never_echoed_back() -> None:
    path = DATA / "bad" / "federation-secret-in-store.yaml"
    secret = "c2VjcmV0LWtleS1kby1ub3QtcHJpbnQ="
    assert secret in path.read_text()
    with pytest.raises(ConfigError) as info:
        validate_file(path)
    assert secret not in str(info.value)
    assert all(secret not in line for line in info.value.problems)


def test_a_value_under_a_secret_looking_key_is_hidden_in_any_message(tmp_path: Path) -> None:
    f = tmp_path / "jobs.yaml"
    f.write_text(
        "job_specifications:\n- id: db\n  tasks:\n  - command: ./migrate\n"
        "    environment_variables:\n      DB_PASSWORD: [hunter2, hunter3]\n"
    )
    problems = problems_of(f)
    assert problems == [
        "jobs.yaml: job_specifications[0].tasks[0].environment_variables.DB_PASSWORD = <hidden>: "
        "the value of DB_PASSWORD must be a string, number or boolean"
    ]


def test_a_typo_of_a_required_key_says_unknown_key_before_missing_key() -> None:
    problems = problems_of(DATA / "bad" / "pool-unknown-key-typo.yaml")
    assert problems == [
        "pool-unknown-key-typo.yaml: pool_specification.vm_sise = 'STANDARD_D2S_V3': unknown key; did you mean 'vm_size'?",
        "pool-unknown-key-typo.yaml: pool_specification.vm_size: required key is missing",
    ]


def test_a_value_failing_every_union_member_is_one_problem_without_type_tags() -> None:
    (line,) = problems_of(DATA / "bad" / "jobs-wrong-type-gpus.yaml")
    assert line == (
        "jobs-wrong-type-gpus.yaml: job_specifications[0].tasks[0].gpus = 'two': expected a whole number, or 'all' or 'disable'"
    )
    # a sweep range (a union of range mapping and value list) shows only the range's own error
    (line,) = problems_of(DATA / "bad" / "jobs-sweep-zero-step.yaml")
    assert "tuple" not in line and "SweepRange" not in line and "expected a list" not in line


def test_every_problem_of_a_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    f = tmp_path / "several.yaml"
    f.write_text(
        "pool_specification:\n  id: bad id\n  vm_size: STANDARD_D2S_V3\n  vm_count: {dedicated: -1}\n  task_slots_per_node: 0\n"
    )
    problems = problems_of(f)
    assert problems == [
        "several.yaml: pool_specification.id = 'bad id': pool id must be 1-64 letters, digits, hyphens or underscores",
        "several.yaml: pool_specification.vm_count.dedicated = -1: must be at least 0",
        "several.yaml: pool_specification.task_slots_per_node = 0: must be at least 1",
    ]


# --- the command line ---------------------------------------------------------------


def run_cli(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BATCHFED), "config", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def cli_runs() -> dict[Path, subprocess.CompletedProcess[str]]:
    """``batchfed config validate <file>`` once per bad file (two at a time: it is a process each)."""
    assert BATCHFED.exists(), f"console script missing: {BATCHFED} (pip install -e .)"
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(BAD, pool.map(run_cli, BAD)))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_cli_refuses_bad_file_with_exit_1_and_the_problem_lines(path: Path, cli_runs) -> None:
    expect, at = header(path)
    run = cli_runs[path]
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == "", "nothing is printed as ok for a bad file"
    lines = run.stderr.splitlines()
    assert lines == problems_of(path), "the CLI prints exactly the library's problem lines"
    assert lines[0].startswith(f"{path.name}: {at}")
    assert expect in lines[0]


def test_cli_validates_many_files_reporting_each(tmp_path: Path) -> None:
    good = DATA / "good" / "jobs-minimal.yaml"
    bad = DATA / "bad" / "jobs-command-empty.yaml"
    run = run_cli(good, bad, tmp_path / "missing.yaml")
    assert run.returncode == 1
    assert run.stdout.splitlines() == [f"{good}: ok"]
    err = run.stderr.splitlines()
    assert err[0].startswith("jobs-command-empty.yaml: job_specifications[0].tasks[0].command = ''")
    assert err[1] == f"{tmp_path / 'missing.yaml'}: file not found"
    assert "Traceback" not in run.stderr


def test_cli_refuses_a_folder_and_a_binary_file_in_one_line(tmp_path: Path) -> None:
    blob = tmp_path / "image.yaml"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    run = run_cli(tmp_path, blob)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"{tmp_path}: is a folder, not a YAML file",
        "image.yaml: not UTF-8 text (byte 0)",
    ]


@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "named pipe"])
def test_a_device_or_a_pipe_is_refused_at_once_never_read(tmp_path: Path, kind: str) -> None:
    # read without bound, /dev/zero would fill memory; opened for reading, a pipe with no
    # writer would block for ever: both are refused before a byte is read
    path = Path(kind)
    if kind == "named pipe":
        path = tmp_path / "jobs.yaml"
        os.mkfifo(path)
    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(validate_file, path)
        with pytest.raises(ConfigError, match="is not a regular file"):
            outcome.result(timeout=10)


def test_a_file_over_the_limit_is_refused_reading_no_more_than_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from batchfed_lab.config import loading

    monkeypatch.setattr(loading, "MAX_CONFIG_BYTES", 1000)
    big = tmp_path / "jobs.yaml"
    big.write_text("# " + "x" * 2000 + "\n")
    with pytest.raises(ConfigError, match=r"^jobs\.yaml: file is larger than 1000 bytes, the limit; split it into "):
        validate_file(big)
