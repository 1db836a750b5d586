"""Notebook tests: papermill executes the example notebooks with a real kernel (see nbrun.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # nbrun, next to this file

from nbrun import install_kernelspec  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An explicit kernelspec first on JUPYTER_PATH and a private runtime dir (connection
    files), restored afterwards."""
    root = tmp_path_factory.mktemp("jupyter")
    name = install_kernelspec(root / "data")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root / "data"), *filter(None, [saved["JUPYTER_PATH"]])])
    os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
    yield name
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
