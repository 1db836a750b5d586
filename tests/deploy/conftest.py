"""Fixtures of the deploy tests: the wheel of this tree, built once, and a fake managed-identity
token endpoint with a blob endpoint that accepts its token, on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deploy_fakes import FakeIdentity, serving

from batchfed_lab.deploy.wheel import build_wheel


@pytest.fixture(scope="session")
def wheel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def fake_identity() -> Iterator[FakeIdentity]:
    with serving() as fake:
        yield fake
