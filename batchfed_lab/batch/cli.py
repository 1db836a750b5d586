"""``batchfed pool create|list|delete|resize``: manage Batch pools directly (local or Azure).

Without ``--batch-service-url`` the commands talk to the workspace's running localbatch
(found through its discovery file) as account ``--account`` (default ``local``).
Errors print one line and exit 1. The Azure SDK is imported only when a command runs.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import BatchfedError

__all__ = ["pool_group"]

DEFAULT_LOCAL_ACCOUNT = "local"


class _Group(click.Group):
    """One line and exit 1 for our errors, also when this group runs on its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchfedError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _service_url(url: str | None, account: str) -> str:
    if url:
        return url
    from ..localbatch import control

    return control.account_url(account)  # BatchError "LocalBatchNotRunning" when it is not running


def _account(url: str | None, account: str) -> Any:
    from .adapter import BatchAccount

    return BatchAccount(_service_url(url, account))


def _spec(path: str) -> Any:
    from ..config import load_pool

    return load_pool(path).pool_specification


_url_option = click.option(
    "--batch-service-url",
    "url",
    metavar="URL",
    help="https://<account>.<region>.batch.azure.com or http://127.0.0.1:<port>/accounts/<account> "
    "(default: the running localbatch)",
)
_account_option = click.option(
    "--account",
    default=DEFAULT_LOCAL_ACCOUNT,
    show_default=True,
    help="localbatch account name (used without --batch-service-url)",
)
_config_option = click.option(
    "--pool-config", "pool_config", required=True, type=click.Path(dir_okay=False), help="pool.yaml"
)


@click.group("pool", cls=_Group)
def pool_group() -> None:
    """Create, list, resize and delete Batch pools (localbatch or Azure Batch)."""


@pool_group.command("create")
@_config_option
@_url_option
@_account_option
@click.option("--exists-ok", is_flag=True, help="an existing pool with this id is not an error")
def pool_create(pool_config: str, url: str | None, account: str, exists_ok: bool) -> None:
    """Create the pool described by pool.yaml."""
    spec = _spec(pool_config)
    with _account(url, account) as acct:
        created = acct.create_pool(spec, exists_ok=exists_ok)
        click.echo(f"pool {spec.id} {'created' if created else 'exists'} in {acct.service_url}")


def snapshot_dict(snap: Any) -> dict[str, Any]:
    """A pool snapshot as JSON-ready data (what ``pool list --raw`` prints)."""
    f = snap.facts
    size = f.size
    return {
        "id": f.pool_id,
        "account": f.account,
        "service_url": f.service_url,
        "location": f.location,
        "vm_size": f.vm_size,
        "size": None if size is None else {
            "cores": size.cores, "memory_mib": size.memory_mib, "gpus": size.gpus, "rdma": size.rdma,
        },
        "state": snap.state,
        "allocation_state": snap.allocation_state,
        "task_slots_per_node": f.task_slots_per_node,
        "autoscale": f.autoscale,
        "inter_node_communication": f.inter_node_communication,
        "native": f.native,
        "windows": f.windows,
        "custom_image_id": f.custom_image_id,
        "subnet_id": f.subnet_id,
        "registry_logins": sorted(f.registry_logins),
        "target_dedicated": f.target_dedicated,
        "target_low_priority": f.target_low_priority,
        "dedicated": {"idle": snap.dedicated.idle, "running": snap.dedicated.running, "other": snap.dedicated.other},
        "low_priority": {
            "idle": snap.low_priority.idle, "running": snap.low_priority.running, "other": snap.low_priority.other,
        },
        "active_tasks": snap.active_tasks,
    }


def _nodes(n: dict[str, int], target: int) -> str:
    return f"{n['idle']}/{n['running']}/{n['other']} of {target}"


@pool_group.command("list")
@_url_option
@_account_option
@click.option("--raw", is_flag=True, help="print JSON")
def pool_list(url: str | None, account: str, raw: bool) -> None:
    """List the pools of an account with their nodes (idle/running/other of target)."""
    with _account(url, account) as acct:
        rows = [snapshot_dict(s) for s in acct.list_pools(active_tasks=True)]
    if raw:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no pools")
        return
    header = ("POOL", "VM SIZE", "LOCATION", "STATE", "DEDICATED", "LOW PRIORITY", "SLOTS", "AUTOSCALE", "ACTIVE TASKS")
    table = [header] + [
        (
            r["id"], r["vm_size"], r["location"], f"{r['state']}/{r['allocation_state']}",
            _nodes(r["dedicated"], r["target_dedicated"]), _nodes(r["low_priority"], r["target_low_priority"]),
            str(r["task_slots_per_node"]), "yes" if r["autoscale"] else "no", str(r["active_tasks"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@pool_group.command("delete")
@_config_option
@_url_option
@_account_option
def pool_delete(pool_config: str, url: str | None, account: str) -> None:
    """Delete the pool named in pool.yaml (already gone is not an error)."""
    spec = _spec(pool_config)
    with _account(url, account) as acct:
        started = acct.delete_pool(spec.id)
    click.echo(f"pool {spec.id} {'deleting' if started else 'already gone'}")


@pool_group.command("resize")
@_config_option
@_url_option
@_account_option
@click.option("--dedicated", type=click.IntRange(0), help="target dedicated nodes (default: vm_count in pool.yaml)")
@click.option("--low-priority", type=click.IntRange(0), help="target low-priority nodes (default: vm_count in pool.yaml)")
def pool_resize(pool_config: str, url: str | None, account: str, dedicated: int | None, low_priority: int | None) -> None:
    """Resize the pool named in pool.yaml to its vm_count (or the given targets)."""
    spec = _spec(pool_config)
    dedicated = spec.vm_count.dedicated if dedicated is None else dedicated
    low_priority = spec.vm_count.low_priority if low_priority is None else low_priority
    with _account(url, account) as acct:
        acct.resize_pool(spec.id, dedicated=dedicated, low_priority=low_priority)
    click.echo(f"pool {spec.id} resizing to {dedicated} dedicated, {low_priority} low-priority")
