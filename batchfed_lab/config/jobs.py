"""jobs.yaml: ``job_specifications[]`` with tasks, task factories, recurrences and
``federation_constraints`` (SPEC §3, §4.1, §5).

Validation expands parametric sweeps into tasks, gives id-less tasks generated
ids (``task-00000``), and refuses what a federation cannot run: dependencies
outside the task group, ``depends_on_range``, cycles, ``gpu: false`` with a GPU
task, and so on — each with the YAML path of the offending value.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .constraints import FederationConstraints
from .data import InputData, OutputData, StorageInput, StorageOutput
from .loading import PathError
from .pool import check_batch_id
from .units import parse_duration

GENERATED_ID_PREFIX = "task-"
GENERATED_ID_WIDTH = 5
MAX_TASKS_PER_JOB = 100_000  # a sweep larger than this is refused, not truncated
NON_UNIQUE_TASK_ID_MAX = 55  # 64 minus "-" and the 8-char unique-id suffix


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def _duration(v: object) -> timedelta | None:
    return None if v is None else parse_duration(v)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_vars(v: object) -> object:
    """Environment values as strings (YAML may give numbers or booleans)."""
    if not isinstance(v, dict):
        return v
    out: dict[str, str] = {}
    for k, val in v.items():
        if not _ENV_NAME.fullmatch(str(k)):
            raise PathError((), k, "not a valid environment variable name (letters, digits and _, not starting with a digit)")
        if isinstance(val, (dict, list)):
            raise PathError((k,), val, f"the value of {k} must be a string, number or boolean")
        out[str(k)] = "" if val is None else (str(val).lower() if isinstance(val, bool) else str(val))
    return out


# --- task factory --------------------------------------------------------------------


class SweepRange(_Section):
    start: int
    stop: int
    step: int = 1

    @model_validator(mode="after")
    def _sane(self) -> SweepRange:
        if self.step == 0:
            raise ValueError("step must not be 0")
        if (self.stop - self.start) * self.step < 0:
            raise ValueError(f"range from {self.start} to {self.stop} with step {self.step} is empty")
        return self

    def values(self) -> range:
        return range(self.start, self.stop, self.step)


Scalar = int | float | str
GpuCount = Annotated[int, Field(ge=0)]  # a number of GPUs, or "all" / "disable"


class ParametricSweep(_Section):
    """Tasks from parameter combinations; ``{0}``, ``{1}``… in the command are replaced.

    ``product``: each element is a ``{start, stop, step}`` integer range (stop
    excluded, like Python) or a list of values; the cartesian product is taken.
    ``product_iterables``: the same with lists only (the original's key).
    ``zip``: lists of equal length, taken element-wise.
    """

    product: tuple[SweepRange | tuple[Scalar, ...], ...] | None = None
    product_iterables: tuple[tuple[Scalar, ...], ...] | None = None
    zip: tuple[tuple[Scalar, ...], ...] | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> ParametricSweep:
        given = [k for k in ("product", "product_iterables", "zip") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of product, product_iterables or zip")
        lists = self._axes()
        if not lists:
            raise ValueError("the sweep has no parameters")
        for i, axis in enumerate(lists):
            if len(axis) == 0:
                raise PathError((given[0], i), [], "an empty parameter list makes no tasks")
        if self.zip is not None and len({len(a) for a in lists}) != 1:
            raise ValueError("zip lists must all have the same length")
        return self

    def _axes(self) -> list[Sequence[Scalar]]:
        # ranges stay ranges: their length is known without listing a billion values
        if self.product is not None:
            return [a.values() if isinstance(a, SweepRange) else a for a in self.product]
        return list(self.product_iterables or self.zip or ())

    def count(self) -> int:
        axes = self._axes()
        if self.zip is not None:
            return len(axes[0])
        n = 1
        for a in axes:
            n *= len(a)
        return n

    def combinations(self) -> Iterator[tuple[Any, ...]]:
        axes = self._axes()
        return zip(*axes) if self.zip is not None else itertools.product(*axes)


class TaskFactory(_Section):
    parametric_sweep: ParametricSweep


_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def substitute(command: str, params: tuple[Scalar, ...]) -> str:
    """Replace ``{0}``, ``{1}``… only; other braces (``${HOME}``, ``{a,b}``) stay as written.
    Write ``{{0}}`` for a literal ``{0}``."""

    def repl(m: re.Match[str]) -> str:
        start, end = m.span()
        # an escaped placeholder {{0}} is left as {0}
        if start > 0 and command[start - 1] == "{" and end < len(command) and command[end] == "}":
            return m.group(0)
        i = int(m.group(1))
        if i >= len(params):
            raise ValueError(f"placeholder {{{i}}} but the sweep has {len(params)} parameter(s)")
        return str(params[i])

    out = _PLACEHOLDER.sub(repl, command)
    return re.sub(r"\{\{(\d+)\}\}", r"{\1}", out)


# --- tasks ---------------------------------------------------------------------------


class MultiInstance(_Section):
    num_instances: int = Field(..., ge=1, le=1000, description="nodes the task runs on at once")
    coordination_command: str | None = None


class TaskSpec(_Section):
    id: str | None = None
    command: str
    depends_on: tuple[str, ...] = ()
    depends_on_range: Any = Field(None, description="refused in federations")
    multi_instance: MultiInstance | None = None
    gpus: GpuCount | Literal["all", "disable"] | None = None
    infiniband: bool | None = None
    environment_variables: dict[str, str] = {}
    docker_image: str | None = None
    task_factory: TaskFactory | None = None
    max_task_retries: int | None = Field(None, ge=-1, le=100)
    max_wall_time: timedelta | None = None
    input_data: InputData | None = Field(None, description="the task's own inputs, after the job's (docs/data.md)")
    output_data: OutputData | None = Field(None, description="files uploaded when the task ends (docs/data.md)")

    _dur = field_validator("max_wall_time", mode="before")(classmethod(lambda cls, v: _duration(v)))

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        return None if v is None else check_batch_id(v, "task id")

    @field_validator("command")
    @classmethod
    def _command(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("command must not be empty")
        return v

    @field_validator("depends_on_range")
    @classmethod
    def _no_range(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError("depends_on_range is not supported in federations; list the task ids in depends_on")
        return v

    _env = field_validator("environment_variables", mode="before")(classmethod(lambda cls, v: _env_vars(v)))

    @model_validator(mode="after")
    def _shape(self) -> TaskSpec:
        if self.task_factory is not None and self.id is not None:
            raise PathError(("id",), self.id, "a task with a task_factory gets generated ids; remove id")
        if self.task_factory is not None and self.multi_instance is not None:
            raise PathError(("task_factory",), None, "a task_factory cannot be combined with multi_instance")
        if self.task_factory is not None and self.task_factory.parametric_sweep.count() > MAX_TASKS_PER_JOB:
            raise PathError(
                ("task_factory", "parametric_sweep"),
                self.task_factory.parametric_sweep.count(),
                f"the sweep makes more than {MAX_TASKS_PER_JOB} tasks",
            )
        return self

    @property
    def wants_gpu(self) -> bool | None:
        if self.gpus is None:
            return None
        return self.gpus == "all" or (isinstance(self.gpus, int) and self.gpus > 0)


@dataclass(frozen=True)
class TaskDefinition:
    """One concrete task after expansion: what the proxy sends to Batch."""

    id: str
    command: str
    depends_on: tuple[str, ...] = ()
    num_instances: int = 1
    coordination_command: str | None = None
    gpu: bool = False
    infiniband: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    docker_image: str | None = None
    generated_id: bool = False
    max_task_retries: int | None = None
    max_wall_time_s: float | None = None
    source_index: int = 0  # index in the YAML tasks list (for error paths)
    inputs: tuple[StorageInput, ...] = ()  # the job's input_data, then the task's own
    outputs: tuple[StorageOutput, ...] = ()
    # Batch's resourceFiles / outputFiles (REST shape) mapped from inputs / outputs at placement
    # (:mod:`batchfed_lab.data.mapping`): they hold SAS URLs, so they are never stored
    resource_files: tuple[dict[str, Any], ...] = ()
    output_files: tuple[dict[str, Any], ...] = ()

    @property
    def multi_instance(self) -> bool:
        return self.num_instances > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "depends_on": list(self.depends_on),
            "num_instances": self.num_instances,
            "coordination_command": self.coordination_command,
            "gpu": self.gpu,
            "infiniband": self.infiniband,
            "environment": dict(self.environment),
            "docker_image": self.docker_image,
            "generated_id": self.generated_id,
            "max_task_retries": self.max_task_retries,
            "max_wall_time_s": self.max_wall_time_s,
            "inputs": [i.model_dump(mode="json") for i in self.inputs],
            "outputs": [o.model_dump(mode="json") for o in self.outputs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskDefinition:
        return cls(
            id=d["id"],
            command=d["command"],
            depends_on=tuple(d.get("depends_on") or ()),
            num_instances=int(d.get("num_instances") or 1),
            coordination_command=d.get("coordination_command"),
            gpu=bool(d.get("gpu")),
            infiniband=bool(d.get("infiniband")),
            environment=dict(d.get("environment") or {}),
            docker_image=d.get("docker_image"),
            generated_id=bool(d.get("generated_id")),
            max_task_retries=d.get("max_task_retries"),
            max_wall_time_s=d.get("max_wall_time_s"),
            inputs=tuple(StorageInput.model_validate(i) for i in d.get("inputs") or ()),
            outputs=tuple(StorageOutput.model_validate(o) for o in d.get("outputs") or ()),
        )


# --- jobs ----------------------------------------------------------------------------


class RecurrenceSchedule(_Section):
    recurrence_interval: timedelta
    do_not_run_until: str | None = Field(None, description="ISO 8601 UTC time")
    do_not_run_after: str | None = None
    start_window: timedelta | None = None

    _d1 = field_validator("recurrence_interval", mode="before")(classmethod(lambda cls, v: parse_duration(v)))
    _d2 = field_validator("start_window", mode="before")(classmethod(lambda cls, v: _duration(v)))

    @field_validator("do_not_run_until", "do_not_run_after")
    @classmethod
    def _iso(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from datetime import datetime

        try:
            datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not an ISO 8601 time, e.g. 2026-12-01T08:00:00Z") from None
        return str(v)


class JobManager(_Section):
    monitor_task_completion: bool = False
    run_exclusive: bool = False


class Recurrence(_Section):
    schedule: RecurrenceSchedule
    job_manager: JobManager = JobManager()


class JobPreparation(_Section):
    command: str


class JobSpecification(_Section):
    id: str
    tasks: tuple[TaskSpec, ...] = Field(..., min_length=1)
    federation_constraints: FederationConstraints = FederationConstraints()
    recurrence: Recurrence | None = None
    auto_complete: bool = False
    environment_variables: dict[str, str] = {}
    job_preparation: JobPreparation | None = None
    on_task_failure: Literal["noaction", "performexitoptionsjobaction"] = "noaction"
    gpus: GpuCount | Literal["all", "disable"] | None = None
    infiniband: bool | None = None
    max_task_retries: int = Field(0, ge=-1, le=100)
    max_wall_time: timedelta | None = None
    priority: int = Field(0, ge=-1000, le=1000)
    input_data: InputData | None = Field(None, description="inputs every task of the job gets (docs/data.md)")
    output_data: Any = Field(None, description="refused: output_data is a task-level key")

    _expanded: tuple[TaskDefinition, ...] = PrivateAttr(default=())

    _dur = field_validator("max_wall_time", mode="before")(classmethod(lambda cls, v: _duration(v)))
    _env = field_validator("environment_variables", mode="before")(classmethod(lambda cls, v: _env_vars(v)))

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_batch_id(v, "job id")

    @field_validator("output_data")
    @classmethod
    def _task_level_outputs(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError("output_data is a task-level key (as in the original): move it under each task")
        return v

    @model_validator(mode="after")
    def _expand_and_check(self) -> JobSpecification:
        tasks = _expand(self)
        _check_dependencies(tasks)
        _check_gpu_ib(self, tasks)
        _check_data(self, tasks)
        self._expanded = tuple(tasks)
        return self

    # -- derived ---------------------------------------------------------------------
    @property
    def task_definitions(self) -> tuple[TaskDefinition, ...]:
        return self._expanded

    @property
    def is_schedule(self) -> bool:
        return self.recurrence is not None

    @property
    def kind(self) -> Literal["job", "job_schedule"]:
        return "job_schedule" if self.recurrence is not None else "job"

    @property
    def uses_dependencies(self) -> bool:
        return any(t.depends_on for t in self._expanded)

    @property
    def input_accounts(self) -> frozenset[str]:
        """The storage accounts (settings names) the job's tasks read inputs from."""
        return frozenset(i.storage_account_settings for t in self._expanded for i in t.inputs)


def _inherited(job: JobSpecification, spec: TaskSpec, index: int, job_gpu: bool) -> dict[str, Any]:
    """A task's settings, with what it leaves unset taken from the job."""
    gpu = spec.wants_gpu if spec.wants_gpu is not None else job_gpu
    # tasks without their own variables share the job's mapping: thousands of tasks
    # must not each copy a large job environment
    env = {**job.environment_variables, **spec.environment_variables} if spec.environment_variables else job.environment_variables
    retries = spec.max_task_retries if spec.max_task_retries is not None else job.max_task_retries
    wall = spec.max_wall_time or job.max_wall_time
    return {
        "depends_on": spec.depends_on,
        "gpu": bool(gpu),
        "infiniband": spec.infiniband if spec.infiniband is not None else bool(job.infiniband),
        "environment": env,
        "docker_image": spec.docker_image,
        "max_task_retries": retries,
        "max_wall_time_s": wall.total_seconds() if wall else None,
        "source_index": index,
        # the job's inputs go to every task, before the task's own
        "inputs": (job.input_data.azure_storage if job.input_data else ())
        + (spec.input_data.azure_storage if spec.input_data else ()),
        "outputs": spec.output_data.azure_storage if spec.output_data else (),
    }


def _expand(job: JobSpecification) -> list[TaskDefinition]:
    explicit = {t.id for t in job.tasks if t.id is not None}
    seen: dict[str, int] = {}
    out: list[TaskDefinition] = []
    counter = itertools.count()
    job_gpu = job.gpus == "all" or (isinstance(job.gpus, int) and job.gpus > 0)

    def next_id() -> str:
        while True:
            candidate = f"{GENERATED_ID_PREFIX}{next(counter):0{GENERATED_ID_WIDTH}d}"
            if candidate not in explicit:
                return candidate

    for index, spec in enumerate(job.tasks):
        common = _inherited(job, spec, index, job_gpu)
        if spec.task_factory is not None:
            for params in spec.task_factory.parametric_sweep.combinations():
                try:
                    command = substitute(spec.command, tuple(params))
                except ValueError as exc:
                    raise PathError(("tasks", index, "command"), spec.command, str(exc)) from None
                out.append(TaskDefinition(id=next_id(), command=command, generated_id=True, **common))
                if len(out) > MAX_TASKS_PER_JOB:
                    raise PathError(("tasks",), len(out), f"the job makes more than {MAX_TASKS_PER_JOB} tasks")
            continue
        if spec.id is not None:
            if spec.id in seen:
                raise PathError(("tasks", index, "id"), spec.id, f"duplicate task id (also tasks[{seen[spec.id]}])")
            seen[spec.id] = index
            tid, generated = spec.id, False
        else:
            tid, generated = next_id(), True
        mi = spec.multi_instance
        out.append(
            TaskDefinition(
                id=tid,
                command=spec.command,
                generated_id=generated,
                num_instances=mi.num_instances if mi else 1,
                coordination_command=mi.coordination_command if mi else None,
                **common,
            )
        )
    if len(out) > MAX_TASKS_PER_JOB:
        raise PathError(("tasks",), len(out), f"the job makes more than {MAX_TASKS_PER_JOB} tasks")
    return out


def _check_dependencies(tasks: list[TaskDefinition]) -> None:
    ids = {t.id for t in tasks}
    graph: dict[str, tuple[str, ...]] = {}
    for t in tasks:
        for j, dep in enumerate(t.depends_on):
            if dep not in ids:
                raise PathError(
                    ("tasks", t.source_index, "depends_on", j),
                    dep,
                    "dependency outside the task group: every depends_on must name a task of this job entry",
                )
            if dep == t.id:
                raise PathError(("tasks", t.source_index, "depends_on", j), dep, "a task cannot depend on itself")
        if t.depends_on:
            graph[t.id] = t.depends_on
    # cycle check (iterative DFS: sweeps can be long chains)
    state: dict[str, int] = {}
    index_of = {t.id: t.source_index for t in tasks}
    for root in graph:
        if state.get(root):
            continue
        stack = [(root, iter(graph.get(root, ())))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                path = [n for n, _ in stack]
                cycle = [*path[path.index(nxt) :], nxt]
                raise PathError(
                    ("tasks", index_of[node], "depends_on", graph[node].index(nxt)),
                    nxt,
                    f"dependency cycle: {' -> '.join(cycle)}",
                )
            if not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(graph.get(nxt, ()))))


def _check_gpu_ib(job: JobSpecification, tasks: list[TaskDefinition]) -> None:
    cn = job.federation_constraints.compute_node

    def where(t: TaskDefinition, key: str) -> str:
        # the task's own setting, or the job-level one it inherits
        return f"tasks[{t.source_index}].{key}" if getattr(job.tasks[t.source_index], key) is not None else f"job-level {key}"

    if cn.gpu is False:
        for t in tasks:
            if t.gpu:
                raise PathError(
                    ("federation_constraints", "compute_node", "gpu"),
                    False,
                    f"gpu: false but task '{t.id}' asks for GPUs ({where(t, 'gpus')})",
                )
    if cn.infiniband is False:
        for t in tasks:
            if t.infiniband:
                raise PathError(
                    ("federation_constraints", "compute_node", "infiniband"),
                    False,
                    f"infiniband: false but task '{t.id}' asks for InfiniBand ({where(t, 'infiniband')})",
                )


def _check_data(job: JobSpecification, tasks: list[TaskDefinition]) -> None:
    has_inputs = any(t.inputs for t in tasks)
    if job.federation_constraints.pool.location == "data" and not has_inputs:
        raise PathError(
            ("federation_constraints", "pool", "location"),
            "data",
            "pool.location: data needs input_data (it places the job in the region of its inputs)",
        )


class JobsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    job_specifications: tuple[JobSpecification, ...] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> JobsConfig:
        seen: dict[str, int] = {}
        for i, job in enumerate(self.job_specifications):
            if job.id in seen:
                raise PathError(
                    ("job_specifications", i, "id"), job.id, f"duplicate job id (also job_specifications[{seen[job.id]}])"
                )
            seen[job.id] = i
        return self
