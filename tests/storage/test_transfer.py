"""Blob transfers with a storage account (issue 18, point 4): upload, download, list and
delete against Azurite, with one-line errors and no half-written files."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchfed_lab.data import StorageAccount, delete, download, list_blobs, upload
from batchfed_lab.data.transfer import show_progress
from batchfed_lab.errors import DataError


@pytest.fixture
def acct(azurite) -> StorageAccount:
    return StorageAccount("local", azurite.endpoint("blob"), None, "emulator")


def test_a_file_goes_up_and_comes_back(acct: StorageAccount, tmp_path: Path) -> None:
    src = tmp_path / "x.txt"
    src.write_text("hello")
    [item] = upload(acct, "tr-one/in/x.txt", src, progress=False)
    assert (item.container, item.name, item.size) == ("tr-one", "in/x.txt", 5)
    assert item.last_modified.tzinfo is not None
    [got] = download(acct, "tr-one/in/x.txt", tmp_path / "out", progress=False)
    assert got == tmp_path / "out" and got.read_text() == "hello"
    (tmp_path / "dir").mkdir()
    [into] = download(acct, "tr-one/in/x.txt", tmp_path / "dir", progress=False)
    assert into == tmp_path / "dir" / "x.txt"


def test_a_folder_keeps_its_relative_paths_both_ways(acct: StorageAccount, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("bb")
    names = sorted(i.name for i in upload(acct, "tr-dir/run1", src, progress=False))
    assert names == ["run1/a.txt", "run1/sub/b.txt"]
    assert sorted(i.name for i in list_blobs(acct, "tr-dir/run1/sub")) == ["run1/sub/b.txt"]
    got = download(acct, "tr-dir/run1", tmp_path / "back", progress=False)
    assert sorted(p.relative_to(tmp_path / "back").as_posix() for p in got) == ["a.txt", "sub/b.txt"]
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "bb"


def test_a_file_to_a_folder_path_keeps_its_name(acct: StorageAccount, tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    src.write_text("1,2")
    [item] = upload(acct, "tr-name/results/", src, progress=False)
    assert item.name == "results/r.csv"


def test_delete_takes_one_blob_or_a_prefix(acct: StorageAccount, tmp_path: Path) -> None:
    for n in ("k/1", "k/2", "keep"):
        f = tmp_path / "f"
        f.write_text(n)
        upload(acct, f"tr-del/{n}", f, progress=False)
    assert delete(acct, "tr-del/k/1") == ["k/1"]
    assert delete(acct, "tr-del/k") == ["k/2"]
    assert [i.name for i in list_blobs(acct, "tr-del")] == ["keep"]


def test_missing_things_are_one_line_errors_and_write_nothing(acct: StorageAccount, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="container tr-missing: not found") as err:
        list_blobs(acct, "tr-missing")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no such file or folder"):
        upload(acct, "tr-missing/x", tmp_path / "absent", progress=False)
    (tmp_path / "f").write_text("f")
    upload(acct, "tr-missing/there", tmp_path / "f", progress=False)
    with pytest.raises(DataError, match=r"tr-missing/nope: no such blob") as err:
        download(acct, "tr-missing/nope", tmp_path / "out", progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="no such blob"):
        delete(acct, "tr-missing/x")


def test_an_unreachable_account_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("batchfed_lab.data.accounts.RETRY_TOTAL", 0)
    dead = StorageAccount("gone", "http://127.0.0.1:9/devstoreaccount1", None, "emulator")
    with pytest.raises(DataError, match="gone"):
        list_blobs(dead, "c-x")


def test_progress_is_off_when_nobody_watches(monkeypatch) -> None:
    monkeypatch.setenv("BATCHFED_NONINTERACTIVE", "1")
    assert show_progress(None) is False
    assert show_progress(True) is True
