"""Where a job's inputs live: storage account name → region, as the scheduler takes it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def account_regions(settings: Any, names: Iterable[str]) -> dict[str, str | None]:
    """The region settings.yaml gives each storage account (``storage_accounts.<name>.location``),
    None where it gives none or does not know the name (the scheduler then cannot prefer a region;
    ``pool.location: data`` blocks and says which account lacks one)."""
    accounts = getattr(settings, "storage_accounts", None) or {}
    out: dict[str, str | None] = {}
    for name in sorted(set(names)):
        entry = accounts.get(name)
        location = getattr(entry, "location", None) if entry is not None else None
        out[name] = location.lower() if isinstance(location, str) and location else None
    return out
