"""Task file calls: list a task's folder, read (whole or a byte range) or delete one file.
Every path stays inside the task's folder."""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
import shutil
from email.utils import formatdate
from pathlib import Path

from .._util import ApiError, iso, not_found
from ..engine import Engine
from .lookup import task_of, task_url
from .messages import FileRange, Request, Response
from .replies import page


def _safe_path(root: Path, rel: str) -> Path:
    """Resolve ``rel`` under ``root``; refuse anything that would leave it (.., absolute, links)."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if rel.startswith("/") or ".." in parts or "\0" in rel:
        raise ApiError(400, "InvalidUri", "The file path must stay inside the task folder.", {"FilePath": rel[:200]})
    base = root.resolve()
    target = (base / "/".join(parts)).resolve()
    if target != base and base not in target.parents:
        raise ApiError(400, "InvalidUri", "The file path must stay inside the task folder.", {"FilePath": rel[:200]})
    return target


def _file_props(path: Path) -> dict:
    st = path.stat()
    created = iso(_dt_from(st.st_ctime))
    return {
        "creationTime": created,
        "lastModified": iso(_dt_from(st.st_mtime)),
        "contentLength": str(0 if path.is_dir() else st.st_size),  # an int64, which Batch sends as a string
        "contentType": "application/octet-stream",
        "fileMode": oct(st.st_mode & 0o777)[2:].rjust(4, "0"),
    }


def _dt_from(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc)


def list_task_files(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        root = eng.task_dir(task)
        files_url = f"{task_url(req, task.job, task)}/files"
    recursive = req.query.get("recursive", "false").lower() == "true"
    items: list[tuple[int, dict]] = []
    if root.is_dir():
        paths = sorted(root.rglob("*") if recursive else root.iterdir())
        for i, path in enumerate(paths):
            rel = path.relative_to(root).as_posix()
            try:
                props = _file_props(path)
            except OSError:
                continue  # removed while listing
            items.append((i + 1, {"name": rel, "url": f"{files_url}/{rel}", "isDirectory": path.is_dir(), "properties": props}))
    return page(req, items)


def get_task_file(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        root = eng.task_dir(task)
        url = f"{task_url(req, task.job, task)}/files/{req.args[2]}"
    path = _safe_path(root, req.args[2])
    if not path.is_file():
        raise not_found("File")
    props = _file_props(path)
    headers = {
        "Content-Type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        "ocp-creation-time": formatdate(path.stat().st_ctime, usegmt=True),
        "ocp-batch-file-isdirectory": "false",
        "ocp-batch-file-url": url,
        "ocp-batch-file-mode": props["fileMode"],
        "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True),
    }
    size = int(props["contentLength"])
    if req.method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(200, None, headers)
    rng = req.headers.get("ocp-range")
    start, end = _byte_range(size, rng) if rng else (0, size)
    try:
        handle = path.open("rb")
    except OSError:
        raise not_found("File") from None
    return Response(200, FileRange(handle, start, end - start), headers)


def _byte_range(size: int, rng: str) -> tuple[int, int]:
    """The [start, end) of a ``size``-byte file an ``ocp-range: bytes=start-[end]`` header
    asks for (its end is inclusive), cut to the file."""
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
    if not m:
        raise ApiError(400, "InvalidHeaderValue", "ocp-range must look like bytes=start-end.", {"HeaderName": "ocp-range"})
    start = min(int(m.group(1)), size)
    end = min(int(m.group(2)) + 1, size) if m.group(2) else size
    return start, max(start, end)


def delete_task_file(eng: Engine, req: Request) -> Response:
    with eng.lock:
        root = eng.task_dir(task_of(eng, req))
    path = _safe_path(root, req.args[2])
    if not path.exists():
        raise not_found("File")
    if path.is_dir():
        if req.query.get("recursive", "false").lower() != "true":
            raise ApiError(409, "DirectoryNotEmpty", "The directory is not empty; pass recursive=true.")
        shutil.rmtree(path)
    else:
        path.unlink()
    return Response(200)
