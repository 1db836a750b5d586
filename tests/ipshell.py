"""A real IPython shell for tests: its profile in a temp folder, history in memory,
``%load_ext batchfed_lab`` done, ``$BATCHFED_HOME`` set while it lives (when given)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def ipython_shell(ipython_dir: Path, home: Path | None = None) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    saved = {k: os.environ.get(k) for k in ("IPYTHONDIR", "BATCHFED_HOME")}
    os.environ["IPYTHONDIR"] = str(ipython_dir)
    if home is not None:
        os.environ["BATCHFED_HOME"] = str(home)
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=cfg)
    shell.run_line_magic("load_ext", "batchfed_lab")
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
