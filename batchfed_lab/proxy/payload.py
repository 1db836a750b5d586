"""The JSON payload of an action: what clients enqueue and the proxy decodes.

An add carries the validated job specification in its compact form (a sweep
stays a sweep; the proxy expands it again, deterministically), plus the
submitter's pool.yaml defaults for ``native`` / ``windows``. Payloads are
versioned; an unknown version or a payload that no longer validates is
failed with its reason, never retried forever and never executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..config.jobs import JobSpecification
from ..config.loading import validation_problems
from ..errors import ConfigError
from ..store.rules import UNDECODABLE

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class AddPayload:
    job: JobSpecification
    native_default: bool | None = None
    windows_default: bool | None = False


@dataclass(frozen=True)
class RemovePayload:
    """Terminate / delete: ``force`` applies even when the client saw no location."""

    force: bool = False


def add_payload(
    job: JobSpecification, *, native_default: bool | None = None, windows_default: bool | None = False
) -> dict[str, Any]:
    return {
        "version": PAYLOAD_VERSION,
        "job": job.model_dump(mode="json", exclude_defaults=True, by_alias=False),
        "native_default": native_default,
        "windows_default": windows_default,
    }


def remove_payload(*, force: bool = False) -> dict[str, Any]:
    return {"version": PAYLOAD_VERSION, "force": bool(force)}


def _check_version(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ConfigError(f"{what}: payload is not a JSON object")
    if UNDECODABLE in payload:
        raise ConfigError(f"{what}: the stored payload is not JSON ({payload[UNDECODABLE]})")
    version = payload.get("version")
    if version != PAYLOAD_VERSION:
        raise ConfigError(f"{what}: unknown payload version {version!r} (this proxy reads version {PAYLOAD_VERSION})")
    return payload


def parse_add(payload: Any, what: str = "action") -> AddPayload:
    data = _check_version(payload, what)
    job = data.get("job")
    if not isinstance(job, dict):
        raise ConfigError(f"{what}: payload has no job specification")
    try:
        spec = JobSpecification.model_validate(job)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, JobSpecification, f"{what} payload")) from None
    native = data.get("native_default")
    windows = data.get("windows_default", False)
    if (native is not None and not isinstance(native, bool)) or (windows is not None and not isinstance(windows, bool)):
        raise ConfigError(f"{what}: native_default / windows_default must be true, false or null")
    return AddPayload(spec, native, windows)


def parse_remove(payload: Any, what: str = "action") -> RemovePayload:
    data = _check_version(payload, what)
    return RemovePayload(force=bool(data.get("force", False)))
