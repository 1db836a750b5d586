"""Run Azurite (the Azure Storage emulator, npm ``azurite``) for tests, benchmarks and
local Azure-mode work: on 127.0.0.1, in memory on ephemeral ports by default (or with its data
in a folder and on given ports, so it can be restarted where it was).

    with Azurite.start() as az:
        store = AzureStore.from_connection_string(az.connection_string, prefix="dev")

With ``tls=(cert, key)`` it serves HTTPS, and with ``oauth=True`` it also takes bearer tokens
(Azurite's ``--oauth basic``: issuer, audience and lifetime are checked, not the signature);
clients must then trust ``cert`` (e.g. ``connection_verify=str(cert)``).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from ..errors import StoreError

#: Azurite's fixed development account; the key is public (documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_READY = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at https?://127\.0\.0\.1:(\d+)")
_SCRIPT = Path("node_modules", "azurite", "dist", "src", "azurite.js")


def find_azurite(start: Path | None = None) -> Path | None:
    """``node_modules/azurite/dist/src/azurite.js`` in ``start`` or a parent folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / _SCRIPT).is_file():
            return folder / _SCRIPT
    return None


class Azurite:
    """One Azurite process; ``stop()`` ends it by pid (SIGTERM, then SIGKILL after ``grace``)."""

    def __init__(self, process: subprocess.Popen[str], ports: dict[str, int], tail: collections.deque[str], scheme: str = "http"):
        self.process = process
        self.ports = ports
        self.scheme = scheme
        self._tail = tail

    @property
    def pid(self) -> int:
        return self.process.pid

    def endpoint(self, service: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.ports[service]}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={self.endpoint('blob')};QueueEndpoint={self.endpoint('queue')};"
            f"TableEndpoint={self.endpoint('table')};"
        )

    @classmethod
    def start(
        cls,
        script: Path | None = None,
        *,
        timeout: float = 60.0,
        memory_mb: int = 1024,
        location: Path | None = None,
        ports: dict[str, int] | None = None,
        tls: tuple[Path, Path] | None = None,
        oauth: bool = False,
    ) -> Azurite:
        """Start Azurite in memory, or with its data in the folder ``location`` (so a restart
        keeps it); on ephemeral ports, or on ``ports`` (``{"blob": …, "queue": …, "table": …}``,
        e.g. the ports of a previous run, so clients reconnect to the same endpoints).
        ``tls`` = (certificate, private key) PEM files: serve HTTPS; ``oauth``: accept bearer
        tokens too (Azurite takes them over HTTPS only)."""
        if oauth and tls is None:
            raise StoreError("azurite: oauth needs tls=(certificate, key): bearer tokens go over HTTPS only")
        script = script or find_azurite(Path(__file__).parent)
        node = shutil.which("node")
        if script is None or node is None:
            raise StoreError("azurite is not installed: run `make azurite` (npm install) first")
        if location is not None:
            Path(location).mkdir(mode=0o700, parents=True, exist_ok=True)
        cmd = [node, str(script), *_storage_args(memory_mb, location, tls, oauth), *_listen_args(ports)]
        # own session: a Ctrl-C in the terminal does not reach it; we stop it by pid
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            cwd=script.parents[3],
        )
        found, tail, ready = _watch_output(proc)
        az = cls(proc, found, tail, "https" if tls else "http")
        if not ready.wait(timeout) or len(found) < 3:
            az.stop()
            raise StoreError(f"azurite did not start within {timeout:g}s: {' | '.join(list(tail)[-5:]) or 'no output'}")
        return az

    def stop(self, grace: float = 10.0) -> int | None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _storage_args(memory_mb: int, location: Path | None, tls: tuple[Path, Path] | None, oauth: bool) -> list[str]:
    """Where Azurite keeps its data, and how clients reach it (HTTPS, bearer tokens)."""
    persistence = ["--inMemoryPersistence", f"--extentMemoryLimit={memory_mb}"]
    if location is not None:
        persistence = ["--location", str(location)]
    secure = ["--cert", str(tls[0]), "--key", str(tls[1])] if tls else []
    secure += ["--oauth", "basic"] if oauth else []
    return [*persistence, *secure, "--disableTelemetry", "--silent", "--skipApiVersionCheck"]


def _listen_args(ports: dict[str, int] | None) -> list[str]:
    """Every service on 127.0.0.1, on its port in ``ports`` or an ephemeral one (0)."""
    args: list[str] = []
    for service in ("blob", "queue", "table"):
        args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str((ports or {}).get(service, 0))]
    return args


def _watch_output(
    proc: subprocess.Popen[str],
) -> tuple[dict[str, int], collections.deque[str], threading.Event]:
    """Read Azurite's output in a thread: the port of each service as it reports listening (the
    event is set when all three are known, or when the output ends), and its last lines."""
    found: dict[str, int] = {}
    tail: collections.deque[str] = collections.deque(maxlen=40)
    ready = threading.Event()

    def read() -> None:  # keep draining so the pipe never fills
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if m := _READY.search(line):
                found[m.group(1).lower()] = int(m.group(2))
                if len(found) == 3:
                    ready.set()
        ready.set()

    threading.Thread(target=read, name=f"azurite-{proc.pid}", daemon=True).start()
    return found, tail, ready
