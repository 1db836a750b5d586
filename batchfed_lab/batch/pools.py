"""Pools: service objects → scheduler snapshots, pool.yaml → pool create options, and the
pool operations of an account (:class:`PoolOperations`: create, delete, resize, images).

The translation functions make no calls (:mod:`.snapshots` fetches, they read). They read
the service's JSON by its REST names (``vmSize``, ``virtualMachineConfiguration``…), so they
take the answer of a raw request as it is, and an SDK model too (models are mappings of the
same names). Building models for a listing of many pools cost ten times the request itself.
Metadata written at pool creation and read back here:

| key                          | value                                  | why                                  |
|------------------------------|----------------------------------------|--------------------------------------|
| ``batchfed_location``        | region label, e.g. ``westeurope``      | where a local pool "is" (SPEC §3)    |
| ``batchfed_native``          | ``1`` / ``0``                          | native-container flag (SPEC §4.1)    |
| ``batchfed_os``              | ``windows`` / ``linux``                | the OS when pool.yaml says ``os:``   |
| ``batchfed_vm_size_override``| JSON of ``vm_size_override``           | size facts for sizes the catalog lacks |

Shipyard's ``BATCH_SHIPYARD_NATIVE_CONTAINER_POOL`` = ``1`` is honoured as native too.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from azure.batch import models as bm
from azure.core.exceptions import AzureError, HttpResponseError

from ..config.pool import PoolSpecification, RegistryLogin
from ..scheduler import catalog
from ..scheduler.types import NodeCounts, PoolFacts, PoolSnapshot, VmSize
from ._util import as_timedelta, enum_text
from .connection import BatchConnection
from .errors import batch_call, error_code, translate

log = logging.getLogger(__name__)

__all__ = [
    "LOCAL_DEFAULT_LOCATION",
    "META_IDENTITY",
    "META_LOCATION",
    "META_NATIVE",
    "META_OS",
    "META_SUBNET",
    "META_VM_OVERRIDE",
    "POOL_SELECT",
    "REGISTRY_PASSWORD_ENV_PREFIX",
    "PoolOperations",
    "node_counts",
    "pool_create_options",
    "pool_facts",
    "registry_logins",
]

META_LOCATION = "batchfed_location"
META_NATIVE = "batchfed_native"
META_OS = "batchfed_os"
META_VM_OVERRIDE = "batchfed_vm_size_override"
META_IDENTITY = "batchfed_identity_reference"  # pool.yaml identity_reference: tasks reach storage with it
META_SUBNET = "batchfed_subnet"  # a local pool's virtual network: a label, as its location is
SHIPYARD_NATIVE = "BATCH_SHIPYARD_NATIVE_CONTAINER_POOL"
LOCAL_DEFAULT_LOCATION = "local"  # a local pool created without a location label
REGISTRY_PASSWORD_ENV_PREFIX = "BATCHFED_REGISTRY_PASSWORD_"
_DELETED_POOL = frozenset({"PoolNotFound", "PoolBeingDeleted"})  # already gone: not an error (SPEC §5)
_NOT_OFFERED = frozenset({400, 404, 405, 501})  # a service without an optional API (localbatch)

# Everything a snapshot reads; $select keeps the list payload small on Azure.
POOL_SELECT = [
    "id",
    "vmSize",
    "state",
    "allocationState",
    "taskSlotsPerNode",
    "enableAutoScale",
    "enableInterNodeCommunication",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "virtualMachineConfiguration",
    "networkConfiguration",
    "metadata",
]


Doc = Mapping[str, Any]  # a REST JSON object (or an SDK model: a mapping of REST names)


def _metadata(pool: Doc) -> dict[str, str]:
    return {m.get("name"): m.get("value") for m in pool.get("metadata") or () if m.get("name")}


def registry_logins(pool: Doc) -> frozenset[str]:
    """Registry logins a pool holds: server lower-cased, or ``dockerhub-<user>`` for Docker Hub."""
    vmc = pool.get("virtualMachineConfiguration") or {}
    ctr = vmc.get("containerConfiguration") or {}
    out = set()
    for reg in ctr.get("containerRegistries") or ():
        login = RegistryLogin.model_construct(server=reg.get("registryServer"), username=reg.get("username") or "").login
        if login != "dockerhub-":  # anonymous Docker Hub is no private login
            out.add(login)
    return frozenset(out)


def _size(vm_size: str, override: Mapping[str, Any] | str | None) -> VmSize | None:
    if isinstance(override, str):
        try:
            override = json.loads(override)
        except ValueError:
            override = None
    try:
        return catalog.lookup(vm_size, override if isinstance(override, Mapping) else None)
    except ValueError:
        return None  # a malformed override makes the size unknown: a verdict, never a crash


def pool_facts(
    pool: Doc,
    *,
    service_url: str,
    account: str,
    region: str | None,
    override: Mapping[str, Any] | None = None,
) -> PoolFacts:
    """What a pool *is*. ``region`` comes from an Azure URL; local pools carry a metadata label."""
    meta = _metadata(pool)
    vmc = pool.get("virtualMachineConfiguration") or {}
    image = vmc.get("imageReference") or {}
    agent = vmc.get("nodeAgentSKUId") or ""
    net = pool.get("networkConfiguration") or {}
    location = region or meta.get(META_LOCATION) or LOCAL_DEFAULT_LOCATION
    vm_size = pool.get("vmSize") or ""
    return PoolFacts(
        pool_id=pool.get("id") or "",
        service_url=service_url,
        account=account,
        location=location.lower(),
        vm_size=vm_size,
        size=_size(vm_size, override if override is not None else meta.get(META_VM_OVERRIDE)),
        task_slots_per_node=pool.get("taskSlotsPerNode") or 1,
        autoscale=bool(pool.get("enableAutoScale")),
        inter_node_communication=bool(pool.get("enableInterNodeCommunication")),
        native=meta.get(META_NATIVE) == "1" or meta.get(SHIPYARD_NATIVE) == "1",
        windows=agent.lower().startswith("batch.node.windows") or meta.get(META_OS) == "windows",
        custom_image_id=image.get("virtualMachineImageId") or None,
        subnet_id=net.get("subnetId") or meta.get(META_SUBNET) or None,
        registry_logins=registry_logins(pool),
        target_dedicated=pool.get("targetDedicatedNodes") or 0,
        target_low_priority=pool.get("targetLowPriorityNodes") or 0,
        identity=meta.get(META_IDENTITY) or None,
    )


def _counts(c: Doc | None) -> NodeCounts:
    if c is None:
        return NodeCounts()
    idle, running = c.get("idle") or 0, c.get("running") or 0
    total = c.get("total")
    if total is None:  # sum every state given when the service left total out
        total = sum(v for k, v in c.items() if isinstance(v, int) and not isinstance(v, bool) and k != "total")
    return NodeCounts(idle=idle, running=running, other=max(0, total - idle - running))


def node_counts(nc: Doc | None) -> tuple[NodeCounts, NodeCounts]:
    """(dedicated, low-priority) node counts of one pool's entry in the ``nodecounts`` listing."""
    if nc is None:
        return NodeCounts(), NodeCounts()
    return _counts(nc.get("dedicated")), _counts(nc.get("lowPriority"))


def snapshot(
    pool: Doc,
    counts: Doc | None,
    active_tasks: int | None,
    *,
    service_url: str,
    account: str,
    region: str | None,
    override: Mapping[str, Any] | None = None,
) -> PoolSnapshot:
    dedicated, low = node_counts(counts)
    return PoolSnapshot(
        pool_facts(pool, service_url=service_url, account=account, region=region, override=override),
        dedicated=dedicated,
        low_priority=low,
        active_tasks=active_tasks,
        allocation_state=enum_text(pool.get("allocationState"), "steady"),
        state=enum_text(pool.get("state"), "active"),
    )


# --- pool.yaml → BatchPoolCreateOptions --------------------------------------------------------


def _registry_password(login: str) -> str | None:
    """Registry passwords come only from the environment: ``BATCHFED_REGISTRY_PASSWORD_<LOGIN>``."""
    return os.environ.get(REGISTRY_PASSWORD_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", login.upper())) or None


def pool_create_options(spec: PoolSpecification) -> bm.BatchPoolCreateOptions:
    """The create request for a pool.yaml ``pool_specification``."""
    vmc_spec = spec.vm_configuration
    if vmc_spec.custom_image is not None:
        image = bm.BatchVmImageReference(virtual_machine_image_id=vmc_spec.custom_image.arm_image_id)
    else:
        p = vmc_spec.platform_image
        assert p is not None  # the config model guarantees exactly one image
        image = bm.BatchVmImageReference(publisher=p.publisher, offer=p.offer, sku=p.sku, version=p.version)
    container = None
    if spec.native or spec.container_registries:
        container = bm.BatchContainerConfiguration(
            type=bm.ContainerType.DOCKER_COMPATIBLE,
            container_registries=[
                bm.ContainerRegistryReference(registry_server=r.server, username=r.username, password=_registry_password(r.login))
                for r in spec.container_registries
            ]
            or None,
        )
    metadata = [bm.BatchMetadataItem(name=META_NATIVE, value="1" if spec.native else "0")]
    if spec.location:
        metadata.append(bm.BatchMetadataItem(name=META_LOCATION, value=spec.location))
    if spec.os:
        metadata.append(bm.BatchMetadataItem(name=META_OS, value=spec.os))
    if spec.identity_reference:
        metadata.append(bm.BatchMetadataItem(name=META_IDENTITY, value=spec.identity_reference))
    if spec.vm_size_override is not None:
        override = spec.vm_size_override.model_dump(exclude_none=True)
        metadata.append(bm.BatchMetadataItem(name=META_VM_OVERRIDE, value=json.dumps(override, sort_keys=True)))
    auto = spec.autoscale
    return bm.BatchPoolCreateOptions(
        id=spec.id,
        vm_size=spec.vm_size,
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=image, node_agent_sku_id=vmc_spec.node_agent, container_configuration=container
        ),
        task_slots_per_node=spec.task_slots_per_node,
        enable_inter_node_communication=spec.inter_node_communication_enabled,
        network_configuration=(
            bm.NetworkConfiguration(subnet_id=spec.virtual_network.arm_subnet_id) if spec.virtual_network else None
        ),
        # Batch refuses fixed targets together with autoscale, and vice versa
        enable_auto_scale=auto.enabled,
        auto_scale_formula=auto.formula if auto.enabled else None,
        auto_scale_evaluation_interval=auto.evaluation_interval if auto.enabled else None,
        target_dedicated_nodes=None if auto.enabled else spec.vm_count.dedicated,
        target_low_priority_nodes=None if auto.enabled else spec.vm_count.low_priority,
        metadata=metadata,
    )


# --- calls --------------------------------------------------------------------------------------


class PoolOperations(BatchConnection):
    """Create, delete and resize an account's pools, and list the images it supports."""

    def pool_exists(self, pool_id: str) -> bool:
        # not the SDK's pool_exists: in 15.1.0 the client's exception policy raises on the 404
        # before pool_exists can turn it into False
        try:
            self._client.get_pool(pool_id, select=["id"])
            return True
        except HttpResponseError as exc:
            if exc.status_code == 404:
                return False
            raise translate(exc, self._what(f"get pool '{pool_id}'")) from exc
        except AzureError as exc:
            raise translate(exc, self._what(f"get pool '{pool_id}'")) from exc

    def create_pool(self, spec: PoolSpecification, *, exists_ok: bool = False) -> bool:
        """Create a pool from pool.yaml; False if it exists and ``exists_ok``."""
        options = pool_create_options(spec)
        if self.is_local and options.network_configuration is not None:
            # localbatch refuses what it cannot honour (its nodes are this machine, in no VNet):
            # the subnet travels as a label, so placement by virtual network still works locally
            log.warning(
                "pool '%s': pool.yaml virtual_network is only a label on localbatch (metadata %s), not a placement",
                spec.id,
                META_SUBNET,
            )
            subnet = options.network_configuration.subnet_id or ""
            options.network_configuration = None
            options.metadata = [*(options.metadata or []), bm.BatchMetadataItem(name=META_SUBNET, value=subnet)]
        try:
            self._client.create_pool(options)
            return True
        except HttpResponseError as exc:
            if exists_ok and error_code(exc) == "PoolExists":
                return False
            raise translate(exc, self._what(f"create pool '{spec.id}'")) from exc
        except AzureError as exc:
            raise translate(exc, self._what(f"create pool '{spec.id}'")) from exc

    def delete_pool(self, pool_id: str) -> bool:
        """Start deleting a pool; False if it is already gone or being deleted."""
        return self._idempotent(f"delete pool '{pool_id}'", _DELETED_POOL, "delete_pool", pool_id)

    def resize_pool(
        self,
        pool_id: str,
        *,
        dedicated: int | None = None,
        low_priority: int | None = None,
        resize_timeout: timedelta | float | None = None,
    ) -> None:
        """Start resizing a fixed-size pool (the service refuses it for autoscale pools)."""
        options = bm.BatchPoolResizeOptions(
            target_dedicated_nodes=dedicated,
            target_low_priority_nodes=low_priority,
            resize_timeout=as_timedelta(resize_timeout),
        )
        with batch_call(self._what(f"resize pool '{pool_id}'")):
            self._nowait("resize_pool", pool_id, options)

    def supported_images(self) -> list[dict[str, Any]] | None:
        """Images/node agents the service supports, or None where the service does not offer the
        list (localbatch). VM *sizes* are not in the Batch data-plane API at all (only ARM's
        ``virtualMachineSkus``), so size facts come from the catalog."""
        try:
            images = list(self._client.list_supported_images())
        except HttpResponseError as exc:
            if exc.status_code in _NOT_OFFERED:
                return None
            raise translate(exc, self._what("list supported images")) from exc
        except AzureError as exc:
            raise translate(exc, self._what("list supported images")) from exc
        out = []
        for img in images:
            ref = img.image_reference
            out.append(
                {
                    "node_agent_sku_id": img.node_agent_sku_id,
                    "os_type": enum_text(img.os_type, "") or None,
                    "publisher": ref.publisher if ref else None,
                    "offer": ref.offer if ref else None,
                    "sku": ref.sku if ref else None,
                    "verification_type": enum_text(img.verification_type, "") or None,
                }
            )
        return out
