"""federation.yaml: ``federation.proxy_options`` (SPEC §3). Defaults are the
original's code defaults (its docs disagreed on some; see docs/configuration.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .workspace import StoreSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PollingInterval(_Section):
    federations: float = Field(30, ge=5, description="seconds between federation/pool membership refreshes")
    actions: float = Field(
        5, ge=0, description="upper bound of the retry backoff of blocked actions (new actions are event-driven)"
    )
    recurrences: float = Field(
        5, gt=0, description="seconds between looks at the jobs of placed job schedules, to add each recurrence's tasks"
    )


class Logging(_Section):
    persistence: bool = Field(True, description="also append logs to storage (Azure store only)")
    level: Literal["debug", "info", "warning", "error", "critical"] = "debug"
    filename: str = Field("fedproxy.log", description="log file name inside the workspace's logs folder")

    @field_validator("filename")
    @classmethod
    def _file_name(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", v):
            raise ValueError("must be a plain file name (letters, digits, '.', '_' or '-'; no folders or spaces)")
        return v


class AfterSuccess(_Section):
    blackout_interval: float = Field(15, ge=0, description="seconds a pool is not a candidate after a placement")
    evaluate_autoscale: bool = Field(True, description="evaluate an autoscale pool's formula at once after a placement")


class Scheduling(_Section):
    after_success: AfterSuccess = AfterSuccess()
    policy: Literal["largest-fit", "best-fit"] = Field("largest-fit", description="pool choice policy (SPEC §4.3)")


class ProxyOptions(_Section):
    polling_interval: PollingInterval = PollingInterval()
    logging: Logging = Logging()
    scheduling: Scheduling = Scheduling()


class FederationSection(_Section):
    storage_account_settings: str | None = Field(None, description="the original's storage link name (informational)")
    store: StoreSettings | None = Field(
        None,
        description="validated, not used: the store is chosen in the workspace's settings.yaml, which the proxy and every client share",
    )
    proxy_options: ProxyOptions = ProxyOptions()


class FederationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    federation: FederationSection = FederationSection()
