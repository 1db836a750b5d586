"""The ARM template of a proxy deployment, from the readable pieces in ``arm/``.

``arm/template.json`` is the frame (parameters: the wheel's SAS URL, the bootstrap script
and federation.yaml, all secure); ``arm/container_group.json`` is one proxy's container
group; ``arm/role_assignments.json`` a nested deployment into the resource group of one
storage or Batch account holding that proxy's ``arm/role_assignment.json`` entries there.
``${name}`` marks a value filled in here: a whole-string mark takes the value's type.
Same plan → byte-identical JSON (:func:`dumps`).
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from .plan import DeployPlan, Group, Target

__all__ = ["REDACTED", "build_parameters", "build_template", "dumps", "environment", "redacted_parameters"]

_MARK = re.compile(r"\$\{(\w+)\}")
REDACTED = "<secure: issued at create, never shown>"
BOOTSTRAP_PATH = "/mnt/batchfed/bootstrap.py"
FEDERATION_YAML_FILE = "/mnt/batchfed/federation.yaml"


@cache
def _piece(name: str) -> str:
    return resources.files(__package__).joinpath("arm").joinpath(name).read_text(encoding="utf-8")


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, str):
        whole = _MARK.fullmatch(node)
        if whole:
            return values[whole.group(1)]
        return _MARK.sub(lambda m: str(values[m.group(1)]), node)
    return node


def _load(piece: str, **values: Any) -> Any:
    return _fill(json.loads(_piece(piece)), values)


def environment(plan: DeployPlan, group: Group) -> list[dict[str, str]]:
    """The container's environment: where the store is and what to run. Never a secret in
    the clear: the wheel's SAS URL is a ``secureValue``."""
    s = plan.store
    endpoints = {
        svc: getattr(s, f"{svc}_endpoint") or f"https://{s.account_name}.{svc}.core.windows.net"
        for svc in ("table", "queue", "blob")
    }
    plain = {
        "BATCHFED_PROXY_ID": group.name,
        "BATCHFED_STORE_ACCOUNT": s.account_name or "",
        "BATCHFED_STORE_TABLE_ENDPOINT": endpoints["table"],
        "BATCHFED_STORE_QUEUE_ENDPOINT": endpoints["queue"],
        "BATCHFED_STORE_BLOB_ENDPOINT": endpoints["blob"],
        "BATCHFED_STORE_PREFIX": s.prefix,
        # the wheel's blob name is a parameter: it names the version being deployed
        # read with the identity once the SAS of BATCHFED_WHEEL_URL has expired (a restart)
        "BATCHFED_WHEEL_BLOB": f"[concat('{s.account_name}/{plan.artifacts_container}/', parameters('wheelBlob'))]",
        "BATCHFED_FEDERATION_YAML_FILE": FEDERATION_YAML_FILE,
        # where jobs' data is (names, URLs, regions: no secret); the identity signs in there
        "BATCHFED_STORAGE_ACCOUNTS": json.dumps(
            {a.name: a.as_setting() for a in plan.data_accounts}, sort_keys=True, separators=(",", ":")
        ),
        "PYTHONUNBUFFERED": "1",
    }
    env = [{"name": k, "value": v} for k, v in plain.items()]
    env.append({"name": "BATCHFED_WHEEL_URL", "secureValue": "[parameters('wheelUrl')]"})
    return env


def _roles(plan: DeployPlan, group: Group, target: Target, index: int) -> dict[str, Any]:
    assignments = [
        _load(
            "role_assignment.json",
            name=a.name,
            scope=target.relative_scope,
            role_definition_id=a.role_definition_id,
            description=f"batchfed proxy {group.name}: {a.role}",
        )
        for a in plan.assignments(group)
        if a.target == target
    ]
    return _load(
        "role_assignments.json",
        name=f"{group.name}-roles-{index}",
        subscription=target.subscription,
        resource_group=target.resource_group,
        group_id=group.resource_id,
        assignments=assignments,
    )


def build_template(plan: DeployPlan) -> dict[str, Any]:
    """The whole template: every container group, then each group's role assignments (a
    nested deployment per target resource group, after its group)."""
    template = _load("template.json")
    resources_: list[Any] = []
    for g in plan.groups:
        resources_.append(
            _load(
                "container_group.json",
                group=g.name,
                location=plan.location,
                prefix=plan.prefix,
                image=plan.image,
                environment=environment(plan, g),
                cpu=plan.cpu,
                memory_gb=plan.memory_gb,
            )
        )
    for g in plan.groups:
        resources_ += [_roles(plan, g, t, i) for i, t in enumerate(plan.targets)]
    template["resources"] = resources_
    template["outputs"] = {
        g.name.replace("-", "_") + "_principalId": {
            "type": "string",
            "value": f"[reference('{g.resource_id}', '2023-05-01', 'full').identity.principalId]",
        }
        for g in plan.groups
    }
    return template


def build_parameters(wheel_blob: str, wheel_url: str, bootstrap: bytes, federation_yaml: bytes) -> dict[str, Any]:
    """The deployment's parameter values (``wheel_url`` carries a SAS: never print these)."""
    return {
        "wheelBlob": {"value": wheel_blob},
        "wheelUrl": {"value": wheel_url},
        "bootstrapScript": {"value": base64.b64encode(bootstrap).decode("ascii")},
        "federationYaml": {"value": base64.b64encode(federation_yaml).decode("ascii")},
    }


def redacted_parameters(params: dict[str, Any], bootstrap: bytes, federation_yaml: bytes) -> dict[str, Any]:
    """What ``--what-if`` shows of the parameters: the SAS hidden, the files summarised."""
    import hashlib

    def summary(what: str, data: bytes) -> str:
        return f"<base64 of {what}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}>"

    return {
        "wheelBlob": params["wheelBlob"],
        "wheelUrl": {"value": REDACTED},
        "bootstrapScript": {"value": summary("batchfed_lab/deploy/bootstrap.py", bootstrap)},
        "federationYaml": {"value": summary("federation.yaml", federation_yaml)},
    }


def dumps(document: Any) -> str:
    """Stable JSON text (key order as built, two-space indent, newline at the end)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
