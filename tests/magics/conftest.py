"""A real IPython shell with ``%load_ext batchfed_lab``, and one embedded stack (tests/stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ipshell import ipython_shell
from stack import stack_fixture

stack = stack_fixture(
    "package", federations={"demo": ("we-small", "we-big", "us-gpu"), "loose": ("jp-small",)}, non_unique=("loose",)
)


@pytest.fixture(scope="package")
def ip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``InteractiveShell`` with its profile in a temp folder and history in memory."""
    with ipython_shell(tmp_path_factory.mktemp("ipython")) as shell:
        yield shell
