"""A task's ``resourceFiles`` and ``outputFiles``, as Azure Batch handles them, against any blob
endpoint (Azure Storage, Azurite) reached through the URLs the task carries.

Resource files are downloaded into the task's working directory before the command runs:
``httpUrl`` (one file to ``filePath``) or ``storageContainerUrl`` (every blob under
``blobPrefix``, kept under their names below ``filePath``), each made ``fileMode`` (default
0770). A failure ends the attempt before the command with failureInfo category ``usererror`` and
Batch's code: ``BlobNotFound`` (no such blob, container or prefix), ``BlobAccessDenied`` /
``ResourceContainerAccessDenied`` (403), ``BlobDownloadTimedOut``, ``BlobDownloadMiscError``,
``ResourceFileCreateFailed``.

Output files are uploaded after the command ends when their ``uploadCondition`` holds
(``taskSuccess``: exit code 0; ``taskFailure``: non-zero; ``taskCompletion``, the default:
either). ``filePattern`` is relative to the working directory (or absolute, inside the task
folder), ``$VAR`` / ``${VAR}`` of the task's environment are expanded first, and it matches as a
glob with ``*``, ``**``, ``?`` and ``[…]``; names starting with ``.`` match only when the pattern
says so. A pattern without wildcards uploads to ``path`` (or the file's name); with wildcards,
``path`` is a virtual folder and each file keeps its path below the pattern's fixed part. Every
upload and every pattern that matched nothing is written to ``fileuploadout.txt``, every error
to ``fileuploaderr.txt``, both in the task folder; a failed upload sets failureInfo
``FileUploadContainerNotFound``, ``FileUploadAccessDenied`` or ``FileUploadMiscError``.

Managed identities (``identityReference``) and the account's auto-storage
(``autoStorageContainerName``) do not exist here: a task naming them is refused when added.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ._util import ApiError, invalid, missing

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

DEFAULT_FILE_MODE = 0o770
DOWNLOAD_TIMEOUT_SECONDS = 120.0
RETRIES = 2  # of a failed Storage call, a few seconds apart
UPLOAD_CONDITIONS = ("tasksuccess", "taskfailure", "taskcompletion")
# headers an upload may set, as Batch passes them to Storage
_CONTENT_HEADERS = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-language": "content_language",
    "content-disposition": "content_disposition",
    "cache-control": "cache_control",
    "x-ms-blob-content-type": "content_type",
    "x-ms-blob-content-encoding": "content_encoding",
    "x-ms-blob-content-language": "content_language",
    "x-ms-blob-content-disposition": "content_disposition",
    "x-ms-blob-cache-control": "cache_control",
}
_WILDCARD = re.compile(r"[*?\[]")
_QUERY = re.compile(r"\?[^\s'\"]+")  # a URL's query: where a SAS sits
_ENV_REF = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass(frozen=True)
class FileFailure:
    """Why a download or upload failed: Batch's failureInfo code and a message (category usererror)."""

    code: str
    message: str


# == validation (task add) ==========================================================================
def _unsupported(prop: str, why: str) -> ApiError:
    return ApiError(400, "UnsupportedProperty", f"localbatch does not support {prop}: {why}.", {"PropertyName": prop})


def _rel_path(value: object, prop: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(prop, "must be a non-empty relative path", value)
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts:
        raise invalid(prop, "must stay inside the task's working directory (relative, no '..')", value)
    return value


def _url(value: object, prop: str) -> None:
    # the value may carry a SAS: never echo it in an error
    if not isinstance(value, str) or not re.match(r"^https?://[^/?#]+", value):
        raise invalid(prop, "must be an http(s) URL")


def _check_resource_file(rf: object, at: str) -> None:
    if not isinstance(rf, dict):
        raise invalid(at, "must be an object")
    if rf.get("identityReference") is not None:
        raise _unsupported(f"{at}.identityReference", "there are no managed identities here; give a URL with a SAS")
    if rf.get("autoStorageContainerName") is not None:
        raise _unsupported(f"{at}.autoStorageContainerName", "there is no auto-storage account; use storageContainerUrl")
    sources = [k for k in ("httpUrl", "storageContainerUrl") if rf.get(k) is not None]
    if len(sources) != 1:
        raise invalid(at, "give exactly one of httpUrl, storageContainerUrl or autoStorageContainerName")
    _url(rf[sources[0]], f"{at}.{sources[0]}")
    if sources[0] == "httpUrl":
        if rf.get("filePath") is None:
            raise missing(f"{at}.filePath")
        if rf.get("blobPrefix") is not None:
            raise invalid(f"{at}.blobPrefix", "is valid only with storageContainerUrl", rf["blobPrefix"])
    if rf.get("filePath") is not None:
        _rel_path(rf["filePath"], f"{at}.filePath")
    if rf.get("blobPrefix") is not None and not isinstance(rf["blobPrefix"], str):
        raise invalid(f"{at}.blobPrefix", "must be a string", rf["blobPrefix"])
    mode = rf.get("fileMode")
    if mode is not None and not (isinstance(mode, str) and re.fullmatch(r"0?[0-7]{3}", mode)):
        raise invalid(f"{at}.fileMode", "must be an octal mode such as 0644", mode)


def _check_output_file(of: object, at: str) -> None:
    if not isinstance(of, dict):
        raise invalid(at, "must be an object")
    if not isinstance(of.get("filePattern"), str) or not of["filePattern"].strip():
        raise missing(f"{at}.filePattern")
    container = ((of.get("destination") or {}) if isinstance(of.get("destination"), dict) else {}).get("container")
    if not isinstance(container, dict):
        raise missing(f"{at}.destination.container")
    if container.get("identityReference") is not None:
        raise _unsupported(f"{at}.destination.container.identityReference", "there are no managed identities here")
    _url(container.get("containerUrl"), f"{at}.destination.container.containerUrl")
    if container.get("path") is not None and not isinstance(container["path"], str):
        raise invalid(f"{at}.destination.container.path", "must be a string", container["path"])
    for i, h in enumerate(container.get("uploadHeaders") or []):
        name = h.get("name") if isinstance(h, dict) else None
        if not isinstance(name, str) or not (name.lower() in _CONTENT_HEADERS or name.lower().startswith("x-ms-meta-")):
            raise invalid(
                f"{at}.destination.container.uploadHeaders[{i}].name",
                "localbatch sets Content-Type/-Encoding/-Language/-Disposition, Cache-Control and x-ms-meta-*",
                name,
            )
    cond = (of.get("uploadOptions") or {}).get("uploadCondition") if isinstance(of.get("uploadOptions"), dict) else None
    if cond is None:
        raise missing(f"{at}.uploadOptions.uploadCondition")
    if not isinstance(cond, str) or cond.lower() not in UPLOAD_CONDITIONS:
        raise invalid(f"{at}.uploadOptions.uploadCondition", "must be taskSuccess, taskFailure or taskCompletion", cond)


def check_task_files(body: dict, prefix: str = "") -> None:
    """Validate ``resourceFiles`` and ``outputFiles`` of a task body (400 ApiError when wrong)."""
    for prop, check in (("resourceFiles", _check_resource_file), ("outputFiles", _check_output_file)):
        items = body.get(prop)
        if items is None:
            continue
        if not isinstance(items, list):
            raise invalid(prefix + prop, "must be a list")
        for i, item in enumerate(items):
            check(item, f"{prefix}{prop}[{i}]")


# == downloads ======================================================================================
def _http_failure(status: int, what: str, container: bool) -> FileFailure:
    if status in (401, 403):
        code = "ResourceContainerAccessDenied" if container else "BlobAccessDenied"
        return FileFailure(code, f"access to {what} was denied (HTTP {status}): check the SAS")
    if status == 404:
        return FileFailure("BlobNotFound", f"{what} does not exist")
    return FileFailure("BlobDownloadMiscError", f"downloading {what} failed (HTTP {status})")


def _strip_query(url: str) -> str:
    """A URL without its SAS, for messages."""
    return url.split("?", 1)[0]


def _detail(exc: BaseException) -> str:
    """The first line of an error, any URL query (a SAS) in it cut out."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return _QUERY.sub("?<hidden>", text)[:200]


def _inside(wd: Path, rel: str) -> Path | None:
    target = (wd / rel).resolve()
    return target if target == wd.resolve() or wd.resolve() in target.parents else None


def _fetch_url(url: str, dest: Path, mode: int, what: str) -> FileFailure | None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return FileFailure("ResourceDirectoryCreateFailed", f"cannot create {dest.parent}: {exc.strerror}")
    request = urllib.request.Request(url, headers={"x-ms-version": "2021-08-06"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
    except urllib.error.HTTPError as exc:
        dest.unlink(missing_ok=True)
        return _http_failure(exc.code, what, container=False)
    except TimeoutError:
        dest.unlink(missing_ok=True)
        return FileFailure("BlobDownloadTimedOut", f"downloading {what} took longer than {DOWNLOAD_TIMEOUT_SECONDS:g} s")
    except urllib.error.URLError as exc:
        return FileFailure("BlobDownloadMiscError", f"cannot reach {what}: {_detail(exc)}")
    except OSError as exc:
        dest.unlink(missing_ok=True)
        return FileFailure("ResourceFileWriteFailed", f"cannot write {dest}: {exc.strerror or exc}")
    os.chmod(dest, mode)
    return None


def _container_client(url: str) -> ContainerClient:
    """A client of the container URL (its SAS signs in), retrying a few seconds, not a minute."""
    from azure.storage.blob import ContainerClient, ExponentialRetry

    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=RETRIES, random_jitter_range=1)
    return ContainerClient.from_container_url(url, retry_policy=retry)


def _container_blobs(url: str, prefix: str) -> tuple[list[str], FileFailure | None]:
    from azure.core.exceptions import AzureError, HttpResponseError

    what = f"container {_strip_query(url)}"
    try:
        client = _container_client(url)
        return [b.name for b in client.list_blobs(name_starts_with=prefix or None)], None
    except HttpResponseError as exc:
        return [], _http_failure(exc.status_code or 0, what, container=True)
    except AzureError as exc:
        return [], FileFailure("BlobDownloadMiscError", f"cannot list {what}: {_detail(exc)}")


def _blob_url(container_url: str, name: str) -> str:
    from urllib.parse import quote

    base, _, query = container_url.partition("?")
    return f"{base.rstrip('/')}/{quote(name)}" + (f"?{query}" if query else "")


def _fetch_container(rf: dict, wd: Path, mode: int) -> FileFailure | None:
    url, prefix = rf["storageContainerUrl"], rf.get("blobPrefix") or ""
    names, failure = _container_blobs(url, prefix)
    if failure is not None:
        return failure
    if not names:
        where = f"container {_strip_query(url)}"
        return FileFailure("BlobNotFound", f"no blob in {where} starts with {prefix!r}" if prefix else f"{where} is empty")
    folder = rf.get("filePath") or "."
    for name in names:
        dest = _inside(wd, f"{folder}/{name}")
        if dest is None:
            return FileFailure("ResourceFileCreateFailed", f"blob {name!r} would be written outside the working directory")
        failure = _fetch_url(_blob_url(url, name), dest, mode, f"blob {name} of {_strip_query(url)}")
        if failure is not None:
            return failure
    return None


def fetch_inputs(resource_files: list[dict], wd: Path) -> FileFailure | None:
    """Download every resource file into ``wd``; the first failure, or None."""
    for rf in resource_files:
        mode = int(rf["fileMode"], 8) if rf.get("fileMode") else DEFAULT_FILE_MODE
        if rf.get("httpUrl"):
            dest = _inside(wd, rf["filePath"])
            if dest is None:
                return FileFailure("ResourceFileCreateFailed", f"{rf['filePath']!r} is outside the working directory")
            failure = _fetch_url(rf["httpUrl"], dest, mode, _strip_query(rf["httpUrl"]))
        else:
            failure = _fetch_container(rf, wd, mode)
        if failure is not None:
            return failure
    return None


# == uploads ========================================================================================
def _condition_holds(condition: str, exit_code: int) -> bool:
    cond = condition.lower()
    return cond == "taskcompletion" or (cond == "tasksuccess") == (exit_code == 0)


def _expand(pattern: str, env: dict[str, str]) -> str:
    return _ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), pattern)


def _matches(pattern: str, wd: Path, task_dir: Path) -> list[tuple[Path, str]]:
    """(file, blob name below the pattern's fixed part) for every file the pattern matches
    inside the task folder."""
    if not _WILDCARD.search(pattern):
        f = (wd / pattern).resolve()
        inside = f.is_file() and (task_dir.resolve() in f.parents)
        return [(f, f.name)] if inside else []
    fixed = []
    for part in PurePosixPath(pattern).parts:
        if _WILDCARD.search(part):
            break
        fixed.append(part)
    base = (wd / Path(*fixed)).resolve() if fixed else wd.resolve()
    found = []
    for hit in sorted(glob.glob(pattern, root_dir=wd, recursive=True)):
        f = (wd / hit).resolve()
        if f.is_file() and task_dir.resolve() in f.parents and (f == base or base in f.parents):
            found.append((f, f.relative_to(base).as_posix()))
    return found


def _blob_name(path: str, rel: str, wildcard: bool) -> str:
    path = path.strip("/")
    if not wildcard:
        return path or rel
    return f"{path}/{rel}" if path else rel


def _upload_failure(exc: Exception) -> FileFailure:
    from azure.core.exceptions import HttpResponseError

    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    detail = _detail(exc)
    if status == 404:
        return FileFailure(
            "FileUploadContainerNotFound", f"a destination container was not found while uploading output files: {detail}"
        )
    if status in (401, 403):
        return FileFailure("FileUploadAccessDenied", f"access to a destination container was denied: {detail}")
    return FileFailure("FileUploadMiscError", f"uploading output files failed: {detail}")


def _upload_one(container_url: str, file: Path, name: str, headers: list[dict]) -> None:
    from azure.storage.blob import ContentSettings

    content = {
        _CONTENT_HEADERS[h["name"].lower()]: h.get("value") or "" for h in headers if h["name"].lower() in _CONTENT_HEADERS
    }
    meta = {h["name"][len("x-ms-meta-") :]: h.get("value") or "" for h in headers if h["name"].lower().startswith("x-ms-meta-")}
    client = _container_client(container_url)
    with open(file, "rb") as fh:
        client.upload_blob(
            name,
            fh,
            overwrite=True,
            length=file.stat().st_size,
            content_settings=ContentSettings(**content) if content else None,  # type: ignore[arg-type]  # all str
            metadata=meta or None,
        )


def upload_outputs(output_files: list[dict], task_dir: Path, wd: Path, exit_code: int, env: dict[str, str]) -> FileFailure | None:
    """Upload the output files whose condition holds for ``exit_code``; log to
    ``fileuploadout.txt`` / ``fileuploaderr.txt`` in ``task_dir``. The first failure, or None."""
    out_lines: list[str] = []
    err_lines: list[str] = []
    first: FileFailure | None = None
    for of in output_files:
        pattern = _expand(of["filePattern"], env)
        cond = of["uploadOptions"]["uploadCondition"]
        if not _condition_holds(cond, exit_code):
            out_lines.append(f"{_stamp()} {pattern}: not uploaded: uploadCondition {cond} does not hold (exit code {exit_code})")
            continue
        dest = of["destination"]["container"]
        url = dest["containerUrl"]
        hits = _matches(pattern, wd, task_dir)
        if not hits:
            out_lines.append(f"{_stamp()} {pattern}: matched no file: nothing uploaded")
            continue
        for file, rel in hits:
            name = _blob_name(dest.get("path") or "", rel, bool(_WILDCARD.search(pattern)))
            try:
                _upload_one(url, file, name, dest.get("uploadHeaders") or [])
            except Exception as exc:  # every SDK or OS error is the task's upload failure
                failure = _upload_failure(exc)
                first = first or failure
                err_lines.append(f"{_stamp()} {file} -> {_strip_query(url)}/{name}: {failure.code}: {failure.message}")
                continue
            out_lines.append(f"{_stamp()} uploaded {file} -> {_strip_query(url)}/{name} ({file.stat().st_size} bytes)")
    _write_log(task_dir / "fileuploadout.txt", out_lines)
    _write_log(task_dir / "fileuploaderr.txt", err_lines)
    return first


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write_log(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
