"""``batchfed data upload | download | list | delete STORAGE REMOTE [LOCAL]``: blobs in the
workspace's storage accounts (``settings.yaml`` ``storage_accounts:`` and ``local``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from .params import Param
from .shape import Result, done, frame_result

if TYPE_CHECKING:
    from ..client import Client

STORAGE = Param(
    "storage", metavar="STORAGE", required=True, help="storage account: a name of settings.yaml storage_accounts, or local"
)
REMOTE = Param("remote", metavar="REMOTE", required=True, help="container[/path] in the storage account")
BLOB_TEXT = ["container", "name", "size", "last_modified"]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]  # bytes become a fraction of the next unit
    return f"{n} B"


def data_upload(c: Client, a: SimpleNamespace) -> Result:
    items = c.upload(a.storage, a.remote, a.local, progress=None)
    total = sum(i.size for i in items)
    lines = [f"uploaded {len(items)} file{'s' if len(items) != 1 else ''} ({_size(total)}) to {a.storage}"]
    lines += [f"  {i.container}/{i.name}" for i in items]
    return done("\n".join(lines), items, [i.as_dict() for i in items])


def data_download(c: Client, a: SimpleNamespace) -> Result:
    paths = c.download(a.storage, a.remote, a.local or ".", progress=None)
    lines = [f"downloaded {len(paths)} file{'s' if len(paths) != 1 else ''} from {a.storage}"]
    lines += [f"  {p}" for p in paths]
    return done("\n".join(lines), paths, [str(p) for p in paths])


def data_list(c: Client, a: SimpleNamespace) -> Result:
    df = c.list_data_frame(a.storage, a.remote)
    return frame_result(df, BLOB_TEXT, f"no blobs under {a.remote} in {a.storage}")


def data_delete(c: Client, a: SimpleNamespace) -> Result:
    names = c.delete_data(a.storage, a.remote)
    container = a.remote.strip().lstrip("/").partition("/")[0]
    lines = [f"deleted {len(names)} blob{'s' if len(names) != 1 else ''} from {a.storage}"]
    lines += [f"  {container}/{n}" for n in names]
    return done("\n".join(lines), names, {"deleted": names})
