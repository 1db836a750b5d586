"""``fed proxy create | destroy``: plan, show (``--what-if``), deploy and tear down.

Both work from the same :class:`~.plan.DeployPlan`, so what ``--what-if`` lists is what
the real run creates or deletes. Federation data (the store's tables, queues and blobs) is
kept on destroy unless ``purge``: then every federation's metadata goes as with
``fed destroy``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .._version import __version__
from ..config import load_federation
from ..config.workspace import AzureStoreSettings, Workspace
from ..errors import ConfigError, DeployError
from ..store import Store
from .azure import AzureApi, connect, credentials_configured
from .plan import DeployPlan, make_plan
from .template import build_parameters, build_template, redacted_parameters

__all__ = ["DeployReport", "bootstrap_source", "create", "destroy"]

AzureFactory = Callable[[str, AzureStoreSettings], AzureApi]
_WHAT_IF_WHEEL = f"<wheel of batchfed-lab {__version__}, uploaded at create>"


@dataclass
class DeployReport:
    """What create or destroy did (or, with ``what_if``, would do). ``document`` is the
    JSON-ready whole (template, redacted parameters, role assignments …); ``lines`` the
    human summary."""

    what_if: bool
    document: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def bootstrap_source() -> bytes:
    """``bootstrap.py`` of this package: the script each container runs first."""
    path = resources.files(__package__).joinpath("bootstrap.py")
    if not path.is_file():
        raise DeployError("batchfed_lab/deploy/bootstrap.py is missing from this installation")
    return path.read_bytes()


def _default_azure(subscription: str, settings: AzureStoreSettings) -> AzureApi:
    from ..store.azure.connection import CONNECTION_STRING_ENV, clients_from_connection_string, clients_from_credential

    if settings.credential == "connection_string":
        import os

        conn = os.environ.get(CONNECTION_STRING_ENV)
        if not conn:
            raise DeployError(f"{CONNECTION_STRING_ENV} is not set (store.azure.credential: connection_string)")
        blobs = clients_from_connection_string(conn, retries=3)[2]
    else:
        blobs = clients_from_credential(settings, retries=3)[2]
    return connect(subscription, blobs)


def _inputs(workspace: Workspace, store: Store, config: Any, standby: int, *, strict: bool = True) -> tuple[DeployPlan, bytes]:
    if config is None:
        raise ConfigError("fed proxy create/destroy: give --config federation.yaml (location, resource_group …)")
    if workspace.settings.store.backend != "azure":
        raise ConfigError(
            f"{workspace.path / 'settings.yaml'}: store.backend = {workspace.settings.store.backend}: "
            "a proxy on Azure needs the azure store (docs/azure.md)"
        )
    path = Path(config)
    fed = load_federation(path)
    urls = [p.batch_service_url for p in store.list_pools()]
    plan = make_plan(
        fed,
        workspace.settings.store.azure,
        urls,
        standby=standby,
        source=path.name,
        data_accounts=workspace.settings.storage_accounts,
        settings_source=str(workspace.settings_file),
        strict=strict,
    )
    return plan, path.read_bytes()


def _document(plan: DeployPlan, template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "deployment": {
            "name": plan.deployment_name,
            "subscription": plan.subscription,
            "resource_group": plan.resource_group,
            "location": plan.location,
        },
        "container_groups": [
            {
                "name": g.name,
                "id": g.resource_id,
                "role": "standby" if g.standby else "leader",
                "cpu": plan.cpu,
                "memory_gb": plan.memory_gb,
            }
            for g in plan.groups
        ],
        "role_assignments": [a.as_dict() for a in plan.assignments()],
        "data_accounts": [d.as_dict() for d in plan.data_accounts],
        "template": template,
        "parameters": parameters,
    }


def create(
    workspace: Workspace,
    store: Store,
    config: Any,
    *,
    standby: int = 0,
    what_if: bool = False,
    azure: AzureFactory | None = None,
) -> DeployReport:
    """Deploy the leader and ``standby`` standbys (idempotent: a second run updates them and
    adds roles on Batch accounts added since)."""
    plan, fed_yaml = _inputs(workspace, store, config, standby)
    template = build_template(plan)
    boot = bootstrap_source()
    factory = azure or _default_azure
    if what_if:
        params = build_parameters(_WHAT_IF_WHEEL, "https://what-if.invalid/wheel", boot, fed_yaml)
        doc = _document(plan, template, redacted_parameters(params, boot, fed_yaml))
        report = DeployReport(True, doc)
        if azure is not None or credentials_configured():
            try:
                doc["arm_what_if"] = factory(plan.subscription, plan.store).what_if(
                    plan.resource_group, plan.deployment_name, template, params
                )
            except DeployError as exc:
                report.warnings.append(f"ARM what-if did not run: {exc}")
        else:
            report.warnings.append("no Azure login found: ARM what-if skipped (az login, or BATCHFED_ARM_WHAT_IF=1)")
        return report
    api = factory(plan.subscription, plan.store)
    created_rg = api.ensure_resource_group(plan.resource_group, plan.location)
    blob, url = api.upload_artifacts(plan.artifacts_container, plan.sas_minutes)
    params = build_parameters(blob, url, boot, fed_yaml)
    outputs = api.deploy(plan.resource_group, plan.deployment_name, template, params)
    doc = _document(plan, template, redacted_parameters(params, boot, fed_yaml))
    doc["outputs"] = outputs
    lines = [f"resource group {plan.resource_group} created in {plan.location}"] if created_rg else []
    lines += [f"wheel uploaded: {plan.artifacts_container}/{blob}"]
    lines += [f"container group {g.name} ({'standby' if g.standby else 'leader'}) deployed" for g in plan.groups]
    lines += [f"role {a.role} on {a.target.resource_id} for {a.group}" for a in plan.assignments()]
    lines.append("roles can take a few minutes to apply; watch with `fed proxy status`")
    return DeployReport(False, doc, lines)


_INDEX_RE = re.compile(r"-aci(\d{3})$")


def _discovered(plan: DeployPlan, api: AzureApi, standby: int) -> int:
    """Standbys to remove: as asked, or more if more groups of the prefix exist."""
    found = api.find_groups(plan.resource_group, plan.prefix)
    indexes = [int(m.group(1)) for n in found if (m := _INDEX_RE.search(n)) and n.startswith(plan.prefix + "-")]
    return max([standby, *indexes])


def destroy(
    workspace: Workspace,
    store: Store,
    config: Any,
    *,
    standby: int = 0,
    what_if: bool = False,
    purge: bool = False,
    azure: AzureFactory | None = None,
) -> DeployReport:
    """Remove the role assignments, the container groups, the deployment record and the
    uploaded wheel; with ``purge`` also every federation's metadata."""
    # an account create refused never got a role: it does not hold destroy back
    plan, _ = _inputs(workspace, store, config, standby, strict=False)
    api: AzureApi | None = None
    if not what_if or azure is not None or credentials_configured():
        api = (azure or _default_azure)(plan.subscription, plan.store)
        more = _discovered(plan, api, standby)
        if more > standby:
            plan, _ = _inputs(workspace, store, config, more, strict=False)
    feds = [f.id for f in store.list_federations()] if purge else []
    doc = {
        "deployment": {"name": plan.deployment_name, "resource_group": plan.resource_group},
        "container_groups": [g.resource_id for g in plan.groups],
        "role_assignments": [a.as_dict() for a in plan.assignments()],
        "artifacts_container": plan.artifacts_container,
        "federations_purged": feds,
        "kept": [] if purge else ["federation metadata, queues and logs in the store (use --purge to remove them)"],
    }
    if what_if:
        lines = [f"would delete role assignment {a.role} on {a.target.resource_id} ({a.resource_id})" for a in plan.assignments()]
        lines += [f"would delete container group {g.resource_id}" for g in plan.groups]
        lines += [f"would delete deployment record {plan.deployment_name} and container {plan.artifacts_container}"]
        lines += [f"would destroy federation {f}" for f in feds] or ["federation data is kept (--purge removes it)"]
        return DeployReport(True, doc, lines)
    assert api is not None
    lines = []
    for a in plan.assignments():
        gone = api.delete(a.resource_id)
        lines.append(f"role assignment {a.role} on {a.target.name} for {a.group}: {'deleted' if gone else 'not there'}")
    for g in plan.groups:
        lines.append(f"container group {g.name}: {'deleted' if api.delete(g.resource_id) else 'not there'}")
    api.delete_deployment(plan.resource_group, plan.deployment_name)
    api.delete_container(plan.artifacts_container)
    for f in feds:
        store.destroy_federation(f)
        lines.append(f"federation {f} destroyed")
    if not purge:
        lines.append("federation data kept (--purge removes it)")
    return DeployReport(False, doc, lines)
