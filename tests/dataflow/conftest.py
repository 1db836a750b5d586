"""One embedded stack with the embedded Azurite (storage account ``local``) for the data tests."""

from __future__ import annotations

from stack import PoolDef, stack_fixture

POOLS = (PoolDef("we-small", "lab1", "westeurope", "standard_d2_v3", dedicated=1, slots=4),)
SETTINGS = "storage_accounts:\n  local:\n    location: westeurope\n"

# relaxed limits: a job schedule may recur every few seconds (test_schedule_data.py)
data_stack = stack_fixture("package", pools=POOLS, storage=True, settings_yaml=SETTINGS, relaxed_limits=True)
