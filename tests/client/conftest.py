"""One embedded stack for the client tests (see tests/stack.py)."""

from __future__ import annotations

from stack import DEFAULT_POOLS, PoolDef, stack_fixture

SPARE = (PoolDef("spare-a", "lab1", "westeurope"), PoolDef("spare-b", "lab2", "eastus"))

stack = stack_fixture(
    "package",
    pools=DEFAULT_POOLS + SPARE,
    federations={"demo": ("we-small", "we-big", "us-gpu"), "loose": ("jp-small",), "empty": ()},
    non_unique=("loose",),
)
