"""The short versions of the resilience drills (``drills/run.py --short``), one test each.
``make drills`` runs the full versions; both print every figure and check every bound."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from drills.run import DRILLS  # noqa: E402

# the fuzzers run at short strength in tests/badinput/test_fuzz.py already
SHORT = [d for d in DRILLS if d != "fuzzing"]


@pytest.mark.parametrize("name", SHORT)
def test_short_drill(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if name in ("azure_outage",):
        request.getfixturevalue("azurite")  # skips with BATCHFED_SKIP_AZURITE=1, like the other Azure tests
    drill = importlib.import_module(f"drills.{name}")
    outcome = drill.run(tmp_path / "ws", short=True)
    print("\n" + outcome.report())
    assert outcome.ok, "bounds not met: " + "; ".join(outcome.failures())
