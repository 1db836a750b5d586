"""pandas DataFrames for federations, pools, placements, locations, verdicts, tasks, proxies and blobs.

Every builder returns its columns in a fixed order with fixed dtypes, also when it has no
rows, so code written against a frame does not break on an empty one. Conventions:

- timestamps are ``datetime64[us, UTC]`` (missing: ``NaT``);
- states and other closed vocabularies are ``category`` with every possible value as a
  category (so ``value_counts()`` shows zeros too);
- counts that may be unknown are nullable ``Int64``; flags that may be unknown ``boolean``;
- text is ``object`` (missing: ``None``).

The columns are listed in each builder's docstring and in ``docs/magics.md``.
"""

from __future__ import annotations

from ._base import ACTION_STATES, UTC_DTYPE, VERDICT_COLUMNS, frame_records
from .accounting import COST_BY, COST_TASK_COLUMNS, SHARE_COLUMNS, cost_frame, share_frame
from .actions import (
    BLOCKED_COLUMNS,
    LOCATION_COLUMNS,
    PLACEMENT_COLUMNS,
    RECURRENCE_COLUMNS,
    blocked_frame,
    locations_frame,
    placements_frame,
    recurrences_frame,
)
from .data import BLOB_COLUMNS, blobs_frame
from .explain import EXPLAIN_COLUMNS, MATRIX_COLUMNS, matrix_frame, verdicts_frame
from .federations import FEDERATION_COLUMNS, POOL_COLUMNS, PROXY_COLUMNS, federations_frame, pools_frame, proxies_frame
from .tasks import OUTPUT_COLUMNS, RESULT_COLUMNS, TASK_COLUMNS, outputs_frame, task_results_frame, tasks_frame

__all__ = [
    "ACTION_STATES",
    "BLOB_COLUMNS",
    "BLOCKED_COLUMNS",
    "COST_BY",
    "COST_TASK_COLUMNS",
    "EXPLAIN_COLUMNS",
    "FEDERATION_COLUMNS",
    "LOCATION_COLUMNS",
    "MATRIX_COLUMNS",
    "OUTPUT_COLUMNS",
    "PLACEMENT_COLUMNS",
    "POOL_COLUMNS",
    "PROXY_COLUMNS",
    "RECURRENCE_COLUMNS",
    "RESULT_COLUMNS",
    "SHARE_COLUMNS",
    "TASK_COLUMNS",
    "UTC_DTYPE",
    "VERDICT_COLUMNS",
    "blobs_frame",
    "blocked_frame",
    "cost_frame",
    "federations_frame",
    "frame_records",
    "locations_frame",
    "matrix_frame",
    "outputs_frame",
    "placements_frame",
    "pools_frame",
    "proxies_frame",
    "recurrences_frame",
    "share_frame",
    "task_results_frame",
    "tasks_frame",
    "verdicts_frame",
]
