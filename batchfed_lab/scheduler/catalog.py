"""The VM size catalog: cores, memory, GPUs and RDMA of common Azure Batch sizes.

The facts live in ``vm_sizes.csv`` next to this module (package data; columns
``name,family,vcpus,memory_mib,gpus,rdma``). They are Azure's published values;
see docs/vm-sizes.md for where they come from and their known simplifications
(NVv4 fractional GPUs are recorded as 1 GPU).

GPU and RDMA are *data*, never guessed from the size name: name heuristics
cannot keep up with new series and disagree between tools. A size that is not in the catalog is unknown: :func:`lookup`
returns ``None`` and the scheduler gives the verdict "size unknown" — unless
the pool's ``vm_size_override`` supplies at least cores and memory.

Nothing is read at import time. The CSV is parsed once, on first use, and
every later lookup is a string lower-casing plus a dict lookup.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from batchfed_lab.scheduler.types import VmSize

__all__ = [
    "OVERRIDE_KEYS",
    "is_gpu",
    "is_rdma",
    "known_sizes",
    "lookup",
    "normalize_override",
]

_CSV_NAME = "vm_sizes.csv"
_PREFIX = "standard_"
_COLUMNS = ("name", "family", "vcpus", "memory_mib", "gpus", "rdma")

#: Keys a per-pool override (pool.yaml ``vm_size_override``) may carry.
OVERRIDE_KEYS = frozenset({"cores", "memory_mib", "gpus", "rdma"})


class _Catalog:
    __slots__ = ("by_key", "names")

    def __init__(self, by_key: dict[str, VmSize], names: tuple[str, ...]) -> None:
        self.by_key = by_key  # lower-case name, with AND without "standard_" → VmSize
        self.names = names  # canonical names in file order


def _parse_bool(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    raise ValueError(f"{where}: rdma must be true or false, not {text!r}")


def _parse(text: str) -> _Catalog:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise ValueError(f"{_CSV_NAME}: expected columns {','.join(_COLUMNS)}, got {reader.fieldnames}")
    by_key: dict[str, VmSize] = {}
    names: list[str] = []
    for lineno, row in enumerate(reader, start=2):
        where = f"{_CSV_NAME} line {lineno}"
        name = (row["name"] or "").strip()
        if not name:
            raise ValueError(f"{where}: empty name")
        size = VmSize(
            name=name,
            cores=int(row["vcpus"]),
            memory_mib=int(row["memory_mib"]),
            gpus=int(row["gpus"]),
            rdma=_parse_bool(row["rdma"], where),
            family=(row["family"] or "").strip(),
        )
        if size.cores <= 0 or size.memory_mib <= 0 or size.gpus < 0:
            raise ValueError(f"{where}: cores and memory must be positive, gpus not negative ({name})")
        full = name.lower()
        short = full[len(_PREFIX) :] if full.startswith(_PREFIX) else full
        for key in {full, short, _PREFIX + short}:
            if key in by_key:
                raise ValueError(f"{where}: duplicate size {name!r}")
            by_key[key] = size
        names.append(name)
    return _Catalog(by_key, tuple(names))


@lru_cache(maxsize=1)
def _catalog() -> _Catalog:
    text = resources.files("batchfed_lab.scheduler").joinpath(_CSV_NAME).read_text(encoding="utf-8")
    return _parse(text)


def normalize_override(overrides: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    """Validate a per-pool override and return only the keys that are set.

    Accepts a mapping (``None`` values are ignored) or an object with
    ``model_dump()`` (the config layer's ``VmSizeOverride``). Raises
    ``ValueError`` for unknown keys or bad values: a malformed override is a
    configuration error, better surfaced when pool.yaml is loaded.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        dump = getattr(overrides, "model_dump", None)
        if dump is None:
            raise ValueError(f"vm_size_override must be a mapping, not {type(overrides).__name__}")
        overrides = dump()
    unknown = sorted(str(k) for k in overrides if k not in OVERRIDE_KEYS)
    if unknown:
        raise ValueError(f"vm_size_override: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(OVERRIDE_KEYS))})")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "rdma":
            if not isinstance(value, bool):
                raise ValueError(f"vm_size_override.rdma must be true or false, not {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"vm_size_override.{key} must be an integer, not {value!r}")
            minimum = 0 if key == "gpus" else 1
            if value < minimum:
                raise ValueError(f"vm_size_override.{key} must be >= {minimum}, not {value}")
        out[key] = value
    return out


def lookup(name: str, overrides: Mapping[str, Any] | None = None) -> VmSize | None:
    """Facts of VM size ``name``, or ``None`` when the size is unknown.

    ``name`` is matched case-insensitively, with or without the ``Standard_``
    prefix. ``overrides`` (keys ``cores``, ``memory_mib``, ``gpus``, ``rdma``)
    replace the catalog values; for a size the catalog does not know they make
    it known when both ``cores`` and ``memory_mib`` are given (``gpus``
    defaults to 0 and ``rdma`` to false). The config layer's
    ``VmSizeOverride`` model is accepted as well as a plain mapping; keys
    whose value is ``None`` are ignored. Never raises for an unknown or
    malformed name; raises ``ValueError`` only for a malformed override.
    """
    if not isinstance(name, str):
        return None
    by_key = _catalog().by_key
    base = by_key.get(name.lower())
    if base is None:
        stripped = name.strip()
        if stripped != name:
            base = by_key.get(stripped.lower())
    if overrides is None:
        return base
    values = normalize_override(overrides)
    if not values:
        return base
    if base is not None:
        return dataclasses.replace(base, **values)
    if "cores" not in values or "memory_mib" not in values:
        return None
    stripped = name.strip()
    if not stripped:
        return None
    return VmSize(
        name=stripped,
        cores=values["cores"],
        memory_mib=values["memory_mib"],
        gpus=values.get("gpus", 0),
        rdma=values.get("rdma", False),
        family="",
    )


def known_sizes() -> list[str]:
    """Canonical names (``Standard_...``) of every catalog size, in catalog order."""
    return list(_catalog().names)


def is_gpu(name: str, overrides: Mapping[str, Any] | None = None) -> bool | None:
    """True when the size has at least one GPU; ``None`` when the size is unknown."""
    size = lookup(name, overrides)
    return None if size is None else size.gpus > 0


def is_rdma(name: str, overrides: Mapping[str, Any] | None = None) -> bool | None:
    """True when the size has an RDMA (InfiniBand) back-end network; ``None`` when unknown."""
    size = lookup(name, overrides)
    return None if size is None else size.rdma
