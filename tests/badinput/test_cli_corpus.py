"""Bad command lines, and the bad YAML corpus fed through the CLI: exit ≠ 0, a clear error on
stderr, no traceback anywhere, nothing enqueued."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from badinput_helpers import assert_proxy_alive_and_placing
from click.testing import CliRunner
from corpus import BAD_FILES, BAD_SETTINGS, CLI, CLI_SUBPROCESS
from stack import Stack, batchfed_exe, job_yaml

from batchfed_lab.cli import main

SECRETS_IN_BAD_SETTINGS = ("DefaultEndpointsProtocol", "AccountKey=", "c2VjcmV0", "hunter2", "sv=20")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli-corpus")
    (d / "folder").mkdir()
    (d / "binary.yaml").write_bytes(b"job_specifications:\n- id: \xff\xfe\x00\n")
    (d / "jobs.yaml").write_text(job_yaml("corpus-good"))
    (d / "pool.yaml").write_text("pool_specification: {id: we-small, vm_size: standard_d2_v3, vm_count: {dedicated: 1}}\n")
    (d / "federation.yaml").write_text("federation: {proxy_options: {polling_interval: {federations: 1}}}\n")
    placed = "corpus-placed"
    stack.client.submit("bad", job_yaml(placed)).wait(30)
    return {
        "missing": str(d / "absent.yaml"),
        "dir": str(d / "folder"),
        "binary": str(d / "binary.yaml"),
        "good_jobs": str(d / "jobs.yaml"),
        "good_pool": str(d / "pool.yaml"),
        "bad_fed": str(d / "federation.yaml"),
        "long": "x" * 5000,
        "placed": placed,
    }


def _argv(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) if "{" in a else a for a in argv]


def invoke(stack: Stack, argv: list[str], home: Path | None = None) -> Any:
    runner = CliRunner()
    return runner.invoke(main, argv, env={"BATCHFED_HOME": str(home or stack.root)}, catch_exceptions=True)


def assert_clear_failure(code: int, out: str, err: str, fragment: str | None, what: str) -> None:
    assert code != 0, f"{what}: exit code 0\n{out}"
    assert "Traceback" not in out + err, f"{what}: a traceback was shown:\n{err}"
    assert err.strip(), f"{what}: nothing on stderr"
    if not what.startswith("config-validate"):  # `config validate` prints the problems themselves
        assert "error" in err.lower(), f"{what}: no error line:\n{err}"
    if fragment is not None:
        assert fragment in err, f"{what}: {fragment!r} not in:\n{err}"


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_cli_argument_is_refused_clearly(case: tuple[str, list[str], str], stack: Stack, files: dict[str, str]) -> None:
    name, argv, fragment = case
    before = stack.total_actions()
    r = invoke(stack, _argv(argv, files))
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        f"{name}: {type(r.exception).__name__} escaped: {r.exception}"
    )
    assert_clear_failure(r.exit_code, r.stdout, r.stderr, fragment, name)
    if not err_is_usage(r.stderr):
        assert len(r.stderr.strip().splitlines()) == 1, f"{name}: more than one line:\n{r.stderr}"
    assert stack.total_actions() == before, f"{name}: something was enqueued"


def err_is_usage(err: str) -> bool:
    """click's own usage errors outside ``fed`` print usage, a hint and the error (no traceback)."""
    return err.startswith("Usage:")


@pytest.mark.parametrize("name", CLI_SUBPROCESS)
def test_cli_through_the_console_script(name: str, stack: Stack, files: dict[str, str]) -> None:
    argv, fragment = next((c[1], c[2]) for c in CLI if c[0] == name)
    p = subprocess.run(
        [*batchfed_exe(), *_argv(argv, files)],
        env=stack.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_clear_failure(p.returncode, p.stdout, p.stderr, fragment, name)


def _route(path: Path, files: dict[str, str]) -> list[str]:
    kind = path.name.split("-", 1)[0]
    if kind == "pool":
        return ["fed", "pool", "add", "bad", "--pool-config", str(path), "--create"]
    if kind == "federation":
        return ["fed", "proxy", "start", "--standby", "--config", str(path)]
    return ["fed", "jobs", "add", "bad", str(path)]


def _expect(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_yaml_file_through_the_cli(path: Path, stack: Stack, files: dict[str, str]) -> None:
    from batchfed_lab.proxy import lifecycle

    before, proxies = stack.total_actions(), len(lifecycle.running(stack.client.workspace))
    r = invoke(stack, _route(path, files))
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{path.name}: {r.exception!r}"
    kind = path.name.split("-", 1)[0]
    # the file's own expectation holds when the command reads it as the kind it claims to be
    fragment = _expect(path) if kind in ("jobs", "pool", "federation") else None
    assert_clear_failure(r.exit_code, r.stdout, r.stderr, fragment, path.name)
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert path.name in r.stderr, r.stderr
    assert stack.total_actions() == before
    assert len(lifecycle.running(stack.client.workspace)) == proxies  # no proxy started from a bad file


@pytest.mark.parametrize("path", BAD_SETTINGS, ids=[p.stem for p in BAD_SETTINGS])
def test_bad_workspace_settings_through_the_cli(path: Path, stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    (home / "settings.yaml").write_text(path.read_text())
    r = invoke(stack, ["fed", "list"], home=home)
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{path.name}: {r.exception!r}"
    assert_clear_failure(r.exit_code, r.stdout, r.stderr, _expect(path), path.name)
    assert len(r.stderr.strip().splitlines()) == 1 and "settings.yaml" in r.stderr, r.stderr
    for secret in SECRETS_IN_BAD_SETTINGS:
        assert secret not in r.stderr, f"{path.name}: a secret was echoed"


def test_workspace_path_that_is_a_file(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    r = invoke(stack, ["fed", "list"], home=home)
    assert_clear_failure(r.exit_code, r.stdout, r.stderr, "not a folder", "BATCHFED_HOME is a file")


def test_the_proxy_survived_the_cli_corpus(stack: Stack, proxy_pid: int) -> None:
    assert_proxy_alive_and_placing(stack, proxy_pid, "after-cli-corpus")
