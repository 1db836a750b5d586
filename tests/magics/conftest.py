"""A real IPython shell with ``%load_ext batchfed_lab``, and one embedded stack (tests/stack.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from stack import stack_fixture

stack = stack_fixture("package", federations={"demo": ("we-small", "we-big", "us-gpu"), "loose": ("jp-small",)},
                      non_unique=("loose",))  # fmt: skip


@pytest.fixture(scope="package")
def ip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``InteractiveShell`` with its profile in a temp folder and history in memory."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    old = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=cfg)
    shell.run_line_magic("load_ext", "batchfed_lab")
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()
        if old is None:
            os.environ.pop("IPYTHONDIR", None)
        else:
            os.environ["IPYTHONDIR"] = old
