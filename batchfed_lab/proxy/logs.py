"""Proxy logging: rotating files in the workspace, secrets redacted on the way out."""

from __future__ import annotations

import logging
import re
from logging.handlers import RotatingFileHandler
from pathlib import Path

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


def configure(logs_dir: Path, filename: str, level: str, proxy_id: str) -> Path:
    """Log to ``<stem>-<proxy id><suffix>`` (one file per proxy: HA proxies share a workspace)."""
    stem, dot, suffix = filename.rpartition(".")
    name = f"{stem}-{proxy_id}.{suffix}" if dot else f"{filename}-{proxy_id}"
    path = logs_dir / name
    handler = RotatingFileHandler(path, maxBytes=ROTATE_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # the SDKs' HTTP chatter at debug would drown the proxy's own lines
    for noisy in ("azure", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
