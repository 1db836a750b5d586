"""The frame of blobs in a storage account (``%fed data list``, ``client.list_data_frame``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._base import _frame

if TYPE_CHECKING:
    from ..data import BlobItem


BLOB_COLUMNS: dict[str, Any] = {
    "storage": "object",
    "container": "object",
    "name": "object",
    "size": "int64",
    "last_modified": "utc",
    "content_type": "object",
}


def blobs_frame(storage: str, items: Sequence[BlobItem]) -> pd.DataFrame:
    """One row per blob: ``storage`` (the account's name in settings.yaml, or ``local``),
    ``container``, ``name`` (the blob's path in the container), ``size`` in bytes,
    ``last_modified`` (UTC) and ``content_type``."""
    rows = [
        {
            "storage": storage,
            "container": b.container,
            "name": b.name,
            "size": b.size,
            "last_modified": b.last_modified,
            "content_type": b.content_type,
        }
        for b in items
    ]
    return _frame(rows, BLOB_COLUMNS)
