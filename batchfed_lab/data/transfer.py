"""Blob transfers with a storage account (``batchfed data …``, ``client.upload`` …).

``remote`` is ``container[/path]``. Uploads create the container when it is missing; every
other call needs it. A ``path`` names one blob or, when no blob has that exact name, every blob
under ``path/`` (a "folder"). Progress is a ``tqdm.auto`` bar in bytes, shown when somebody
watches (a terminal or a live notebook) and never under ``BATCHFED_NONINTERACTIVE=1`` or
papermill; ``progress=True/False`` decides it outright.

    upload(account, remote, local, *, progress=None) -> list[BlobItem]
    download(account, remote, local, *, progress=None) -> list[Path]
    list_blobs(account, remote) -> list[BlobItem]
    delete(account, remote) -> list[str]

Every failure is a :class:`~batchfed_lab.errors.DataError` with one line (the account, the
container or blob, and what Storage said); nothing is written locally for a download that
found nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from .accounts import StorageAccount, split_remote

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class BlobItem:
    """One blob: its name in the container, size in bytes, last change (UTC), content type."""

    container: str
    name: str
    size: int
    last_modified: dt.datetime
    content_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "name": self.name,
            "size": self.size,
            "last_modified": self.last_modified.isoformat(),
            "content_type": self.content_type,
        }


def show_progress(progress: bool | None) -> bool:
    """Should a transfer draw a bar? Off when told so, under papermill or without a watcher."""
    if progress is not None:
        return progress
    if os.environ.get("BATCHFED_NONINTERACTIVE", "").strip().lower() in _TRUE:
        return False
    if "papermill" in sys.modules or any(k.startswith("PAPERMILL_") for k in os.environ):
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


@contextlib.contextmanager
def _bar(total: int, what: str, on: bool) -> Iterator[Callable[[int], None]]:
    if not on:
        yield lambda _n: None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=what, leave=False) as bar:
        yield bar.update


@contextlib.contextmanager
def _storage_errors(account: StorageAccount, what: str) -> Iterator[None]:
    """Storage SDK errors become one-line DataErrors naming the account and the object."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ServiceRequestError

    try:
        yield
    except DataError:
        raise
    except ClientAuthenticationError as exc:
        raise DataError(f"storage account {account.name}: {what}: access denied ({_code(exc)})") from exc
    except HttpResponseError as exc:
        if exc.status_code == 404:
            raise DataError(f"storage account {account.name}: {what}: not found ({_code(exc)})") from exc
        if exc.status_code == 403:
            raise DataError(f"storage account {account.name}: {what}: access denied ({_code(exc)})") from exc
        raise DataError(f"storage account {account.name}: {what}: {_code(exc)}") from exc
    except ServiceRequestError as exc:
        raise DataError(f"storage account {account.name}: cannot reach {account.account_url}: {_short(exc)}") from exc
    except AzureError as exc:
        raise DataError(f"storage account {account.name}: {what}: {_short(exc)}") from exc


def _code(exc: Any) -> str:
    return str(getattr(exc, "error_code", None) or getattr(exc, "reason", None) or _short(exc))


def _short(exc: BaseException) -> str:
    """The first line of an error, any URL query (a SAS) in it cut out."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"\?[^\s'\"]+", "?<hidden>", text)[:200]


def _container(account: StorageAccount, container: str) -> ContainerClient:
    return account.service_client().get_container_client(container)


def _item(container: str, props: Any) -> BlobItem:
    settings = getattr(props, "content_settings", None)
    return BlobItem(container, props.name, int(props.size or 0), props.last_modified, getattr(settings, "content_type", None))


# == upload =========================================================================================
def _local_files(local: Path) -> list[tuple[Path, str]]:
    """(file, name relative to what was given) for a file or every file under a folder."""
    if local.is_file():
        return [(local, local.name)]
    if local.is_dir():
        return [(p, p.relative_to(local).as_posix()) for p in sorted(local.rglob("*")) if p.is_file()]
    raise DataError(f"{local}: no such file or folder")


def upload(
    account: StorageAccount, remote: str, local: str | os.PathLike[str], *, progress: bool | None = None
) -> list[BlobItem]:
    """Upload a file (to ``container/path``, or ``container/path/<name>`` when path is empty
    or ends with ``/``) or a folder's files (to ``container/path/<relative path>``)."""
    container, path = split_remote(remote)
    source = Path(local).expanduser()
    files = _local_files(source)
    if source.is_file() and path and not path.endswith("/"):
        names = [(source, path)]
    else:
        base = path.rstrip("/")
        names = [(f, f"{base}/{rel}" if base else rel) for f, rel in files]
    total = sum(f.stat().st_size for f, _ in names)
    client = _container(account, container)
    done: list[BlobItem] = []
    with _storage_errors(account, f"container {container}"):
        if not client.exists():
            client.create_container()
    with _bar(total, f"upload {container}", show_progress(progress)) as advance:
        for file, name in names:
            with _storage_errors(account, f"{container}/{name}"), open(file, "rb") as fh:
                blob = client.upload_blob(name, fh, overwrite=True, length=file.stat().st_size)
                done.append(_item(container, blob.get_blob_properties()))
            advance(file.stat().st_size)
    return done


# == download =======================================================================================
def _safe_relative(name: str, prefix: str) -> PurePosixPath:
    """The part of a blob name under ``prefix`` as a relative path that stays inside the target."""
    rel = PurePosixPath(name[len(prefix) :].lstrip("/"))
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or not rel.parts:
        raise DataError(f"blob {name!r}: its name would leave the download folder; refused")
    return rel


def _blobs_to_fetch(account: StorageAccount, container: str, path: str) -> tuple[list[BlobItem], str]:
    """The blob named ``path``, else every blob under ``path/``; and the prefix they share."""
    client = _container(account, container)
    with _storage_errors(account, f"container {container}"):
        if path and not path.endswith("/"):
            blob = client.get_blob_client(path)
            if blob.exists():
                return [_item(container, blob.get_blob_properties())], path.rpartition("/")[0]
        prefix = path if not path or path.endswith("/") else path + "/"
        found = [_item(container, b) for b in client.list_blobs(name_starts_with=prefix or None)]
    if not found:
        raise DataError(f"storage account {account.name}: {container}/{path}: no such blob, and no blob under it")
    return found, prefix


def download(account: StorageAccount, remote: str, local: str | os.PathLike[str], *, progress: bool | None = None) -> list[Path]:
    """Download one blob (to ``local``, or into it when it is a folder) or every blob under a
    prefix (into the folder ``local``, keeping their paths below the prefix)."""
    container, path = split_remote(remote)
    target = Path(local).expanduser()
    blobs, prefix = _blobs_to_fetch(account, container, path)
    single = len(blobs) == 1 and blobs[0].name == path
    if single:
        dest = target / PurePosixPath(path).name if target.is_dir() or str(local).endswith("/") else target
        plan = [(blobs[0], dest)]
    else:
        plan = [(b, target / _safe_relative(b.name, prefix)) for b in blobs]
    client = _container(account, container)
    written: list[Path] = []
    with _bar(sum(b.size for b, _ in plan), f"download {container}", show_progress(progress)) as advance:
        for blob, dest in plan:
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            try:
                with _storage_errors(account, f"{container}/{blob.name}"), open(part, "wb") as fh:
                    client.download_blob(blob.name).readinto(fh)
                os.replace(part, dest)  # a failed download leaves no half file under its name
            finally:
                part.unlink(missing_ok=True)
            written.append(dest)
            advance(blob.size)
    return written


# == list, delete ===================================================================================
def list_blobs(account: StorageAccount, remote: str) -> list[BlobItem]:
    """The blobs of ``container`` whose names start with ``path``."""
    container, path = split_remote(remote)
    client = _container(account, container)
    with _storage_errors(account, f"container {container}"):
        return [_item(container, b) for b in client.list_blobs(name_starts_with=path or None)]


def delete(account: StorageAccount, remote: str) -> list[str]:
    """Delete the blob named ``path``, else every blob under ``path/`` (every blob of the
    container when no path is given; the container stays). Returns the deleted names."""
    container, path = split_remote(remote)
    blobs, _prefix = _blobs_to_fetch(account, container, path)
    client = _container(account, container)
    names = [b.name for b in blobs]
    for name in names:
        with _storage_errors(account, f"{container}/{name}"):
            client.delete_blob(name)
    return names
