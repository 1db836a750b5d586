"""Reading a proxy's log, wherever it runs: the workspace's files for a proxy of this
machine, the append blobs ``<proxy id>/<UTC date>.log`` of the store's log container
(``logging.persistence`` on the Azure store, see :mod:`.logs`) for one elsewhere.

A *source* is the growing text of one proxy: its current file or blob, which it may swap
for a new one (rotation, a new UTC day), hence ``current()`` before each read.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ProxyError

TAIL_CHUNK = 64 * 1024  # bytes read from the end per step when looking for the last lines
FOLLOW_POLL = 1.0  # seconds between two looks at a followed log
BLOB_LINGER = 5.0  # a stopped proxy's last lines reach its blob when it closes the log (flushed every 2 s before)


class LogSource(Protocol):
    label: str

    def current(self) -> str | None:
        """The name of the file or blob written to now (None while there is none)."""

    def size(self, name: str) -> int: ...

    def read(self, name: str, offset: int, length: int | None = None) -> bytes: ...


@dataclass
class FileSource:
    """The newest proxy log file of a workspace's ``logs/`` (or one given file)."""

    logs_dir: Path
    path: Path | None = None
    label: str = "local file"

    def current(self) -> str | None:
        if self.path is not None:
            return str(self.path) if self.path.exists() else None
        candidates = [c for c in self.logs_dir.glob("*.log") if not c.name.startswith("localbatch")]
        return str(max(candidates, key=lambda c: c.stat().st_mtime)) if candidates else None

    def size(self, name: str) -> int:
        try:
            return Path(name).stat().st_size
        except OSError:
            return 0

    def read(self, name: str, offset: int, length: int | None = None) -> bytes:
        with open(name, "rb") as fh:
            fh.seek(offset)
            return fh.read() if length is None else fh.read(length)


@dataclass
class BlobSource:
    """The newest append blob of one proxy (or, without an id, of any proxy) in the log container."""

    container: Any
    proxy_id: str | None = None
    label: str = "log blobs"

    def current(self) -> str | None:
        prefix = f"{self.proxy_id}/" if self.proxy_id else None
        with _blob_errors("list the log blobs"):
            blobs = list(self.container.list_blobs(name_starts_with=prefix))
        if not blobs:
            return None
        if self.proxy_id:
            return str(max(b.name for b in blobs))  # <id>/<YYYY-MM-DD>.log: the newest day sorts last
        return str(max(blobs, key=lambda b: b.last_modified).name)

    def size(self, name: str) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        with _blob_errors("read a log blob's size"):
            try:
                return int(self.container.get_blob_client(name).get_blob_properties().size)
            except ResourceNotFoundError:
                return 0

    def read(self, name: str, offset: int, length: int | None = None) -> bytes:
        with _blob_errors("read a log blob"):
            data = self.container.get_blob_client(name).download_blob(offset=offset, length=length).readall()
        return bytes(data)


@contextmanager
def _blob_errors(what: str) -> Iterator[None]:
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:  # one line, no URL (it could carry a SAS)
        raise ProxyError(f"proxy logs: cannot {what}: {type(exc).__name__}") from None


def tail(source: LogSource, lines: int) -> tuple[str, str | None, int]:
    """The last ``lines`` lines of the source's current file or blob, its name and the
    offset its end was at (where a follow continues)."""
    name = source.current()
    if name is None:
        return "", None, 0
    end = source.size(name)
    start, data = end, b""
    while start > 0 and data.count(b"\n") <= lines:
        start = max(0, start - TAIL_CHUNK)
        data = source.read(name, start, end - start)
    text = data.decode("utf-8", errors="replace")
    kept = text.splitlines()
    if start > 0:
        kept = kept[1:]  # the first line read from the middle of the file is a fragment
    return "\n".join(kept[-lines:] if lines > 0 else []), name, end


def follow(
    source: LogSource,
    name: str | None,
    offset: int,
    *,
    alive: Callable[[], bool],
    poll: float = FOLLOW_POLL,
    linger: float = 0.0,
) -> Iterator[str]:
    """Text appended to the source from ``offset`` on, as it arrives; moves to the next file
    or blob when the log rotates or a new day starts; ends ``linger`` seconds after
    ``alive()`` first says the proxy is gone (time for its last buffered lines to land)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    gone_at: float | None = None
    while True:
        if gone_at is None and not alive():
            gone_at = time.monotonic()
        going = gone_at is None or time.monotonic() - gone_at < linger
        now = source.current()
        if now is not None and now != name:
            if name is not None:
                yield from _rest(source, name, offset, decoder)  # the end of the previous one
            name, offset = now, 0
        if name is not None:
            size = source.size(name)
            if size < offset:  # truncated or replaced under the same name (rotation)
                offset = 0
            if size > offset:
                text = decoder.decode(source.read(name, offset, size - offset))
                offset = size
                if text:
                    yield text
        if not going:
            return
        time.sleep(poll if gone_at is None else min(poll, 0.5))


def _rest(source: LogSource, name: str, offset: int, decoder: codecs.IncrementalDecoder) -> Iterator[str]:
    size = source.size(name)
    if size > offset:
        text = decoder.decode(source.read(name, offset, size - offset), final=True)
        if text:
            yield text
    decoder.reset()
