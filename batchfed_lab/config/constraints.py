"""``federation_constraints`` of a job (SPEC §4.1), validated.

Defaults follow the original's code (not its docs where they disagree). Every
field is optional; an empty section means "any pool that has capacity".
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .loading import PathError
from .replacement import ReplacementRules
from .units import parse_memory_mib


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class AutoscaleConstraint(_Section):
    allow: bool = Field(True, description="false → exclude autoscale pools")
    exclusive: bool = Field(False, description="true → only autoscale pools")

    @model_validator(mode="after")
    def _coherent(self) -> AutoscaleConstraint:
        if self.exclusive and not self.allow:
            raise PathError(("exclusive",), True, "exclusive: true together with allow: false can never match a pool")
        return self


class LowPriorityConstraint(_Section):
    allow: bool = Field(True, description="false → dedicated capacity only")
    exclusive: bool = Field(False, description="true → low-priority capacity only")

    @model_validator(mode="after")
    def _coherent(self) -> LowPriorityConstraint:
        if self.exclusive and not self.allow:
            raise PathError(("exclusive",), True, "exclusive: true together with allow: false can never match a pool")
        return self


class ContainerRegistriesConstraint(_Section):
    private_docker_hub: bool = Field(False, description="Docker Hub images 'ns/img' need a login for 'ns'")
    public: tuple[str, ...] = Field((), description="registries that need no login")

    @field_validator("public", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        if isinstance(v, (list, tuple)):
            return tuple(str(x).strip().lower() for x in v)
        return v


class BacklogConstraint(_Section):
    ratio: float = Field(..., ge=0, description="active tasks ÷ available slots must not exceed this")
    autoscale_exempt: bool = Field(True, description="a steady autoscale pool with 0 slots is exempt")


class PoolConstraints(_Section):
    autoscale: AutoscaleConstraint = AutoscaleConstraint()
    low_priority_nodes: LowPriorityConstraint = LowPriorityConstraint()
    native: bool | None = Field(None, description="must equal the pool's native-container flag")
    windows: bool | None = Field(None, description="true → Windows pools only; false → Linux pools only")
    location: str | None = Field(None, description="ARM region name, e.g. westeurope")
    container_registries: ContainerRegistriesConstraint = ContainerRegistriesConstraint()
    max_active_task_backlog: BacklogConstraint | None = None
    custom_image_arm_id: str | None = None
    virtual_network_arm_id: str | None = None

    @field_validator("location")
    @classmethod
    def _arm_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().lower()
        if not v or " " in v:
            raise ValueError("must be an ARM region name without spaces, e.g. 'westeurope' (not 'West Europe')")
        return v

    @field_validator("custom_image_arm_id", "virtual_network_arm_id")
    @classmethod
    def _non_empty(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be empty")
        return v.strip() if v else v


class CoresConstraint(_Section):
    amount: int = Field(..., ge=1, description="at least this many cores per node")
    schedulable_variance: float | None = Field(
        None, ge=0, description="at most amount × (1 + variance) cores; 0 = exact; unset = no upper bound"
    )


class MemoryConstraint(_Section):
    amount: str = Field(..., description="at least this much memory per node: number + b/k/m/g/t")
    schedulable_variance: float | None = Field(None, ge=0)

    @field_validator("amount", mode="before")
    @classmethod
    def _parse(cls, v: object) -> str:
        parse_memory_mib(v)  # raises ValueError with the reason
        return str(v).strip().lower()

    @property
    def amount_mib(self) -> float:
        return parse_memory_mib(self.amount)


class ComputeNodeConstraints(_Section):
    vm_size: str | None = Field(None, description="exact VM size, case-insensitive")
    cores: CoresConstraint | None = None
    memory: MemoryConstraint | None = None
    exclusive: bool = Field(False, description="true → pools with exactly 1 task slot per node")
    gpu: bool | None = Field(None, description="true → GPU sizes only; false → non-GPU sizes only")
    infiniband: bool | None = Field(None, description="true → RDMA sizes only; false → non-RDMA sizes only")

    @field_validator("vm_size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be empty")
        return v.strip() if v else v

    @model_validator(mode="after")
    def _size_xor_shape(self) -> ComputeNodeConstraints:
        if self.vm_size and (self.cores is not None or self.memory is not None):
            raise PathError(
                ("vm_size",), self.vm_size, "vm_size cannot be combined with cores or memory: pick an exact size or a shape"
            )
        return self


class FederationConstraints(_Section):
    pool: PoolConstraints = PoolConstraints()
    compute_node: ComputeNodeConstraints = ComputeNodeConstraints()
    replacement: ReplacementRules = Field(
        ReplacementRules(), description="when a placed job moves to another pool (preemption, pool loss, failures)"
    )
