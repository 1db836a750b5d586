"""What a handler takes and gives back: the parsed :class:`Request` and the :class:`Response`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import BinaryIO

VERSION = "1.0.0"


@dataclass
class Request:
    method: str
    account: str
    route: str  # the path below /accounts/<account>, as received (for next links)
    args: tuple[str, ...]  # unquoted path parameters
    query: dict[str, str]
    body: object
    headers: dict[str, str]  # lower-case names
    base: str  # http://127.0.0.1:<port>/accounts/<account>
    request_id: str = ""


@dataclass
class FileRange:
    """A response body sent from an open file, ``length`` bytes from ``start``, a block at a
    time; the server closes the file once sent."""

    file: BinaryIO
    start: int
    length: int


@dataclass
class Response:
    status: int
    body: object = None  # dict -> JSON, bytes -> as is, FileRange -> streamed
    headers: dict[str, str] = field(default_factory=dict)


def dumps(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
