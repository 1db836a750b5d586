"""tests/badinput: the bad-input corpus and the fuzzers.

One embedded stack (tests/stack.py) for the whole folder: federation ``bad`` (two pools)
and ``spare`` (one), the proxy running. Its pid is taken at the start; every corpus module
checks at its end that the same proxy is still alive and placing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from badinput_helpers import Raw
from stack import Stack, embedded_stack, wait_until

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with embedded_stack(
        tmp_path_factory.mktemp("badinput") / "ws", federations={"bad": ("we-small", "we-big"), "spare": ("us-gpu",)}
    ) as s:
        yield s


@pytest.fixture(scope="package", autouse=True)
def proxy_pid(stack: Stack) -> int:
    from batchfed_lab.proxy import lifecycle

    (p,) = wait_until(lambda: lifecycle.running(stack.client.workspace), "the proxy", 20)
    return p.pid


@pytest.fixture(scope="package")
def raw(stack: Stack) -> Raw:
    return Raw(stack)


@pytest.fixture(scope="package")
def env(stack: Stack) -> dict[str, str]:
    return {**os.environ, "BATCHFED_HOME": str(stack.root)}
