"""pool.yaml: ``pool_specification`` (the original's keys, SPEC §3)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from .loading import PathError
from .units import parse_duration

# Batch ids: letters, digits, hyphens and underscores, at most 64 characters.
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_batch_id(v: str, what: str = "id") -> str:
    if not isinstance(v, str) or not BATCH_ID_RE.fullmatch(v):
        raise ValueError(f"{what} must be 1-64 letters, digits, hyphens or underscores")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class VmCount(_Section):
    dedicated: int = Field(0, ge=0, le=10_000)
    low_priority: int = Field(0, ge=0, le=10_000)


class Autoscale(_Section):
    enabled: bool = False
    formula: str | None = Field(None, description="Batch autoscale formula")
    evaluation_interval: timedelta = Field(timedelta(minutes=15), description="HH:MM:SS, PT15M or seconds")

    @field_validator("evaluation_interval", mode="before")
    @classmethod
    def _interval(cls, v: object) -> timedelta:
        # Azure Batch wants 5 min .. 168 h; the service says so itself. localbatch takes shorter ones.
        return parse_duration(v)

    @model_validator(mode="after")
    def _formula_when_enabled(self) -> Autoscale:
        if self.enabled and not (self.formula and self.formula.strip()):
            raise PathError(("formula",), self.formula, "autoscale enabled: true needs a formula")
        return self


class PlatformImage(_Section):
    publisher: str
    offer: str
    sku: str
    version: str = "latest"
    native: bool = Field(False, description="native container support (Batch runs the containers)")
    node_agent: str | None = Field(None, description="node agent SKU id; derived from the image when omitted")


class CustomImage(_Section):
    arm_image_id: str
    node_agent: str
    native: bool = False

    @field_validator("arm_image_id")
    @classmethod
    def _arm(cls, v: str) -> str:
        if not v.strip().lower().startswith("/subscriptions/"):
            raise ValueError("must be an ARM resource id starting with /subscriptions/")
        return v.strip()


class VmConfiguration(_Section):
    platform_image: PlatformImage | None = None
    custom_image: CustomImage | None = None

    @model_validator(mode="after")
    def _one_image(self) -> VmConfiguration:
        if (self.platform_image is None) == (self.custom_image is None):
            raise ValueError("give exactly one of platform_image or custom_image")
        return self

    @property
    def native(self) -> bool:
        image = self.platform_image or self.custom_image
        return bool(image and image.native)

    @property
    def node_agent(self) -> str:
        if self.custom_image is not None:
            return self.custom_image.node_agent
        assert self.platform_image is not None
        if self.platform_image.node_agent:
            return self.platform_image.node_agent
        return _default_node_agent(self.platform_image)


def _default_node_agent(img: PlatformImage) -> str:
    if "windows" in img.publisher.lower() or "windows" in img.offer.lower():
        return "batch.node.windows amd64"
    offer = img.offer.lower()
    if "ubuntu" in offer:
        return "batch.node.ubuntu 22.04"
    if "centos" in offer or "alma" in offer or "rocky" in offer or "rhel" in offer:
        return "batch.node.el 8"
    if "debian" in offer:
        return "batch.node.debian 12"
    return "batch.node.ubuntu 22.04"


class VirtualNetwork(_Section):
    arm_subnet_id: str

    @field_validator("arm_subnet_id")
    @classmethod
    def _arm(cls, v: str) -> str:
        if not v.strip().lower().startswith("/subscriptions/"):
            raise ValueError("must be an ARM subnet id starting with /subscriptions/")
        return v.strip()


class RegistryLogin(_Section):
    """A container registry login a pool holds. The password never lives here."""

    server: str | None = Field(None, description="registry server; omitted = Docker Hub")
    username: str

    @property
    def login(self) -> str:
        """The string job constraints are matched against."""
        if not self.server or self.server.lower() in ("docker.io", "index.docker.io", "registry-1.docker.io"):
            return f"dockerhub-{self.username}"
        return self.server.lower()


class VmSizeOverride(_Section):
    cores: int | None = Field(None, ge=1)
    memory_mib: int | None = Field(None, ge=1)
    gpus: int | None = Field(None, ge=0)
    rdma: bool | None = None


class PoolSpecification(_Section):
    id: str
    vm_size: str
    vm_count: VmCount = VmCount()
    task_slots_per_node: int = Field(1, ge=1, le=256, validation_alias=AliasChoices("task_slots_per_node", "max_tasks_per_node"))
    autoscale: Autoscale = Autoscale()
    inter_node_communication_enabled: bool = False
    vm_configuration: VmConfiguration = VmConfiguration(
        platform_image=PlatformImage(publisher="Canonical", offer="ubuntu-24_04-lts", sku="server")
    )
    virtual_network: VirtualNetwork | None = None
    os: Literal["linux", "windows"] | None = Field(None, description="derived from the image when omitted")
    location: str | None = Field(None, description="where an embedded (localbatch) pool 'is', e.g. westeurope")
    container_registries: tuple[RegistryLogin, ...] = ()
    vm_size_override: VmSizeOverride | None = None
    identity_reference: str | None = Field(
        None,
        description="ARM id of the user-assigned managed identity the pool's tasks reach storage with "
        "(input_data / output_data use it instead of a SAS); assign it to the pool in Azure",
    )

    @field_validator("identity_reference")
    @classmethod
    def _identity(cls, v: str | None) -> str | None:
        if v is None:
            return v
        text = v.strip()
        if not re.fullmatch(
            r"(?i)/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.managedidentity/userassignedidentities/[^/]+",
            text,
        ):
            raise ValueError(
                "must be the ARM id of a user-assigned managed identity "
                "(/subscriptions/…/resourceGroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME)"
            )
        return text

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_batch_id(v, "pool id")

    @field_validator("vm_size")
    @classmethod
    def _vm_size(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{2,64}", v or ""):
            raise ValueError("not a VM size name (e.g. STANDARD_D2S_V3)")
        return v

    @field_validator("location")
    @classmethod
    def _location(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().lower()
        if not re.fullmatch(r"[a-z0-9]{2,40}", v):
            raise ValueError("must be a region name like westeurope (lower-case letters and digits, no spaces)")
        return v

    @model_validator(mode="after")
    def _capacity(self) -> PoolSpecification:
        if not self.autoscale.enabled and self.vm_count.dedicated + self.vm_count.low_priority == 0:
            raise PathError(
                ("vm_count",),
                self.vm_count.model_dump(),
                "0 dedicated and 0 low_priority nodes and autoscale is off: the pool could never run a task",
            )
        image_windows = self.vm_configuration.node_agent.startswith("batch.node.windows")
        if self.os is not None and (self.os == "windows") != image_windows:
            image = "a Windows" if image_windows else "a Linux"
            raise PathError(
                ("os",), self.os, f"os: {self.os} contradicts {image} image (node agent '{self.vm_configuration.node_agent}')"
            )
        return self

    @property
    def windows(self) -> bool:
        if self.os is not None:
            return self.os == "windows"
        return self.vm_configuration.node_agent.startswith("batch.node.windows")

    @property
    def native(self) -> bool:
        return self.vm_configuration.native


class PoolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    pool_specification: PoolSpecification
