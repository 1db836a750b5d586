"""Small helpers shared by the adapter modules."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote


def enum_text(value: object, default: str) -> str:
    """The REST string of an SDK enum (or a plain string), lower-cased.

    The SDK's enums mix in ``str`` but ``str(AllocationState.STEADY)`` is
    ``'AllocationState.STEADY'``, so read ``.value``.
    """
    if value is None or value == "":
        return default
    return str(getattr(value, "value", value)).lower()


def as_timedelta(value: timedelta | float | None) -> timedelta | None:
    """Seconds (or a timedelta) as the timedelta the SDK's models take."""
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


def path_segment(value: str) -> str:
    """An id as one URL path segment (as the SDK quotes path parameters)."""
    return quote(value, safe="")
