"""Every Azure call a deployment makes, behind one small interface.

:class:`AzureApi` is what :mod:`.operations` uses; :class:`ArmAzure` implements it with
``azure-mgmt-resource`` (resource groups, generic resources by id) and
``azure-mgmt-resource-deployments`` (deployments and ARM what-if), authenticated with
``DefaultAzureCredential``; tests pass a fake. SDK errors become :class:`DeployError`
with one line, chained with ``from``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import DeployError

if TYPE_CHECKING:
    pass

__all__ = ["API_VERSIONS", "ArmAzure", "AzureApi", "connect", "credentials_configured"]

#: the API version to address each resource type by id with
API_VERSIONS = {
    "Microsoft.ContainerInstance/containerGroups": "2023-05-01",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
}
FORCE_ENV = "BATCHFED_ARM_WHAT_IF"


class AzureApi(Protocol):
    def ensure_resource_group(self, name: str, location: str) -> bool:
        """Create the group if missing; True if it was created."""

    def what_if(
        self, resource_group: str, deployment: str, template: dict[str, Any], parameters: dict[str, Any]
    ) -> list[dict[str, str]]:
        """ARM what-if: one ``{"change": …, "resource": …}`` per resource."""

    def deploy(
        self, resource_group: str, deployment: str, template: dict[str, Any], parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """Deploy (incremental) and wait; the deployment's outputs."""

    def find_groups(self, resource_group: str, prefix: str) -> list[str]:
        """Names of the container groups tagged ``batchfed-deployment=<prefix>``."""

    def delete(self, resource_id: str) -> bool:
        """Delete a resource by id and wait; False if it was not there."""

    def delete_deployment(self, resource_group: str, deployment: str) -> None:
        """Forget a deployment record (its resources stay)."""

    def upload_artifacts(self, container: str, sas_minutes: int) -> tuple[str, str]:
        """Build this version's wheel, upload it to ``container`` of the store's account;
        (blob name, read-only SAS URL)."""

    def delete_container(self, container: str) -> bool:
        """Delete a blob container of the store's account; False if it was not there."""


def credentials_configured() -> bool:
    """Whether an Azure login is at hand without asking the network: environment
    credentials, a managed-identity endpoint, or the Azure CLI. ``BATCHFED_ARM_WHAT_IF=1|0``
    decides outright (e.g. on a VM whose identity only the metadata service knows)."""
    forced = os.environ.get(FORCE_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    env = os.environ
    if env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID"):
        return True
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        return True
    return shutil.which("az") is not None


def connect(subscription: str, blob_service: Any) -> AzureApi:
    """The real API for ``subscription``; ``blob_service`` is the store account's
    ``BlobServiceClient`` (the wheel goes there)."""
    return ArmAzure(subscription, blob_service)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        yield
    except ClientAuthenticationError as exc:
        raise DeployError(f"{what}: not signed in to Azure (az login, a managed identity or AZURE_* variables)") from exc
    except HttpResponseError as exc:
        code = getattr(getattr(exc, "error", None), "code", None) or exc.status_code
        message = str(getattr(getattr(exc, "error", None), "message", "") or exc.reason or "").splitlines()[0:1]
        raise DeployError(f"{what}: {code}: {message[0] if message else 'request failed'}") from exc
    except AzureError as exc:
        raise DeployError(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc


class ArmAzure:
    """:class:`AzureApi` over the Azure SDK for resource management."""

    def __init__(self, subscription: str, blob_service: Any) -> None:
        from azure.identity import DefaultAzureCredential
        from azure.mgmt.resource.deployments import DeploymentsMgmtClient
        from azure.mgmt.resource.resources import ResourceManagementClient

        cred = DefaultAzureCredential()
        self._resources = ResourceManagementClient(cred, subscription)
        self._deployments = DeploymentsMgmtClient(cred, subscription)
        self._blobs = blob_service

    def ensure_resource_group(self, name: str, location: str) -> bool:
        with _translated(f"resource group {name}"):
            if self._resources.resource_groups.check_existence(name):
                return False
            self._resources.resource_groups.create_or_update(name, {"location": location})
            return True

    def _body(self, template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        return {"properties": {"mode": "Incremental", "template": template, "parameters": parameters}}

    def what_if(
        self, resource_group: str, deployment: str, template: dict[str, Any], parameters: dict[str, Any]
    ) -> list[dict[str, str]]:
        with _translated(f"ARM what-if of {deployment}"):
            from azure.mgmt.resource.deployments.models import DeploymentWhatIf

            body = DeploymentWhatIf(self._body(template, parameters))
            result = self._deployments.deployments.begin_what_if(resource_group, deployment, body).result()
        changes = (result.properties.changes if result.properties else None) or []
        return [{"change": str(c.change_type), "resource": str(c.resource_id)} for c in changes]

    def deploy(
        self, resource_group: str, deployment: str, template: dict[str, Any], parameters: dict[str, Any]
    ) -> dict[str, Any]:
        with _translated(f"deployment {deployment}"):
            from azure.mgmt.resource.deployments.models import Deployment

            body = Deployment(self._body(template, parameters))
            poller = self._deployments.deployments.begin_create_or_update(resource_group, deployment, body)
            done = poller.result()
        outputs = (done.properties.outputs if done.properties else None) or {}
        return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in dict(outputs).items()}

    def find_groups(self, resource_group: str, prefix: str) -> list[str]:
        query = "tagName eq 'batchfed-deployment' and tagValue eq '" + prefix.replace("'", "''") + "'"
        with _translated(f"container groups of {prefix}"):
            found = self._resources.resources.list_by_resource_group(resource_group, filter=query)
            return sorted(str(r.name) for r in found if str(r.type).lower() == "microsoft.containerinstance/containergroups")

    def delete(self, resource_id: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        kind = "/".join(resource_id.split("/providers/")[-1].split("/")[:2])
        try:
            with _translated(f"delete {resource_id}"):
                try:
                    self._resources.resources.begin_delete_by_id(resource_id, api_version=API_VERSIONS[kind]).result()
                except ResourceNotFoundError:
                    return False
        except DeployError as exc:
            if "NotFound" in str(exc):  # a group's scope gone already: nothing left to delete
                return False
            raise
        return True

    def delete_deployment(self, resource_group: str, deployment: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"deployment record {deployment}"):
            try:
                self._deployments.deployments.begin_delete(resource_group, deployment).result()
            except ResourceNotFoundError:
                pass

    def upload_artifacts(self, container: str, sas_minutes: int) -> tuple[str, str]:
        import tempfile
        from pathlib import Path

        from .wheel import build_wheel, read_sas, upload_wheel  # only when something is really deployed

        with tempfile.TemporaryDirectory(prefix="batchfed-wheel-") as tmp, _translated(f"upload to {container}"):
            path = build_wheel(Path(tmp))
            client = self._blobs.get_container_client(container)
            blob = upload_wheel(client, path)
            return blob, read_sas(client.get_blob_client(blob), sas_minutes)

    def delete_container(self, container: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        with _translated(f"delete container {container}"):
            try:
                self._blobs.delete_container(container)
            except ResourceNotFoundError:
                return False
        return True
