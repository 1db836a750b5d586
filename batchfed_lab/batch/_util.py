"""Small helpers shared by the adapter modules."""

from __future__ import annotations


def enum_text(value: object, default: str) -> str:
    """The REST string of an SDK enum (or a plain string), lower-cased.

    The SDK's enums mix in ``str`` but ``str(AllocationState.STEADY)`` is
    ``'AllocationState.STEADY'``, so read ``.value``.
    """
    if value is None or value == "":
        return default
    return str(getattr(value, "value", value)).lower()
