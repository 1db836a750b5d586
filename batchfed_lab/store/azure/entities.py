"""Table entities of the Azure store: keys, conditional-write options, the split of long
strings over several properties, and the signals of a lost optimistic race."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

from ...errors import ConflictError

MAX_TX_OPS = 100  # entity-group transaction limit
MAX_TX_BYTES = 2_500_000  # well under the 4 MiB request limit
CHUNK_ACTIONS = 45  # journal chunk: 2 entities per action + FIFO records ≤ 100 operations
INLINE_CHARS = 15_000  # ≤ 30,000 UTF-16 units: below the 32K-unit string property limit
REPLACE = {"mode": UpdateMode.REPLACE}
RETRIES = 40  # optimistic-concurrency rounds before giving up
TX_ROUNDS = 8  # rounds of a one-transaction enqueue over several FIFOs before it uses a journal


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def position_key(seq: int) -> str:
    return f"{seq:010d}"


def replace_if(etag: str) -> dict[str, Any]:
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def delete_if(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def pack(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Table form: no None values (absent reads back as None), long strings split over
    ``name``, ``name__1``, ... so nothing is ever truncated."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None:
            continue
        if isinstance(value, str) and len(value) > INLINE_CHARS:
            parts = [value[i : i + INLINE_CHARS] for i in range(0, len(value), INLINE_CHARS)]
            out[key] = parts[0]
            for n, part in enumerate(parts[1:], 1):
                out[f"{key}__{n}"] = part
        else:
            out[key] = value
    return out


def unpack(entity: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entity.items():
        if "__" not in key:
            out[key] = value
    for key in sorted((k for k in entity if "__" in k), key=lambda k: (k.split("__")[0], int(k.split("__")[1]))):
        base = key.split("__")[0]
        out[base] = out.get(base, "") + entity[key]
    return out


def etag_of(entity: Any) -> str:
    return str(entity.metadata["etag"])


class Again(Exception):
    """Inside an optimistic attempt: the state moved on; read again and retry at once."""


class Contention(ConflictError):
    """An optimistic transaction lost every round: the FIFO records it spans are too busy."""


def lost_race(exc: BaseException) -> bool:
    """A lost optimistic race: precondition failed (412) or already exists (409)."""
    return isinstance(exc, HttpResponseError) and exc.status_code in (409, 412)
