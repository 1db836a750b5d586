"""What every frame shares: the dtypes of its closed vocabularies and timestamps, and the
builder that gives an empty frame its columns too."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ..store.records import ActionState

#: every timestamp column: microseconds (what the store keeps), UTC
UTC_DTYPE = "datetime64[us, UTC]"


ACTION_STATES = [s.value for s in ActionState]


KINDS = ["job", "job_schedule"]


METHODS = ["add", "terminate", "delete"]


VERDICT_STATUSES = ["chosen", "eligible", "excluded", "skipped"]


POOL_STATES = ["active", "deleting", "missing"]


ALLOCATION_STATES = ["steady", "resizing", "stopping"]


TASK_STATES = ["active", "preparing", "running", "completed"]


TASK_RESULTS = ["success", "failure"]


PROXY_ROLES = ["leader", "standby", "starting", "stopping", "stale"]


def _frame(rows: list[dict[str, Any]], dtypes: dict[str, Any]) -> pd.DataFrame:
    """Rows → a frame with exactly ``dtypes``' columns, in order, with those dtypes.

    Built column by column so that text stays ``object`` with ``None`` for missing values
    on pandas 2 and 3 alike (pandas 3 would infer its ``str`` dtype and turn None into NaN).
    """
    data: dict[str, Any] = {}
    for col, dtype in dtypes.items():
        values = [r.get(col) for r in rows]
        if dtype == "utc":
            data[col] = pd.to_datetime(pd.Series(values, dtype="object"), utc=True).astype(UTC_DTYPE)
        elif isinstance(dtype, list):
            data[col] = pd.Categorical(values, categories=dtype)
        else:
            data[col] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(dtypes))


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready records (what ``--raw`` prints): ISO 8601 UTC times, null for
    missing values, categories as their text."""
    return json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))


VERDICT_COLUMNS: dict[str, Any] = {
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "status": VERDICT_STATUSES,
    "passed": "bool",
    "constraint": "object",
    "required": "object",
    "actual": "object",
    "verdict": "object",
}
