"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch a developer's real workspace, and never start live refresh threads.
os.environ.setdefault("BATCHFED_NONINTERACTIVE", "1")


@pytest.fixture
def workspace_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty workspace folder exported as BATCHFED_HOME for this test."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATCHFED_HOME", str(ws))
    return ws


@pytest.fixture
def workspace(workspace_dir: Path):
    from batchfed_lab.config.workspace import open_workspace

    return open_workspace(workspace_dir)


# tests/ is importable so test modules can share plain helpers (tests/factories.py)
import sys as _sys  # noqa: E402  (kept next to the reason it is here)

_sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def azurite():
    """Azurite from node_modules, in memory on 127.0.0.1 ephemeral ports, stopped by pid.
    Shared by every test area that needs Azure Storage (one per session)."""
    from batchfed_lab.store.emulator import Azurite, find_azurite

    if os.environ.get("BATCHFED_SKIP_AZURITE") == "1":
        pytest.skip("BATCHFED_SKIP_AZURITE=1")
    script = find_azurite(Path(__file__).resolve().parents[1])
    if script is None:
        pytest.fail("azurite is missing: run `make azurite` (or set BATCHFED_SKIP_AZURITE=1 to skip the Azure tests)")
    az = Azurite.start(script)
    yield az
    az.stop(grace=10)


@pytest.fixture(scope="session")
def azurite_oauth(tmp_path_factory: pytest.TempPathFactory):
    """A second Azurite, in OAuth mode over HTTPS (a certificate made for this session), with a
    loopback managed identity endpoint issuing its tokens: the Entra ID path to Storage."""
    from azurite_oauth import start_oauth_azurite

    from batchfed_lab.store.emulator import find_azurite

    if os.environ.get("BATCHFED_SKIP_AZURITE") == "1":
        pytest.skip("BATCHFED_SKIP_AZURITE=1")
    script = find_azurite(Path(__file__).resolve().parents[1])
    if script is None:
        pytest.fail("azurite is missing: run `make azurite` (or set BATCHFED_SKIP_AZURITE=1 to skip the Azure tests)")
    oauth = start_oauth_azurite(script, tmp_path_factory.mktemp("azurite-tls"))
    yield oauth
    oauth.close()
