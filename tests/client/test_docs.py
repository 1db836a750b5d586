"""docs/magics.md and docs/cli.md cannot drift from the code: every column and verb is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchfed_lab import commands, frames

DOCS = Path(__file__).resolve().parents[2] / "docs"
TABLES = {
    "pools": frames.POOL_COLUMNS,
    "placements": frames.PLACEMENT_COLUMNS,
    "blocked": frames.BLOCKED_COLUMNS,
    "verdicts": frames.EXPLAIN_COLUMNS,
    "locations": frames.LOCATION_COLUMNS,
    "tasks": frames.TASK_COLUMNS,
    "federations": frames.FEDERATION_COLUMNS,
    "proxies": frames.PROXY_COLUMNS,
    "matrix": frames.MATRIX_COLUMNS,
    "results": frames.RESULT_COLUMNS,
    "outputs": frames.OUTPUT_COLUMNS,
    "blobs": frames.BLOB_COLUMNS,
    "cost": frames.COST_TASK_COLUMNS,
    "share": frames.SHARE_COLUMNS,
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_column_is_documented_in_its_section(name: str) -> None:
    text = (DOCS / "magics.md").read_text()
    section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", section))
    missing = [c for c in TABLES[name] if c not in documented]
    assert not missing, f"docs/magics.md section {name} lacks {missing}"


def test_every_verb_and_option_is_in_the_cli_docs() -> None:
    text = (DOCS / "cli.md").read_text()
    for path, verb in commands.all_paths():
        prefix = "batchfed " if verb.root else "fed "
        assert f"`{prefix}{' '.join(path)}" in text or f"(also `fed {' '.join(path)}" in text, path
        for p in verb.params:
            for flag in p.flags:
                assert flag in text, (path, flag)
