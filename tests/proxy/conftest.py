"""The real embedded federation every proxy test module shares (see tests/federation_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from federation_stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("proxy") / "ws") as s:
        yield s
