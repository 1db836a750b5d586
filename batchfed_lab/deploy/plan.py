"""What a proxy deployment consists of, worked out without calling Azure.

A :class:`DeployPlan` names the resource group, the container groups (the leader's and
``standby`` more), the storage account and Batch accounts the proxies reach, the data
storage accounts of settings.yaml (the proxy mints the tasks' SAS URLs there), and every
role assignment with the id it will have. Role assignment names are derived from the
group, the scope and the role (UUID 5), so ``destroy`` and ``--what-if`` know them offline.
"""

from __future__ import annotations

import ipaddress
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config.federation import FederationConfig
from ..config.workspace import LOCAL_STORAGE, AzureStoreSettings, StorageAccountSettings
from ..errors import ConfigError
from ..scheduler.catalog import lookup

__all__ = ["ROLES", "DataAccount", "DeployPlan", "Group", "RoleAssignment", "Target", "make_plan"]

SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"

#: built-in role definition ids (the same in every Azure cloud), by role name
ROLES: dict[str, str] = {
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Azure Batch Data Contributor": "6aaa78f1-f7de-44ca-8722-c64a23943cae",
    "Storage Blob Delegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
}
STORAGE_ROLES = ("Storage Table Data Contributor", "Storage Queue Data Contributor", "Storage Blob Data Contributor")
BATCH_ROLES = ("Azure Batch Data Contributor",)
# a user-delegation key (the tasks' SAS) needs the delegator; the SAS grants only what its
# signer may do, so the signer needs the data role too
DATA_ROLES = ("Storage Blob Delegator", "Storage Blob Data Contributor")

# a fixed namespace: the same group, scope and role always give the same assignment name
_NAMESPACE = uuid.UUID("5b0c7d2e-7f3a-4c1e-9a56-2f1d3c4b5a69")
_ARM_ID_RE = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/([^/]+/[^/]+)/([^/]+)$", re.IGNORECASE)
DEFAULT_CPU, DEFAULT_MEMORY_GB = 1.0, 1.5
ACI_MAX_CPU, ACI_MAX_MEMORY_GB = 4.0, 16.0


@dataclass(frozen=True)
class Target:
    """A resource the proxies get data-plane roles on."""

    resource_id: str
    kind: str  # "storage" (the store's account), "batch" or "data"
    roles: tuple[str, ...]

    def _part(self, n: int) -> str:
        m = _ARM_ID_RE.match(self.resource_id)
        assert m is not None  # ids are validated or built here
        return m.group(n)

    @property
    def subscription(self) -> str:
        return self._part(1)

    @property
    def resource_group(self) -> str:
        return self._part(2)

    @property
    def name(self) -> str:
        return self._part(4)

    @property
    def relative_scope(self) -> str:
        """The id below its resource group (the form a role assignment's ``scope`` takes there)."""
        return f"{self._part(3)}/{self.name}"


@dataclass(frozen=True)
class DataAccount:
    """A storage account of settings.yaml the deployed proxy mints tasks' SAS URLs for."""

    name: str
    account_url: str
    location: str | None
    resource_id: str

    def as_setting(self) -> dict[str, str]:
        return {"account_url": self.account_url, **({"location": self.location} if self.location else {})}

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "account_url": self.account_url, "location": self.location, "id": self.resource_id}


@dataclass(frozen=True)
class RoleAssignment:
    group: str
    target: Target
    role: str
    name: str  # the assignment's GUID

    @property
    def role_definition_id(self) -> str:
        return f"/subscriptions/{self.target.subscription}/providers/Microsoft.Authorization/roleDefinitions/{ROLES[self.role]}"

    @property
    def resource_id(self) -> str:
        return f"{self.target.resource_id}/providers/Microsoft.Authorization/roleAssignments/{self.name}"

    def as_dict(self) -> dict[str, str]:
        return {
            "proxy": self.group,
            "role": self.role,
            "role_definition_id": self.role_definition_id,
            "scope": self.target.resource_id,
            "id": self.resource_id,
        }


@dataclass(frozen=True)
class Group:
    """One container group: one proxy."""

    name: str
    resource_id: str
    standby: bool


@dataclass(frozen=True)
class DeployPlan:
    subscription: str
    resource_group: str
    location: str
    prefix: str
    image: str
    cpu: float
    memory_gb: float
    groups: tuple[Group, ...]
    storage: Target
    batch: tuple[Target, ...]
    store: AzureStoreSettings
    sas_minutes: int
    data_accounts: tuple[DataAccount, ...] = ()

    @property
    def deployment_name(self) -> str:
        return f"{self.prefix}-proxy"

    @property
    def artifacts_container(self) -> str:
        return f"{self.store.prefix}-deploy"

    @property
    def data(self) -> tuple[Target, ...]:
        """The data accounts other than the store's (that one holds the delegator role itself)."""
        store = self.storage.resource_id.lower()
        ids = sorted({a.resource_id for a in self.data_accounts if a.resource_id.lower() != store})
        return tuple(Target(i, "data", DATA_ROLES) for i in ids)

    @property
    def targets(self) -> tuple[Target, ...]:
        return (self.storage, *self.batch, *self.data)

    def assignments(self, group: Group | None = None) -> list[RoleAssignment]:
        groups = self.groups if group is None else (group,)
        return [
            RoleAssignment(g.name, t, role, str(uuid.uuid5(_NAMESPACE, f"{g.resource_id}|{t.resource_id}|{role}".lower())))
            for g in groups
            for t in self.targets
            for role in t.roles
        ]


def group_names(prefix: str, count: int) -> list[str]:
    """``<prefix>-aci000`` leads; ``-aci001`` … are standbys (the original named its VM ``-vm000``)."""
    return [f"{prefix}-aci{i:03d}" for i in range(count)]


def _required(value: str | None, key: str, source: str) -> str:
    if not value:
        raise ConfigError(f"{source}: federation.{key}: required by `fed proxy create` / `destroy`")
    return value


def _size(config: FederationConfig, source: str) -> tuple[float, float]:
    fed, dep = config.federation, config.federation.deployment
    cpu, mem = DEFAULT_CPU, DEFAULT_MEMORY_GB
    if fed.vm_size:
        size = lookup(fed.vm_size)
        if size is None and (dep.cpu is None or dep.memory_gb is None):
            raise ConfigError(
                f"{source}: federation.vm_size = {fed.vm_size}: not in the size catalog; "
                "set federation.deployment.cpu and memory_gb instead"
            )
        if size is not None:
            cpu, mem = float(size.cores), round(size.memory_mib / 1024, 1)
    cpu = dep.cpu if dep.cpu is not None else cpu
    mem = dep.memory_gb if dep.memory_gb is not None else mem
    if cpu > ACI_MAX_CPU or mem > ACI_MAX_MEMORY_GB:
        raise ConfigError(
            f"{source}: federation.vm_size = {fed.vm_size}: {cpu:g} vCPU / {mem:g} GB is more than a container "
            f"gets ({ACI_MAX_CPU:g} / {ACI_MAX_MEMORY_GB:g}); choose a smaller size or set deployment.cpu / memory_gb"
        )
    return cpu, mem


def _batch_accounts(urls: Iterable[str]) -> list[str]:
    """Azure Batch account names from pool service URLs (``https://<account>.<region>.batch…``);
    localbatch URLs (loopback) are not Azure accounts and get no role."""
    names = set()
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if ".batch." in host and host.count(".") >= 3:
            names.add(host.split(".")[0])
    return sorted(names)


def _data_account_name(name: str, url: str, settings_source: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    try:
        ipaddress.ip_address(host)
        local = True
    except ValueError:
        local = host == "localhost" or "." not in host
    if local:
        raise ConfigError(
            f"{settings_source}: storage_accounts.{name}.account_url = {url}: an emulator on this machine; "
            "a deployed proxy cannot reach it (remove the account before `fed proxy create`)"
        )
    return host.split(".")[0]


def _data_accounts(
    accounts: Mapping[str, StorageAccountSettings], listed_ids: Iterable[str], rg_id: str, settings_source: str, strict: bool
) -> tuple[DataAccount, ...]:
    """The accounts jobs may name (not ``local``: the laptop's Azurite), each with its ARM id:
    as federation.yaml lists it, else in the federation's resource group. An account a deployed
    proxy cannot use is refused, or (``strict=False``: destroy) left out — it got no role."""
    by_name = {i.rsplit("/", 1)[1].lower(): i for i in listed_ids}
    found = []
    for name in sorted(accounts):
        entry = accounts[name]
        if name == LOCAL_STORAGE or entry.account_url is None:
            continue
        try:
            account = _usable_data_account(name, entry, settings_source)
        except ConfigError:
            if strict:
                raise
            continue
        rid = by_name.get(account, f"{rg_id}/providers/Microsoft.Storage/storageAccounts/{account}")
        found.append(DataAccount(name, entry.account_url, entry.location, rid))
    return tuple(found)


def _usable_data_account(name: str, entry: StorageAccountSettings, settings_source: str) -> str:
    """The storage account's own name, if a deployed proxy can sign in there."""
    assert entry.account_url is not None
    if entry.connection_string_env is not None:
        raise ConfigError(
            f"{settings_source}: storage_accounts.{name}.connection_string_env = {entry.connection_string_env}: "
            "a deployed proxy signs in to data accounts with its managed identity, never with a key "
            "(create grants it Storage Blob Delegator and Storage Blob Data Contributor there): "
            "drop connection_string_env or remove the account before `fed proxy create`"
        )
    return _data_account_name(name, entry.account_url, settings_source)


def make_plan(
    config: FederationConfig,
    store: AzureStoreSettings,
    pool_urls: Iterable[str],
    *,
    standby: int = 0,
    source: str = "federation.yaml",
    data_accounts: Mapping[str, StorageAccountSettings] | None = None,
    settings_source: str = "settings.yaml",
    strict: bool = True,
) -> DeployPlan:
    """The plan for a leader and ``standby`` standbys. ``pool_urls``: the service URLs of the
    store's pools (their Batch accounts get a role each); ``data_accounts``: settings.yaml
    ``storage_accounts`` (each gets the roles a user-delegation SAS needs; one a deployed proxy
    cannot use is refused, or left out with ``strict=False``)."""
    if standby < 0 or standby > 9:
        raise ConfigError(f"--standby = {standby}: must be 0-9")
    fed, dep = config.federation, config.federation.deployment
    location = _required(fed.location, "location", source)
    rg = _required(fed.resource_group, "resource_group", source)
    sub = dep.subscription_id or os.environ.get(SUBSCRIPTION_ENV, "").strip().lower()
    if not sub:
        raise ConfigError(f"{source}: federation.deployment.subscription_id: not set, nor {SUBSCRIPTION_ENV}")
    if not store.account_name:
        raise ConfigError("settings.yaml: store.azure.account_name: required to deploy the proxy (its storage account)")
    cpu, mem = _size(config, source)
    storage = dep.storage_account_id or (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{store.account_name}"
    )
    listed = {t.rsplit("/", 1)[1].lower(): t for t in dep.batch_account_ids}
    for name in _batch_accounts(pool_urls):
        listed.setdefault(name, f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Batch/batchAccounts/{name}")
    rg_id = f"/subscriptions/{sub}/resourceGroups/{rg}"
    data = _data_accounts(data_accounts or {}, dep.data_account_ids, rg_id, settings_source, strict)
    store_target = Target(storage, "storage", STORAGE_ROLES)
    if any(a.resource_id.lower() == storage.lower() for a in data):
        store_target = Target(storage, "storage", (*STORAGE_ROLES, "Storage Blob Delegator"))
    groups = tuple(
        Group(n, f"{rg_id}/providers/Microsoft.ContainerInstance/containerGroups/{n}", i > 0)
        for i, n in enumerate(group_names(fed.hostname_prefix, 1 + standby))
    )
    return DeployPlan(
        subscription=sub,
        resource_group=rg,
        location=location,
        prefix=fed.hostname_prefix,
        image=dep.image,
        cpu=cpu,
        memory_gb=mem,
        groups=groups,
        storage=store_target,
        batch=tuple(Target(listed[k], "batch", BATCH_ROLES) for k in sorted(listed)),
        store=store,
        sas_minutes=dep.sas_minutes,
        data_accounts=data,
    )
