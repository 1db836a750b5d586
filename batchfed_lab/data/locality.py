"""Where a job's inputs live: storage account name → region, as the scheduler takes it."""

from __future__ import annotations

from collections.abc import Iterable

from ..config.workspace import WorkspaceSettings


def account_regions(settings: WorkspaceSettings, names: Iterable[str]) -> dict[str, str | None]:
    """The region settings.yaml gives each storage account (``storage_accounts.<name>.location``),
    None where it gives none or does not know the name (the scheduler then cannot prefer a region;
    ``pool.location: data`` blocks and says which account lacks one)."""
    out: dict[str, str | None] = {}
    for name in sorted(set(names)):
        entry = settings.storage_accounts.get(name)
        out[name] = entry.location.lower() if entry is not None and entry.location else None
    return out
