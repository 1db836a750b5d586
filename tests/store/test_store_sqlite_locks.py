"""SQLite: a second store opened and closed in a process must not strip the first one's locks
(POSIX drops a process's locks on any close of the file), or another process closing its last
connection deletes the write-ahead log the first store still writes to, and the two diverge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from batchfed_lab.store.sqlite import SqliteStore


def test_a_second_store_in_the_process_keeps_the_wal_shared(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    first = SqliteStore(path)
    first.create_federation("before")
    SqliteStore(path).close()  # e.g. a CLI call or a helper opening the store once more
    opener = "import sys; from batchfed_lab.store.sqlite import SqliteStore; s = SqliteStore(sys.argv[1]); s.list_federations(); s.close()"
    subprocess.run([sys.executable, "-c", opener, str(path)], check=True, timeout=60)  # another process comes and goes
    first.create_federation("after")
    fresh = SqliteStore(path)
    try:
        assert [f.id for f in fresh.list_federations()] == ["after", "before"]
    finally:
        fresh.close()
        first.close()
