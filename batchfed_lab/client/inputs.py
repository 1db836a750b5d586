"""What the client's methods accept for jobs and pools: a path, YAML text, a mapping or a
model, turned into the configuration models."""

from __future__ import annotations

from typing import Any

from ..config import JobsConfig, PoolConfig, load_jobs, load_pool
from ..config.jobs import JobSpecification


def as_jobs(jobs: Any, name: str | None) -> JobsConfig:
    if isinstance(jobs, JobsConfig):
        return jobs
    if isinstance(jobs, JobSpecification):
        return JobsConfig(job_specifications=(jobs,))
    return load_jobs(jobs, name=name or "jobs.yaml")


def as_pool(pool_config: Any) -> PoolConfig | None:
    if pool_config is None:
        return None
    return a_pool(pool_config)


def a_pool(pool_config: Any) -> PoolConfig:
    """A pool config that must be given (a path, YAML text, a mapping or the model)."""
    if isinstance(pool_config, PoolConfig):
        return pool_config
    return load_pool(pool_config)


def os_defaults(pool_config: Any) -> dict[str, Any]:
    """The ``native`` / ``windows`` defaults a pool.yaml gives jobs whose constraints do not set them."""
    pool = as_pool(pool_config)
    return {
        "native_default": pool.pool_specification.native if pool else None,
        "windows_default": pool.pool_specification.windows if pool else False,
    }


def pool_configs(pool_config: Any) -> list[PoolConfig]:
    """One pool config or a list of them (paths, YAML text, mappings or models)."""
    if pool_config is None:
        return []
    many = pool_config if isinstance(pool_config, (list, tuple)) else [pool_config]
    return [a_pool(p) for p in many]
