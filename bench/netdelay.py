"""A loopback TCP forwarder for benchmarks: it delays what a client sends by a fixed time
(a service further away than loopback, e.g. in-region Azure Storage) and counts the HTTP
requests passing through it, by kind. Nothing in the product knows about it: the bench
points a connection string or a service URL at its port instead of the service's.

    with Forwarders() as net:
        port = net.add("table", 10001, delay=0.010)
        ...
        net.counts()  # Counter({("table", "GET entity actions"): 812, ...})

Each chunk from the client is written to the service ``delay`` seconds after it arrived (in
order), so every request/response exchange takes ``delay`` longer whatever its size; the
answers come straight back. One asyncio loop in a thread serves every forwarder.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from urllib.parse import unquote

_HEAD_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:\s*chunked\s*$", re.I | re.M)


def kind_of(service: str, method: str, target: str, prefix: str = "") -> str:
    """A short name for a request: the method, the shape of the call and what it touches."""
    path, _, query = target.partition("?")
    parts = unquote(path).split("/")
    resource = parts[2] if len(parts) > 2 else ""
    if service == "table":
        name, _, keys = resource.partition("(")
        name = name.removeprefix(prefix) or name
        if name == "$batch":
            return "POST transaction"
        if method == "GET":
            return f"GET {'entity' if keys.strip(')') else 'query'} {name}"
        return f"{method} {name}"
    if service == "queue":
        return f"{method} {'messages' if 'messages' in path else 'queue'}"
    if service == "blob":
        comp = re.search(r"comp=(\w+)", query)
        return f"{method} {comp.group(1) if comp else 'blob'} {resource.removeprefix(prefix) or resource}"
    # Batch: /accounts/<account>/<collection>/<id>/<sub>…: keep the collections, not the ids
    rest = parts[3:]
    shape = "/".join(p if i % 2 == 0 else "*" for i, p in enumerate(rest))
    return f"{method} {shape}"


class _RequestCounter:
    """Finds request boundaries in one client→service byte stream (HTTP/1.1, keep-alive)."""

    def __init__(self, on_request):
        self.buf = bytearray()
        self.skip = 0  # body bytes of the current request still to pass
        self.chunked = False
        self.on_request = on_request

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.chunked:
                if not self._skip_chunks():
                    return
                continue
            if self.skip:
                n = min(self.skip, len(self.buf))
                del self.buf[:n]
                self.skip -= n
                if self.skip:
                    return
            end = self.buf.find(_HEAD_END)
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(line) >= 2:
                self.on_request(line[0], line[1])
            if _CHUNKED.search(head):
                self.chunked = True
            elif m := _LENGTH.search(head):
                self.skip = int(m.group(1))

    def _skip_chunks(self) -> bool:
        """Pass one chunk; False when more bytes are needed."""
        eol = self.buf.find(b"\r\n")
        if eol < 0:
            return False
        size = int(bytes(self.buf[:eol]).split(b";")[0] or b"0", 16)
        need = eol + 2 + size + 2
        if size == 0:  # last chunk (no trailers from the SDKs)
            need = eol + 4
        if len(self.buf) < need:
            return False
        del self.buf[:need]
        self.chunked = size != 0
        return True


class Forwarders:
    """Loopback forwarders in one thread; ``add`` returns the port to connect to."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="netdelay", daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __enter__(self) -> Forwarders:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, service: str, target_port: int, delay: float = 0.0) -> int:
        fut = asyncio.run_coroutine_threadsafe(self._serve(service, target_port, delay), self._loop)
        return fut.result(10)

    def counts(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._counts)

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            for s in self._servers:
                s.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            # let them finish cancelling before the loop stops, or each is "destroyed but pending"
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _count(self, service: str, method: str, target: str) -> None:
        with self._lock:
            self._counts[(service, kind_of(service, method, target, self.prefix))] += 1

    async def _serve(self, service: str, target_port: int, delay: float) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", target_port)
            except OSError:
                writer.close()
                return
            counter = _RequestCounter(lambda m, t: self._count(service, m, t))
            pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

            async def upstream() -> None:  # client → service, each chunk `delay` after it came
                while True:
                    data = await reader.read(65536)
                    counter.feed(data)
                    pending.put_nowait((time.monotonic() + delay, data))
                    if not data:
                        return

            async def deliver() -> None:
                while True:
                    due, data = await pending.get()
                    if (wait := due - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                    if not data:
                        up_w.write_eof()
                        return
                    up_w.write(data)
                    await up_w.drain()

            async def downstream() -> None:  # service → client at once
                while data := await up_r.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()

            tasks = [asyncio.ensure_future(c()) for c in (upstream, deliver, downstream)]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            except asyncio.CancelledError:
                pass
            finally:
                for t in tasks:
                    t.cancel()
                for w in (writer, up_w):
                    w.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]
