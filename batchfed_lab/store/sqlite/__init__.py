"""SQLite backend (the embedded default): one WAL file in the workspace.

Every change is one ``BEGIN IMMEDIATE`` transaction, so several processes (kernels,
CLI, proxy) can share the file, and a process killed mid-change leaves nothing
half-done. FIFO heads carry ``ready_at`` (NULL on every other row); a partial index
on it makes claiming O(log n) however many actions wait behind the heads.

``schema`` holds the tables and hot statements, ``connection`` the write/read connections
and checkpoints, ``rows`` the row ↔ record mapping, ``store`` the primitives.
"""

from .store import SqliteStore

__all__ = ["SqliteStore"]
