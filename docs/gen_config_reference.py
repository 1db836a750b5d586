"""Generate docs/configuration.md from the pydantic models of batchfed_lab.config.

    .venv/bin/python docs/gen_config_reference.py          # write docs/configuration.md
    .venv/bin/python docs/gen_config_reference.py --check  # exit 1 if the committed file is stale

Keys, nesting, types, defaults, limits, choices and aliases come from the models; so do the
descriptions, except for the fields a model leaves undescribed — those take their line from
``NOTES`` below (a test fails if a note names a field that no longer exists, or if a field
has neither).
"""

from __future__ import annotations

import sys
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from batchfed_lab.config import FederationConfig, JobsConfig, PoolConfig  # noqa: E402
from batchfed_lab.config.workspace import WorkspaceSettings  # noqa: E402

OUT = ROOT / "docs" / "configuration.md"

#: (file, top model, what it is)
FILES: list[tuple[str, type[BaseModel], str]] = [
    (
        "settings.yaml",
        WorkspaceSettings,
        "the workspace settings: `$BATCHFED_HOME/settings.yaml` (optional; every key has a default)",
    ),
    (
        "federation.yaml",
        FederationConfig,
        "the proxy's options (`batchfed up --config`, `fed proxy start --config`) and its Azure deployment (`fed proxy create --config`)",
    ),
    ("pool.yaml", PoolConfig, "one pool (`fed pool add --pool-config`, `batchfed pool create`)"),
    ("jobs.yaml", JobsConfig, "jobs and job schedules (`fed jobs add`, `%%fed submit`, `fed explain`)"),
]

#: descriptions for fields whose model has none, by "file: dotted.path"
NOTES: dict[str, str] = {
    "settings.yaml: store": "where federation metadata and the action queue live",
    "settings.yaml: store.backend": "`sqlite`: one file in the workspace (embedded); `azure`: Azure Tables, Queues and Blob",
    "settings.yaml: store.sqlite": "the embedded store",
    "settings.yaml: store.azure": "the Azure Storage account (see [azure.md](azure.md))",
    "settings.yaml: store.azure.queue_endpoint": "override, e.g. an Azurite URL",
    "settings.yaml: store.azure.blob_endpoint": "override, e.g. an Azurite URL",
    "settings.yaml: localbatch": "the embedded Batch service",
    "settings.yaml: proxy": "the proxy processes of this workspace",
    "settings.yaml: proxy.lease_seconds": "leader lease length: a standby takes over at most this long (+ renew) after the leader dies",
    "settings.yaml: proxy.renew_seconds": "how often the leader renews its lease and a standby tries to take it",
    "federation.yaml: federation": "the only top-level key",
    "federation.yaml: federation.deployment": "the proxy on Azure Container Instances (`fed proxy create`; see [azure.md](azure.md#deploying-the-proxy))",
    "federation.yaml: federation.proxy_options": "how the proxy polls, logs and schedules",
    "federation.yaml: federation.proxy_options.polling_interval": "seconds between periodic checks (the proxy is event-driven)",
    "federation.yaml: federation.proxy_options.logging": "the proxy's log",
    "federation.yaml: federation.proxy_options.logging.level": "least severe level written",
    "federation.yaml: federation.proxy_options.scheduling": "placement behaviour",
    "federation.yaml: federation.proxy_options.scheduling.after_success": "what follows a successful placement",
    "pool.yaml: pool_specification": "the only top-level key",
    "pool.yaml: pool_specification.id": "pool id: 1-64 letters, digits, `-`, `_`",
    "pool.yaml: pool_specification.vm_size": "Azure VM size, e.g. `STANDARD_D2S_V3`; its cores, memory, GPUs and RDMA come from the size catalog ([vm-sizes.md](vm-sizes.md))",
    "pool.yaml: pool_specification.vm_count": "fixed size (ignored while autoscale is enabled)",
    "pool.yaml: pool_specification.vm_count.dedicated": "dedicated nodes",
    "pool.yaml: pool_specification.vm_count.low_priority": "low-priority (spot) nodes",
    "pool.yaml: pool_specification.task_slots_per_node": "tasks a node runs at once (scheduling slots per node)",
    "pool.yaml: pool_specification.autoscale": "Batch autoscale instead of a fixed size",
    "pool.yaml: pool_specification.autoscale.enabled": "true → the pool autoscales (needs `formula`)",
    "pool.yaml: pool_specification.inter_node_communication_enabled": "needed by multi-instance (MPI) tasks",
    "pool.yaml: pool_specification.vm_configuration": "exactly one of `platform_image` or `custom_image`",
    "pool.yaml: pool_specification.vm_configuration.platform_image": "a Marketplace image",
    "pool.yaml: pool_specification.vm_configuration.platform_image.publisher": "image publisher, e.g. `Canonical`",
    "pool.yaml: pool_specification.vm_configuration.platform_image.offer": "image offer, e.g. `ubuntu-24_04-lts`",
    "pool.yaml: pool_specification.vm_configuration.platform_image.sku": "image SKU, e.g. `server`",
    "pool.yaml: pool_specification.vm_configuration.platform_image.version": "image version",
    "pool.yaml: pool_specification.vm_configuration.custom_image": "a custom (Azure Compute Gallery / managed) image",
    "pool.yaml: pool_specification.vm_configuration.custom_image.arm_image_id": "ARM resource id of the image (`/subscriptions/…`)",
    "pool.yaml: pool_specification.vm_configuration.custom_image.node_agent": "node agent SKU id, e.g. `batch.node.ubuntu 22.04`",
    "pool.yaml: pool_specification.vm_configuration.custom_image.native": "native container support",
    "pool.yaml: pool_specification.virtual_network": "the subnet the nodes join",
    "pool.yaml: pool_specification.virtual_network.arm_subnet_id": "ARM subnet id (`/subscriptions/…/subnets/…`)",
    "pool.yaml: pool_specification.container_registries": "registry logins the pool holds (passwords never live here)",
    "pool.yaml: pool_specification.container_registries[].username": "login user name",
    "pool.yaml: pool_specification.vm_size_override": "correct or complete the size catalog for this pool",
    "pool.yaml: pool_specification.vm_size_override.cores": "vCPUs per node",
    "pool.yaml: pool_specification.vm_size_override.memory_mib": "memory per node in MiB",
    "pool.yaml: pool_specification.vm_size_override.gpus": "GPUs per node",
    "pool.yaml: pool_specification.vm_size_override.rdma": "RDMA / InfiniBand back-end network",
    "jobs.yaml: job_specifications": "the only top-level key: a list of jobs (a job with `recurrence` is a job schedule)",
    "jobs.yaml: job_specifications[].id": "job (or job schedule) id: 1-64 letters, digits, `-`, `_`",
    "jobs.yaml: job_specifications[].tasks": "the task group this submission adds",
    "jobs.yaml: job_specifications[].tasks[].id": "task id; omitted → generated (`task-00000` …, renumbered after the job's highest)",
    "jobs.yaml: job_specifications[].tasks[].command": "shell command line (run with `/bin/sh -c`, `cmd /c` on Windows)",
    "jobs.yaml: job_specifications[].tasks[].depends_on": "ids of tasks of the same task group this one waits for",
    "jobs.yaml: job_specifications[].tasks[].multi_instance": "a multi-instance (MPI) task",
    "jobs.yaml: job_specifications[].tasks[].multi_instance.coordination_command": "runs on every instance before the command",
    "jobs.yaml: job_specifications[].tasks[].gpus": "GPUs the task needs (`all`, a count, or `disable`); implies `compute_node.gpu: true`",
    "jobs.yaml: job_specifications[].tasks[].infiniband": "the task needs RDMA; implies `compute_node.infiniband: true`",
    "jobs.yaml: job_specifications[].tasks[].environment_variables": "environment of the task (values become strings)",
    "jobs.yaml: job_specifications[].tasks[].docker_image": "run the command in this container image",
    "jobs.yaml: job_specifications[].tasks[].task_factory": "expand one task into many",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep": "one task per combination; `{0}`, `{1}` … in the command take the values",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep.product": "ranges (`{start, stop, step}`) or lists, combined as a Cartesian product",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep.product[].start": "first value",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep.product[].stop": "end (exclusive)",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep.product[].step": "increment",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep.product_iterables": "lists of values, combined as a Cartesian product",
    "jobs.yaml: job_specifications[].tasks[].task_factory.parametric_sweep.zip": "lists of values taken in step (the i-th of each)",
    "jobs.yaml: job_specifications[].tasks[].max_task_retries": "retries after a non-zero exit (-1: unlimited); default: the job's",
    "jobs.yaml: job_specifications[].tasks[].max_wall_time": "the task is killed after this long (HH:MM:SS, PT1H or seconds)",
    "jobs.yaml: job_specifications[].federation_constraints": "where the job may be placed: see [constraints.md](constraints.md)",
    "jobs.yaml: job_specifications[].federation_constraints.pool": "constraints on the pool",
    "jobs.yaml: job_specifications[].federation_constraints.pool.autoscale": "autoscale pools",
    "jobs.yaml: job_specifications[].federation_constraints.pool.low_priority_nodes": "low-priority capacity",
    "jobs.yaml: job_specifications[].federation_constraints.pool.container_registries": "registry logins the task group's images need",
    "jobs.yaml: job_specifications[].federation_constraints.pool.max_active_task_backlog": "skip pools with too long a queue",
    "jobs.yaml: job_specifications[].federation_constraints.pool.custom_image_arm_id": "the pool must use this custom image (case-insensitive)",
    "jobs.yaml: job_specifications[].federation_constraints.pool.virtual_network_arm_id": "the pool's subnet must be this one (case-insensitive)",
    "jobs.yaml: job_specifications[].federation_constraints.compute_node": "constraints on the nodes",
    "jobs.yaml: job_specifications[].federation_constraints.compute_node.cores": "cores per node",
    "jobs.yaml: job_specifications[].federation_constraints.compute_node.memory": "memory per node",
    "jobs.yaml: job_specifications[].federation_constraints.compute_node.memory.schedulable_variance": "at most amount × (1 + variance); 0 = exact; unset = no upper bound",
    "jobs.yaml: job_specifications[].recurrence": "makes the job a job schedule",
    "jobs.yaml: job_specifications[].recurrence.schedule": "when its jobs are created",
    "jobs.yaml: job_specifications[].recurrence.schedule.recurrence_interval": "time between jobs (at least 1 minute on Azure)",
    "jobs.yaml: job_specifications[].recurrence.schedule.do_not_run_after": "ISO 8601 UTC time",
    "jobs.yaml: job_specifications[].recurrence.schedule.start_window": "a recurrence not started within this window is skipped",
    "jobs.yaml: job_specifications[].recurrence.job_manager": "the original's job-manager options (see [limitations.md](limitations.md))",
    "jobs.yaml: job_specifications[].recurrence.job_manager.monitor_task_completion": "the original's option; kept for compatibility",
    "jobs.yaml: job_specifications[].recurrence.job_manager.run_exclusive": "the original's option; kept for compatibility",
    "jobs.yaml: job_specifications[].auto_complete": "terminate the job when all its tasks are done",
    "jobs.yaml: job_specifications[].environment_variables": "environment of every task of the job",
    "jobs.yaml: job_specifications[].job_preparation": "a command run once per node before the job's first task there",
    "jobs.yaml: job_specifications[].job_preparation.command": "shell command line",
    "jobs.yaml: job_specifications[].on_task_failure": "`performexitoptionsjobaction` lets a failed task end the job",
    "jobs.yaml: job_specifications[].gpus": "GPUs every task needs (as the task-level key)",
    "jobs.yaml: job_specifications[].infiniband": "every task needs RDMA",
    "jobs.yaml: job_specifications[].max_task_retries": "retries after a non-zero exit, for every task (-1: unlimited)",
    "jobs.yaml: job_specifications[].max_wall_time": "the job is ended after this long",
    "jobs.yaml: job_specifications[].priority": "Batch job priority (-1000 … 1000)",
}

ENVIRONMENT = [
    ("BATCHFED_HOME", "the workspace folder (default `~/.batchfed`)"),
    (
        "BATCHFED_STORAGE_CONNECTION_STRING",
        "the Azure Storage connection string, read only with `store.azure.credential: connection_string`; never read from a file",
    ),
    (
        "BATCHFED_BATCH_KEY_<ACCOUNT>",
        "a Batch shared key for account `<ACCOUNT>` (upper-cased, non-alphanumerics as `_`); without it Azure accounts use `DefaultAzureCredential`, localbatch accounts the workspace key",
    ),
    (
        "AZURE_SUBSCRIPTION_ID",
        "the subscription `fed proxy create / destroy` deploy to when `federation.deployment.subscription_id` is not set",
    ),
    (
        "BATCHFED_ARM_WHAT_IF",
        "`1` / `0`: run ARM what-if with `--what-if` or not, whatever login is found (default: when an Azure login is at hand)",
    ),
    ("BATCHFED_NONINTERACTIVE", "`1`: no live refresh or progress bars (set automatically under papermill)"),
]


# --------------------------------------------------------------------------- rendering
def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(_type(a) for a in parts))
        return text
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_type(inner[0])}" if inner else "list"
    if origin is dict:
        return "mapping"
    if annotation is typing.Any:
        return "any"
    if annotation is timedelta:
        return "duration"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "text", int: "integer", float: "number", bool: "true/false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _default(info: Any) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "**required**"
    value = info.default if info.default_factory is None else info.default_factory()
    if isinstance(value, BaseModel):
        return "see below"
    if value is None:
        return "—"
    if isinstance(value, timedelta):
        total = int(value.total_seconds())
        return f"`{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (tuple, list, dict)) and not value:
        return "empty"
    return f"`{value}`"


def _limits(info: Any) -> str:
    out = []
    for m in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{sign} {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{sign} {v}")
    return ", ".join(out)


def _aliases(info: Any, name: str) -> str:
    """`` (alias `x`)`` for the other spellings a field accepts, else empty."""
    names = [info.alias or name]
    for choice in getattr(info.validation_alias, "choices", []) or []:
        if isinstance(choice, str) and choice not in names:
            names.append(choice)
    return f" (alias `{'`, `'.join(names[1:])}`)" if len(names) > 1 else ""


def _models(annotation: Any) -> list[type[BaseModel]]:
    from batchfed_lab.config.loading import _unwrap

    return _unwrap(annotation)


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return origin in (tuple, list)


def rows(
    file: str, model: type[BaseModel], prefix: str = "", seen: tuple[type, ...] = (), shown_at: dict[type, str] | None = None
) -> list[tuple[str, ...]]:
    """(key path, type, default, limits, description, note key) for every field, depth first.
    A section already listed (in this or an earlier file) is referred to, not repeated."""
    shown_at = {} if shown_at is None else shown_at
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}.{key}" if prefix else key
        note = f"{file}: {path}"
        text = info.description or NOTES.get(note, "")
        subs = [m for m in _models(info.annotation) if m not in seen]
        again = [shown_at[m] for m in subs if m in shown_at]
        if again:
            text += f" — the same keys as {again[0]}"
        shown = f"`{path}`{_aliases(info, name)}"
        out.append((shown, _type(info.annotation), _default(info), _limits(info), text, note))
        for sub in subs:
            if sub in shown_at:
                continue
            shown_at[sub] = f"`{path}` in {file}"
            out += rows(file, sub, path + ("[]" if _is_list(info.annotation) else ""), (*seen, model), shown_at)
    return out


def all_rows() -> dict[str, list[tuple[str, ...]]]:
    shown_at: dict[type, str] = {}
    return {file: rows(file, model, shown_at=shown_at) for file, model, _ in FILES}


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- GENERATED by docs/gen_config_reference.py from the pydantic models of batchfed_lab.config;",
        "     do not edit by hand: run `.venv/bin/python docs/gen_config_reference.py` (a test fails when stale). -->",
        "",
        "Every file is YAML. Unknown keys are errors (the nearest valid key is suggested); a key left",
        "blank means its default; `batchfed config validate FILE…` checks files without running anything.",
        "Durations take `HH:MM:SS`, `D.HH:MM:SS`, ISO 8601 (`PT5M`) or seconds; memory amounts a number with",
        "a suffix `b k m g t` (binary multiples). Secrets are never read from these files.",
        "",
    ]
    for file, _model, what in FILES:
        lines += [f"- [{file}](#{file.replace('.', '')}): {what}"]
    lines += ["- [Environment variables](#environment-variables)", ""]
    tables = all_rows()
    for file, _model, what in FILES:
        lines += [
            f"## {file}",
            "",
            what[:1].upper() + what[1:] + ".",
            "",
            "| key | type | default | limits | meaning |",
            "|---|---|---|---|---|",
        ]
        for key, typ, default, limits, text, _ in tables[file]:
            lines.append(f"| {key} | {typ} | {default} | {limits} | {text.replace('|', '/')} |")
        lines.append("")
    lines += ["## Environment variables", "", "| variable | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in ENVIRONMENT]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run .venv/bin/python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({sum(len(r) for r in all_rows().values())} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
