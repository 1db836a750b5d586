"""Proxy logging: rotating files in the workspace, secrets redacted on the way out."""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

ROTATE_BYTES = 32 * 1024 * 1024  # as the original: 32 MiB per file
BACKUPS = 20

# connection-string parts, SAS signatures and auth headers, whatever library logs them
_SECRET = re.compile(
    r"(?i)(AccountKey=|SharedAccessSignature=|SharedAccessKey=|sig=|Authorization:\s*(?:SharedKey|Bearer)\s+)[^;&\s\"']+"
)


class RedactSecrets(logging.Filter):
    """Defence in depth: we never log secrets on purpose; this catches accidents."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _SECRET.sub(lambda m: m.group(1) + "***", message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class RotatingLog(RotatingFileHandler):
    """A rotating file whose size check is the stream's position. The stdlib's (before
    Python 3.13) stats the path and formats every record a second time to measure it: a
    busy proxy logs a line per placement. A record may take the file past the limit by its
    own length; the next one rotates."""

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.maxBytes <= 0:
            return False
        if self.stream is None:  # delayed open, or after a rollover
            self.stream = self._open()
        return self.stream.tell() >= self.maxBytes


def configure(logs_dir: Path, filename: str, level: str, proxy_id: str) -> Path:
    """Log to ``<stem>-<proxy id><suffix>`` (one file per proxy: HA proxies share a workspace)."""
    stem, dot, suffix = filename.rpartition(".")
    name = f"{stem}-{proxy_id}.{suffix}" if dot else f"{filename}-{proxy_id}"
    path = logs_dir / name
    handler = RotatingLog(path, maxBytes=ROTATE_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # the SDKs' HTTP chatter at debug would drown the proxy's own lines
    for noisy in ("azure", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


class BlobLogHandler(logging.Handler):
    """Append log lines to an append blob ``<proxy id>/<UTC date>.log`` in the store's log
    container (``logging.persistence`` with the Azure store), flushed every ``interval``
    seconds from a background thread so logging never waits on the network."""

    MAX_BLOCK = 4 * 1024 * 1024  # an append-blob block is at most 4 MiB

    def __init__(self, container: Any, proxy_id: str, *, interval: float = 2.0):
        super().__init__()
        self.container = container
        self.proxy_id = proxy_id
        self.interval = interval
        self._buffer: list[str] = []
        self._lock_buf = threading.Lock()
        self._stop = threading.Event()
        self._created: set[str] = set()
        self.addFilter(RedactSecrets())
        self._thread = threading.Thread(target=self._run, name="batchfed-bloblog", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        with self._lock_buf:
            self._buffer.append(line)

    def _blob_name(self) -> str:
        return f"{self.proxy_id}/{datetime.now(timezone.utc):%Y-%m-%d}.log"

    def flush(self) -> None:
        with self._lock_buf:
            lines, self._buffer = self._buffer, []
        if not lines:
            return
        data = "".join(lines).encode("utf-8")
        name = self._blob_name()
        try:
            blob = self.container.get_blob_client(name)
            if name not in self._created:
                if not blob.exists():
                    blob.create_append_blob()
                self._created.add(name)
            for start in range(0, len(data), self.MAX_BLOCK):
                blob.append_block(data[start : start + self.MAX_BLOCK])
        except Exception as exc:
            logging.getLogger("batchfed.proxy").debug("log persistence failed: %s", type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        super().close()


def persist_to(store: Any, proxy_id: str, level: str) -> BlobLogHandler | None:
    """Add blob persistence when the store can hold logs (the Azure store)."""
    container_of = getattr(store, "log_container", None)
    if container_of is None:
        return None
    handler = BlobLogHandler(container_of(), proxy_id)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    handler.setLevel(getattr(logging, level.upper()))
    logging.getLogger().addHandler(handler)
    return handler
