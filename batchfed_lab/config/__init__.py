"""Configuration: workspace settings and the federation / pool / jobs models.

``load_jobs``, ``load_pool`` and ``load_federation`` accept a file path, YAML
text or an already-parsed mapping, and raise :class:`~batchfed_lab.errors.ConfigError`
whose lines name the source, the YAML path, the value and why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import ConfigError
from .constraints import FederationConstraints
from .federation import FederationConfig
from .jobs import JobsConfig, JobSpecification, TaskDefinition
from .loading import check_shape, load_yaml_file, parse_yaml, short_value, validate
from .pool import PoolConfig, PoolSpecification
from .workspace import _refuse_secrets

__all__ = [
    "FederationConfig",
    "FederationConstraints",
    "JobSpecification",
    "JobsConfig",
    "PoolConfig",
    "PoolSpecification",
    "TaskDefinition",
    "load_federation",
    "load_jobs",
    "load_pool",
    "validate_file",
]

M = TypeVar("M", bound=BaseModel)

_KINDS: dict[str, type[BaseModel]] = {
    "job_specifications": JobsConfig,
    "pool_specification": PoolConfig,
    "federation": FederationConfig,
}


def _source_data(src: str | os.PathLike[str] | dict[str, Any], default_name: str) -> tuple[Any, str]:
    """A path, YAML text or a mapping → (data, source name used in messages)."""
    if isinstance(src, dict):
        check_shape(src, default_name)
        return src, default_name
    if isinstance(src, os.PathLike):
        return load_yaml_file(src)
    if isinstance(src, str):
        # YAML text always has a newline or a colon; a bare path has neither
        if "\n" in src or (":" in src and not _is_file(src)):
            return parse_yaml(src, default_name), default_name
        return load_yaml_file(src)
    raise ConfigError(f"{default_name}: expected a file path, YAML text or a mapping, got {type(src).__name__}")


def _is_file(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # too long for a file name, or a NUL in it
        return False


def _validate(model: type[M], data: Any, source: str) -> M:
    if model is FederationConfig:
        # credentials never live in federation.yaml either; refuse them without echoing them
        _refuse_secrets(data, source)
    return validate(model, data, source)


def _load(model: type[M], src: Any, default_name: str) -> M:
    data, source = _source_data(src, default_name)
    return _validate(model, data, source)


def load_jobs(src: str | os.PathLike[str] | dict[str, Any], *, name: str = "jobs.yaml") -> JobsConfig:
    return _load(JobsConfig, src, name)


def load_pool(src: str | os.PathLike[str] | dict[str, Any], *, name: str = "pool.yaml") -> PoolConfig:
    return _load(PoolConfig, src, name)


def load_federation(src: str | os.PathLike[str] | dict[str, Any], *, name: str = "federation.yaml") -> FederationConfig:
    return _load(FederationConfig, src, name)


def validate_file(path: str | os.PathLike[str]) -> BaseModel:
    """Validate a config file, telling its kind from its top-level key."""
    data, source = load_yaml_file(path)
    if data is None or data == {}:
        raise ConfigError(f"{source}: the document is empty; expected one of: {', '.join(_KINDS)}")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level) = {short_value(data)}: expected a mapping with one of: {', '.join(_KINDS)}")
    kinds = [k for k in _KINDS if k in data]
    if len(kinds) != 1:
        import difflib

        keys = ", ".join(map(str, data))
        near = difflib.get_close_matches(str(next(iter(data))), list(_KINDS), n=1, cutoff=0.6)
        hint = f"; did you mean '{near[0]}'?" if near else f"; expected one of: {', '.join(_KINDS)}"
        raise ConfigError(f"{source}: (top level) = {{{keys}}}: cannot tell the file kind{hint}")
    return _validate(_KINDS[kinds[0]], data, source)
