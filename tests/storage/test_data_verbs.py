"""``batchfed data …`` and ``%fed data …`` (issue 18, point 4): one verb table, the same
results; listings are JSON with --raw and a DataFrame with -o; bad input is one line and a
non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ipshell import ipython_shell
from stack import batchfed_exe

import batchfed_lab
from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.data import local as local_storage
from batchfed_lab.errors import DataError


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace whose storage account ``local`` runs (only Azurite: no Batch needed)."""
    root = tmp_path_factory.mktemp("data-verbs") / "ws"
    ws = open_workspace(root)
    local_storage.start(ws)
    yield root
    local_storage.stop(ws)


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATCHFED_HOME": str(home)}
    res = subprocess.run([*batchfed_exe(), *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture
def ip(tmp_path: Path, home: Path) -> Iterator[Any]:
    with ipython_shell(tmp_path / "ipython", home) as shell:
        yield shell


def test_the_cli_round_trip(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "x.txt"
    src.write_text("payload")
    up = cli(home, "data", "upload", "local", "inputs/x.txt", str(src))
    assert "uploaded 1 file" in up.stdout and "inputs/x.txt" in up.stdout
    listed = json.loads(cli(home, "data", "list", "local", "inputs", "--raw").stdout)
    assert [(r["container"], r["name"], r["size"]) for r in listed] == [("inputs", "x.txt", 7)]
    assert listed[0]["last_modified"].endswith("Z")
    assert "x.txt" in cli(home, "data", "list", "local", "inputs").stdout
    cli(home, "data", "download", "local", "inputs/x.txt", str(tmp_path / "got.txt"))
    assert (tmp_path / "got.txt").read_text() == "payload"
    gone = cli(home, "data", "delete", "local", "inputs/x.txt", "--yes")
    assert "deleted 1 blob" in gone.stdout
    assert json.loads(cli(home, "data", "list", "local", "inputs", "--raw").stdout) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("data", "list", "nosuch", "inputs"), "storage_accounts.nosuch: no such storage account"),
        (("data", "list", "local", "In_Valid"), "container 'In_Valid'"),
        (("data", "download", "local", "inputs/none.txt", "."), "no such blob"),
        (("data", "upload", "local", "inputs/y", "/nonexistent/file"), "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(home: Path, args: tuple[str, ...], words: str) -> None:
    cli(home, "data", "upload", "local", "inputs/keep.txt", __file__)  # the container exists
    res = cli(home, *args, check=False)
    assert res.returncode != 0 and words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_the_magic_gives_a_dataframe_and_the_same_blobs(ip: Any, home: Path, tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    src.write_text("a,b\n1,2\n")
    ip.run_line_magic("fed", f"data upload local results/run1/ {src}")
    ip.run_line_magic("fed", "data list local results/run1 -o blobs")
    df = ip.user_ns["blobs"]
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(batchfed_lab.frames.BLOB_COLUMNS)
    assert df[["storage", "container", "name", "size"]].values.tolist() == [["local", "results", "run1/m.csv", 8]]
    assert str(df["last_modified"].dtype) == "datetime64[us, UTC]"
    cli_rows = json.loads(cli(home, "data", "list", "local", "results/run1", "--raw").stdout)
    assert [r["name"] for r in cli_rows] == df["name"].tolist()
    ip.run_line_magic("fed", f"data download local results/run1 {tmp_path / 'back'}")
    assert (tmp_path / "back" / "m.csv").read_text() == "a,b\n1,2\n"
    with pytest.raises(DataError, match="no such storage account"):
        ip.run_line_magic("fed", "data list nosuch results")


def test_the_client_api(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "c.txt"
    src.write_text("c")
    with batchfed_lab.connect(home) as c:
        [item] = c.upload("local", "client/c.txt", src, progress=False)
        assert item.name == "c.txt"
        assert [b.name for b in c.list_data("local", "client")] == ["c.txt"]
        assert c.list_data_frame("local", "client")["size"].tolist() == [1]
        assert c.download("local", "client/c.txt", tmp_path / "d.txt", progress=False) == [tmp_path / "d.txt"]
        assert c.delete_data("local", "client") == ["c.txt"]
        assert "?se=" in c.container_url("local", "client") or "&se=" in c.container_url("local", "client")
