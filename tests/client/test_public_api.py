"""The curated public API of ``batchfed_lab`` (as httpx's test_exported_members)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import batchfed_lab


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(batchfed_lab) if not name.startswith("_")}
    # subpackages imported along the way are modules, not API
    public = {n for n in public if type(getattr(batchfed_lab, n)).__name__ != "module"}
    assert set(batchfed_lab.__all__) - {"__version__"} == public
    assert batchfed_lab.__all__ == sorted(batchfed_lab.__all__)


def test_the_api_the_issue_promises_is_exported() -> None:
    for name in (
        "connect",
        "Client",
        "Submission",
        "Explanation",
        "BatchfedError",
        "ConfigError",
        "NotFoundError",
        "ConflictError",
        "SubmissionError",
        "load_ipython_extension",
        "__version__",
    ):
        assert name in batchfed_lab.__all__, name
    assert issubclass(batchfed_lab.SubmissionError, batchfed_lab.BatchfedError)


def test_precise_errors_are_exported_and_keep_their_code() -> None:
    b = batchfed_lab
    for cls, base, code in (
        (b.BatchUnreachableError, b.BatchError, "ServiceUnreachable"),
        (b.LocalBatchNotRunning, b.BatchError, "LocalBatchNotRunning"),
        (b.LocalBatchStartFailed, b.BatchError, "LocalBatchStartFailed"),
    ):
        assert cls.__name__ in b.__all__ and issubclass(cls, base)
        assert cls("x").code == code and cls("x", code="Other").code == "Other"
    assert "ConfirmationRequired" in b.__all__ and issubclass(b.ConfirmationRequired, b.BatchfedError)
    assert b.BatchError("x").code is None


def test_importing_does_nothing(tmp_path: Path) -> None:
    """No workspace folder, no log handler, no thread, no IPython import at import time."""
    home = tmp_path / "never-created"
    code = (
        "import logging, sys, threading, json; import batchfed_lab;"
        "print(json.dumps({'threads': threading.active_count(), 'handlers': len(logging.getLogger().handlers),"
        " 'batchfed_handlers': len(logging.getLogger('batchfed').handlers), 'ipython': 'IPython' in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"BATCHFED_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == {"threads": 1, "handlers": 0, "batchfed_handlers": 0, "ipython": False}
    assert not home.exists()
