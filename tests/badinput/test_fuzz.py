"""The fuzzers of tests/badinput/fuzz.py with a few hundred examples each (the ``fuzz`` drill
runs 10,000 each): arbitrary input never escapes as anything but our one-line errors."""

from __future__ import annotations

import os

import fuzz  # tests/badinput/fuzz.py (tests/badinput is on the path, see conftest.py)
import pytest

EXAMPLES = int(os.environ.get("BATCHFED_FUZZ_EXAMPLES", "300"))
FUZZERS = fuzz.fuzzers(EXAMPLES)


@pytest.mark.parametrize("name", list(FUZZERS))
def test_fuzzer(name: str) -> None:
    fuzz.COUNTS[name].clear()
    FUZZERS[name]()
    counts = dict(fuzz.COUNTS[name])
    print(f"\n{name}: {sum(counts.values())} examples: {counts}")
    assert sum(counts.values()) >= min(EXAMPLES, 100), counts
