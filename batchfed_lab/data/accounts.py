"""Storage accounts by name, and the container URLs a Batch task may use.

A name is an entry of ``settings.yaml`` ``storage_accounts:`` (see
:class:`~batchfed_lab.config.workspace.StorageAccountSettings`) or ``local``, the workspace's
embedded Azurite (:mod:`.local`). Credentials never come from a file: an entry signs in with the
workspace's Azure credential (``DefaultAzureCredential``: managed identity, CLI login,
environment) or with the connection string in the environment variable its
``connection_string_env`` names.

    resolve_account(workspace_or_settings, name) -> StorageAccount
    container_url(account, container, *, write, expiry=None) -> str   # default: 7 days

:func:`container_url` mints a SAS on this machine — a user-delegation SAS with a token
credential, a service SAS signed with the connection string's key otherwise — so only the SAS,
never the key, reaches a task. Read URLs (Batch ``resourceFiles[].storageContainerUrl``) allow
read + list; write URLs (``outputFiles[].destination.container.containerUrl``) allow create +
write, which is what Batch documents for output files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from ..config.workspace import LOCAL_STORAGE, SETTINGS_FILE, StorageAccountSettings, Workspace, WorkspaceSettings
from ..errors import DataError
from ..store.emulator import DEV_ACCOUNT, DEV_KEY

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

#: longest a user-delegation key (and so its SAS) may live, per Azure Storage
MAX_SAS_LIFETIME = dt.timedelta(days=7)
#: retries of a failed Storage call: a few seconds in all, not the SDK's minute and a half
RETRY_TOTAL = 3
READ_PERMISSIONS = "rl"
WRITE_PERMISSIONS = "cw"
_CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")

Auth = Literal["token", "connection_string", "emulator"]


@dataclass(frozen=True)
class StorageAccount:
    """A storage account reachable by name: where its blobs are and how this machine signs in.

    ``auth``: ``token`` (the workspace's Azure credential), ``connection_string`` (the variable
    ``connection_string_env`` names) or ``emulator`` (the embedded Azurite's published key)."""

    name: str
    account_url: str
    region: str | None
    auth: Auth
    connection_string_env: str | None = None

    @property
    def account_name(self) -> str:
        """The storage account's own name: the first label of the host, or the first path part
        of an emulator-style URL (``http://127.0.0.1:10000/devstoreaccount1``)."""
        parts = urlsplit(self.account_url)
        path = parts.path.strip("/")
        if path:
            return path.split("/")[0]
        return (parts.hostname or "").split(".")[0]

    def _connection_string(self) -> str:
        env = self.connection_string_env or ""
        value = os.environ.get(env, "")
        if not value.strip():
            raise DataError(f"storage account {self.name}: environment variable {env} (connection_string_env) is not set")
        return value

    def signing_key(self) -> tuple[str, str] | None:
        """(account name, key) for key-signed access, or None for a token credential."""
        if self.auth == "emulator":
            return DEV_ACCOUNT, DEV_KEY
        if self.auth == "connection_string":
            fields = _parse_connection_string(self._connection_string())
            key = fields.get("accountkey")
            if not key:
                raise DataError(
                    f"storage account {self.name}: the connection string in {self.connection_string_env} has no "
                    "AccountKey: give an account-key connection string, or drop connection_string_env to sign in "
                    "with the workspace's Azure credential"
                )
            return fields.get("accountname") or self.account_name, key
        return None

    def service_client(self) -> BlobServiceClient:
        """A blob service client signed in as this account says (nothing secret is printed)."""
        from azure.core.credentials import AzureNamedKeyCredential
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=RETRY_TOTAL, random_jitter_range=1)
        key = self.signing_key()
        credential = AzureNamedKeyCredential(*key) if key is not None else _default_credential()
        return BlobServiceClient(self.account_url, credential=credential, retry_policy=retry)


def _default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _parse_connection_string(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.strip().split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _settings_of(workspace_or_settings: Workspace | WorkspaceSettings) -> tuple[WorkspaceSettings, str]:
    if isinstance(workspace_or_settings, Workspace):
        return workspace_or_settings.settings, str(workspace_or_settings.settings_file)
    return workspace_or_settings, SETTINGS_FILE


def resolve_account(workspace_or_settings: Workspace | WorkspaceSettings, name: str) -> StorageAccount:
    """The storage account called ``name`` in the workspace's settings, or ``local``."""
    settings, source = _settings_of(workspace_or_settings)
    entry = settings.storage_accounts.get(name)
    if name == LOCAL_STORAGE:
        return _local_account(workspace_or_settings, entry)
    if entry is None:
        known = ", ".join(sorted({*settings.storage_accounts, LOCAL_STORAGE}))
        raise DataError(f"{source}: storage_accounts.{name}: no such storage account (known: {known})")
    return _configured_account(name, entry)


def _configured_account(name: str, entry: StorageAccountSettings) -> StorageAccount:
    assert entry.account_url is not None  # required by the settings model for every name but local
    if entry.connection_string_env is not None:
        return StorageAccount(name, entry.account_url, entry.location, "connection_string", entry.connection_string_env)
    return StorageAccount(name, entry.account_url, entry.location, "token")


def _local_account(workspace_or_settings: Workspace | WorkspaceSettings, entry: StorageAccountSettings | None) -> StorageAccount:
    from . import local

    if not isinstance(workspace_or_settings, Workspace):
        raise DataError("storage account local is the embedded Azurite of a workspace: resolve it with the workspace")
    running = local.info(workspace_or_settings)
    if running is None:
        raise DataError(
            f"storage account local: the embedded Azurite of {workspace_or_settings.path} is not running: run `batchfed up`"
        )
    return StorageAccount(LOCAL_STORAGE, running.blob_url, entry.location if entry else None, "emulator")


def check_container(container: str) -> str:
    """A container name as Azure Storage allows it (3-63 lower-case letters, digits, single '-')."""
    if not _CONTAINER_RE.match(container):
        raise DataError(
            f"container {container!r}: 3-63 lower-case letters, digits and single hyphens, starting with a letter or digit"
        )
    return container


def split_remote(remote: str) -> tuple[str, str]:
    """``container[/path]`` → ``(container, path)``; the container name is checked."""
    container, _, path = remote.strip().lstrip("/").partition("/")
    return check_container(container), path


def _expiry_time(expiry: dt.timedelta | dt.datetime) -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    when = now + expiry if isinstance(expiry, dt.timedelta) else expiry
    if when.tzinfo is None:
        raise DataError("container_url: give expiry as a timedelta or a timezone-aware datetime")
    if when <= now:
        raise DataError(f"container_url: expiry {when.isoformat(timespec='seconds')} is not in the future")
    return when


def container_url(
    account: StorageAccount,
    container: str,
    *,
    write: bool,
    expiry: dt.timedelta | dt.datetime | None = None,
) -> str:
    """A URL of ``container`` with a SAS a Batch task may use: read + list, or create + write.
    ``expiry``: how long (or until when) it works; default the longest a user-delegation SAS may
    live, 7 days from its start."""
    from azure.storage.blob import generate_container_sas

    check_container(container)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # clocks of nodes drift
    when = _expiry_time(expiry) if expiry is not None else start + MAX_SAS_LIFETIME
    permission = WRITE_PERMISSIONS if write else READ_PERMISSIONS
    key = account.signing_key()
    if key is not None:
        sas = generate_container_sas(key[0], container, account_key=key[1], permission=permission, expiry=when, start=start)
    else:
        if when - start > MAX_SAS_LIFETIME:
            raise DataError(
                f"storage account {account.name}: a user-delegation SAS lives at most 7 days; ask for an earlier expiry"
            )
        sas = _user_delegation_sas(account, container, permission, start, when)
    return f"{account.account_url}/{quote(container)}?{sas}"


def _user_delegation_sas(account: StorageAccount, container: str, permission: str, start: dt.datetime, when: dt.datetime) -> str:
    from azure.core.exceptions import AzureError
    from azure.storage.blob import generate_container_sas

    try:
        delegation = account.service_client().get_user_delegation_key(start, when)
    except AzureError as exc:
        raise DataError(
            f"storage account {account.name}: cannot get a user delegation key with the workspace's Azure credential "
            f"(it needs a role such as Storage Blob Data Contributor): {_first_line(exc)}"
        ) from exc
    return generate_container_sas(
        account.account_name, container, user_delegation_key=delegation, permission=permission, expiry=when, start=start
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
