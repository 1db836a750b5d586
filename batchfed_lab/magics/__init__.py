"""IPython magics: ``%load_ext batchfed_lab`` registers ``%fed`` / ``%%fed``.

See :mod:`batchfed_lab.magics.fed` and ``docs/magics.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%fed`` / ``%%fed`` on ``ipython`` (what ``%load_ext`` calls)."""
    from .fed import FedMagics

    ipython.register_magics(FedMagics(ipython))
