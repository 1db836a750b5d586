"""The workspace folder ($BATCHFED_HOME): owner-only tree, validated settings.yaml, no secrets."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from batchfed_lab.config.workspace import (
    CONNECTION_STRING_ENV,
    WorkspaceSettings,
    default_home,
    load_settings,
    open_workspace,
)
from batchfed_lab.errors import ConfigError, WorkspaceError

DATA = Path(__file__).resolve().parent.parent / "data"
BAD_SETTINGS = sorted((DATA / "bad-settings").glob("*.yaml"))
SUBFOLDERS = ("runtime", "logs", "localbatch")

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_open_workspace_creates_an_owner_only_tree(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "ws"
    ws = open_workspace(root)
    assert ws.path == root
    for d in (root, *(root / s for s in SUBFOLDERS)):
        assert d.is_dir(), d
        assert mode(d) == 0o700, f"{d}: {oct(mode(d))}"
    assert (ws.runtime_dir, ws.logs_dir, ws.localbatch_dir) == tuple(root / s for s in SUBFOLDERS)
    assert ws.settings_file == root / "settings.yaml"
    assert not ws.settings_file.exists(), "settings.yaml is optional and never written for the user"


@posix_only
def test_open_workspace_tightens_an_existing_0755_tree(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for d in (root, *(root / s for s in SUBFOLDERS)):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
    open_workspace(root)
    for d in (root, *(root / s for s in SUBFOLDERS)):
        assert mode(d) == 0o700, f"{d}: {oct(mode(d))}"


def test_opening_twice_is_harmless_and_keeps_files(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    marker = ws.logs_dir / "proxy.log"
    marker.write_text("kept")
    again = open_workspace(tmp_path / "ws")
    assert again.path == ws.path and marker.read_text() == "kept"


def test_create_false_does_not_create_anything(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "nowhere", create=False)
    assert not ws.path.exists()
    assert ws.settings == WorkspaceSettings()


def test_batchfed_home_chooses_the_workspace(workspace_dir: Path) -> None:
    assert default_home() == workspace_dir
    ws = open_workspace()
    assert ws.path == workspace_dir.absolute()
    assert (workspace_dir / "runtime").is_dir()


def test_without_batchfed_home_the_workspace_is_in_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BATCHFED_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_home() == Path.home() / ".batchfed"


def test_batchfed_home_expands_the_user_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BATCHFED_HOME", "~/elsewhere")
    assert default_home() == tmp_path / "elsewhere"


def test_a_file_in_place_of_the_workspace_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "ws"
    f.write_text("not a folder")
    with pytest.raises(WorkspaceError, match="exists and is not a folder"):
        open_workspace(f)


# --- settings.yaml ------------------------------------------------------------------


def test_default_settings_without_a_settings_file(workspace) -> None:
    s = workspace.settings
    assert s.store.backend == "sqlite"
    assert s.store.azure.credential == "default"
    assert s.store.azure.prefix == "batchfed"
    assert workspace.sqlite_path == workspace.path / "store.sqlite"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_an_empty_settings_file_means_defaults(tmp_path: Path, text: str) -> None:
    (tmp_path / "settings.yaml").write_text(text)
    assert load_settings(tmp_path) == WorkspaceSettings()


def test_settings_file_is_read_and_validated(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        "store:\n  backend: azure\n  azure:\n    account_name: fedstore\n    credential: connection_string\n    prefix: team1\n"
        "  sqlite:\n    path: /var/lib/batchfed/store.sqlite\n"
        "localbatch:\n  latency_ms: 25\n  max_processes: 8\n"
        "proxy:\n  workers: 4\n  max_attempts: 3\n"
    )
    ws = open_workspace(tmp_path)
    s = ws.settings
    assert (s.store.backend, s.store.azure.account_name, s.store.azure.credential, s.store.azure.prefix) == (
        "azure",
        "fedstore",
        "connection_string",
        "team1",
    )
    assert (s.localbatch.latency_ms, s.localbatch.max_processes, s.proxy.workers, s.proxy.max_attempts) == (25, 8, 4, 3)
    assert ws.sqlite_path == Path("/var/lib/batchfed/store.sqlite")


def test_an_invalid_settings_file_stops_open_workspace(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("store:\n  backend: mysql\n")
    with pytest.raises(ConfigError) as info:
        open_workspace(tmp_path)
    assert info.value.problems == ["settings.yaml: store.backend = 'mysql': expected 'sqlite' or 'azure'"]


def test_the_bad_settings_corpus_is_not_empty() -> None:
    assert len(BAD_SETTINGS) >= 8


@pytest.mark.parametrize("path", BAD_SETTINGS, ids=[p.stem for p in BAD_SETTINGS])
def test_bad_settings_file_is_refused(path: Path, tmp_path: Path) -> None:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect: ") and lines[1].startswith("# at: ")
    expect, at = lines[0][len("# expect: ") :], lines[1][len("# at: ") :]
    shutil.copy(path, tmp_path / "settings.yaml")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    first = info.value.problems[0]
    assert first.startswith(f"settings.yaml: {at}"), first
    assert expect in first, first
    assert all("\n" not in line for line in info.value.problems)


SECRETS = [
    (
        "store:\n  azure:\n    connection_string: DefaultEndpointsProtocol=https;AccountKey=S3CR3T==\n",
        "store.azure.connection_string",
    ),
    ("store:\n  azure:\n    connectionString: AccountKey=S3CR3T==\n", "store.azure.connectionString"),
    ("store:\n  azure:\n    account_key: S3CR3T==\n", "store.azure.account_key"),
    ("store:\n  azure:\n    sas: sig=S3CR3T==\n", "store.azure.sas"),
    ("proxy:\n  client_secret: S3CR3T==\n", "proxy.client_secret"),
    ("extra:\n- password: S3CR3T==\n", "extra[0].password"),
    ("api_token: S3CR3T==\n", "api_token"),
]


@pytest.mark.parametrize("text,where", SECRETS, ids=[w for _, w in SECRETS])
def test_secrets_in_settings_are_refused_pointing_to_the_environment_variable(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "settings.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        open_workspace(tmp_path)
    (line,) = info.value.problems
    assert line.startswith(f"settings.yaml: {where} = <hidden>: secrets are not read from files")
    assert CONNECTION_STRING_ENV in line and CONNECTION_STRING_ENV == "BATCHFED_STORAGE_CONNECTION_STRING"
    assert "S3CR3T" not in line, "the secret itself is never echoed"
