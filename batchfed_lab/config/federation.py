"""federation.yaml: ``federation.proxy_options`` (SPEC §3). Defaults are the
original's code defaults (its docs disagreed on some; see docs/configuration.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .accounting import Accounting
from .workspace import StoreSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class PollingInterval(_Section):
    federations: float = Field(30, ge=5, description="seconds between federation/pool membership refreshes")
    actions: float = Field(
        5, ge=0, description="upper bound of the retry backoff of blocked actions (new actions are event-driven)"
    )
    recurrences: float = Field(
        5, gt=0, description="seconds between looks at the jobs of placed job schedules, to add each recurrence's tasks"
    )
    moves: float = Field(
        5, ge=0, description="seconds between looks at placed jobs for re-placement (replacement rules); 0: never"
    )


class Logging(_Section):
    persistence: bool = Field(True, description="also append logs to storage (Azure store only)")
    level: Literal["debug", "info", "warning", "error", "critical"] = "debug"
    filename: str = Field("fedproxy.log", description="log file name inside the workspace's logs folder")

    @field_validator("filename")
    @classmethod
    def _file_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}", v):
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


_ARM_ID = r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/"
_STORAGE_ID_RE = re.compile(_ARM_ID + r"Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}$", re.IGNORECASE)
_BATCH_ID_RE = re.compile(_ARM_ID + r"Microsoft\.Batch/batchAccounts/[a-z0-9]{3,24}$", re.IGNORECASE)
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class Deployment(_Section):
    """How ``fed proxy create`` runs the proxy on Azure Container Instances (docs/azure.md)."""

    subscription_id: str | None = Field(
        None, description="subscription of the resource group; default: the AZURE_SUBSCRIPTION_ID variable"
    )
    image: str = Field("python:3.11-slim", description="a stock Python image (≥ 3.10); the bootstrap installs the wheel")
    cpu: float | None = Field(None, gt=0, le=4, description="vCPUs per proxy container; default: from vm_size, else 1")
    memory_gb: float | None = Field(
        None, gt=0, le=16, description="memory per proxy container in GB; default: from vm_size, else 1.5"
    )
    storage_account_id: str | None = Field(
        None,
        description="ARM id of the store's storage account; default: the settings' account_name in resource_group",
    )
    batch_account_ids: tuple[str, ...] = Field(
        (),
        description="ARM ids of the Batch accounts the proxy may use; accounts of the store's pools not listed are looked for in resource_group",
    )
    data_account_ids: tuple[str, ...] = Field(
        (),
        description="ARM ids of the storage accounts of settings.yaml storage_accounts (jobs' data); "
        "accounts not listed are looked for in resource_group",
    )
    sas_minutes: int = Field(
        60, ge=5, le=1440, description="lifetime of the read-only SAS the first start fetches the wheel with"
    )

    @field_validator("subscription_id")
    @classmethod
    def _guid(cls, v: str | None) -> str | None:
        if v is not None and not _GUID_RE.fullmatch(v):
            raise ValueError("must be a subscription id (a GUID)")
        return v.lower() if v else v

    @field_validator("storage_account_id")
    @classmethod
    def _storage_id(cls, v: str | None) -> str | None:
        if v is not None and not _STORAGE_ID_RE.fullmatch(v):
            raise ValueError("must be /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<name>")
        return v

    @field_validator("data_account_ids")
    @classmethod
    def _data_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for one in v:
            if not _STORAGE_ID_RE.fullmatch(one):
                raise ValueError(
                    f"{one!r} is not /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<name>"
                )
        return v

    @field_validator("batch_account_ids")
    @classmethod
    def _batch_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for one in v:
            if not _BATCH_ID_RE.fullmatch(one):
                raise ValueError(
                    f"{one!r} is not /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Batch/batchAccounts/<name>"
                )
        return v


class FederationSection(_Section):
    storage_account_settings: str | None = Field(None, description="the original's storage link name (informational)")
    location: str | None = Field(None, description="Azure region of the proxy containers (`fed proxy create`), e.g. `westeurope`")
    resource_group: str | None = Field(None, description="resource group of the proxy containers (created if missing)")
    hostname_prefix: str = Field(
        "fedproxy", description="name prefix of the proxy container groups: `<prefix>-aci000`, standbys `-aci001` …"
    )
    vm_size: str | None = Field(
        None, description="the original's proxy VM size: its cores and memory size the container unless `deployment` sets them"
    )
    deployment: Deployment = Deployment()
    store: StoreSettings | None = Field(
        None,
        description="validated, not used: the store is chosen in the workspace's settings.yaml, which the proxy and every client share",
    )
    proxy_options: ProxyOptions = ProxyOptions()
    accounting: Accounting = Field(
        Accounting(), description="priorities, fair share, quotas, budgets, prices (docs/accounting.md)"
    )

    @field_validator("location")
    @classmethod
    def _location(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z0-9]{2,40}", v.lower()):
            raise ValueError("must be an Azure region name such as westeurope (letters and digits)")
        return v.lower() if v else v

    @field_validator("resource_group")
    @classmethod
    def _resource_group(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[-\w.()]{0,89}[-\w()]", v):
            raise ValueError("must be 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'")
        return v

    @field_validator("hostname_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}[a-z0-9]", v):
            raise ValueError("must be 2-42 lower-case letters, digits or '-', starting with a letter (container group names)")
        return v


class FederationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    federation: FederationSection = FederationSection()
