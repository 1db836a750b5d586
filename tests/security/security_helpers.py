"""Helpers of the security tests (a module of its own: ``conftest`` names clash across folders)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Secrets:
    localbatch_key: str
    azure_batch_key: str
    storage_key: str
    connection_string: str

    @property
    def all(self) -> dict[str, str]:
        """name → a string that must never be found anywhere."""
        return {
            "localbatch key": self.localbatch_key,
            "localbatch key (first 24 chars)": self.localbatch_key[:24],
            "BATCHFED_BATCH_KEY_AZACCT": self.azure_batch_key,
            "storage AccountKey": self.storage_key,
            "storage connection string": self.connection_string,
        }


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*"))
