"""The workspace: one owner-only folder holding settings, the SQLite store,
localbatch's state and task folders, logs and runtime (discovery) files.

``BATCHFED_HOME`` chooses it (default ``~/.batchfed``). ``settings.yaml`` inside
chooses the store backend. Secrets are never read from or written to this file:
the Azure connection string comes only from ``BATCHFED_STORAGE_CONNECTION_STRING``.

Layout::

    $BATCHFED_HOME/
      settings.yaml        optional; defaults below
      store.sqlite         embedded metadata store + action queue (sqlite backend)
      runtime/             discovery files: localbatch.json, proxy-<pid>.json
      logs/                proxy and localbatch logs
      localbatch/          localbatch state, keys (owner-only) and task folders
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import ConfigError, WorkspaceError
from .loading import SECRET_KEY_RE, PathError, format_path, load_yaml_file, validate

HOME_ENV = "BATCHFED_HOME"
CONNECTION_STRING_ENV = "BATCHFED_STORAGE_CONNECTION_STRING"
SETTINGS_FILE = "settings.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SqliteStoreSettings(_Strict):
    path: str = Field("store.sqlite", description="SQLite file; relative paths are inside the workspace")
    busy_timeout_ms: int = Field(10_000, ge=100, description="how long a writer waits for a lock")


_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class AzureStoreSettings(_Strict):
    account_name: str | None = Field(None, description="storage account name (endpoints derived from it)")
    table_endpoint: str | None = Field(None, description="override, e.g. an Azurite URL")
    queue_endpoint: str | None = None
    blob_endpoint: str | None = None
    credential: Literal["default", "connection_string"] = Field(
        "default",
        description="'default' = DefaultAzureCredential (managed identity, CLI login, environment); "
        f"'connection_string' = read {CONNECTION_STRING_ENV}",
    )
    prefix: str = Field("batchfed", description="prefix of every table, queue and container name")

    @field_validator("prefix")
    @classmethod
    def _prefix_ok(cls, v: str) -> str:
        if not _PREFIX_RE.fullmatch(v):
            raise ValueError("must be 1-16 lower-case letters or digits starting with a letter (Azure naming rules)")
        return v


class StoreSettings(_Strict):
    backend: Literal["sqlite", "azure"] = "sqlite"
    sqlite: SqliteStoreSettings = SqliteStoreSettings()
    azure: AzureStoreSettings = AzureStoreSettings()


class LocalBatchSettings(_Strict):
    latency_ms: float = Field(0.0, ge=0, le=60_000, description="injected delay per request (imitates a remote service)")
    max_processes: int = Field(64, ge=1, description="hard cap on task processes running at once on this machine")
    loose: bool = Field(False, description="accept and ignore (with a warning) request properties localbatch cannot honour")


class ProxySettings(_Strict):
    workers: int = Field(8, ge=1, le=256, description="job ids processed concurrently per proxy")
    max_attempts: int = Field(5, ge=1, le=100, description="unexpected errors tolerated per action before it fails")
    lease_seconds: float = Field(15.0, ge=1)
    renew_seconds: float = Field(5.0, ge=0.1)


#: the built-in storage account: the workspace's embedded Azurite (``batchfed up`` starts it)
LOCAL_STORAGE = "local"
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STORAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class StorageAccountSettings(_Strict):
    """One entry of ``storage_accounts:``: where the blobs are and how to sign in, never a secret."""

    account_url: str | None = Field(
        None, description="blob endpoint, e.g. https://<account>.blob.core.windows.net (no SAS: it is a secret)"
    )
    location: str | None = Field(None, description="Azure region of the account (data locality), e.g. westeurope")
    connection_string_env: str | None = Field(
        None,
        description="name of an environment variable holding the account's connection string; "
        "without it the workspace's Azure credential (DefaultAzureCredential) signs in",
    )

    @field_validator("account_url")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL of a blob endpoint, e.g. https://<account>.blob.core.windows.net")
        if parts.query or parts.fragment or parts.username or parts.password:
            shown = f"{parts.scheme}://{parts.hostname}{parts.path} (the rest hidden)"
            raise PathError(
                (),
                shown,
                "give the URL without a query string or user info: a SAS or key is a secret and is never read "
                "from files (use connection_string_env, or the workspace's Azure credential)",
            )
        return v.rstrip("/")

    @field_validator("connection_string_env")
    @classmethod
    def _env_ok(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME_RE.fullmatch(v):
            raise ValueError("must be the name of an environment variable (letters, digits and _), not its value")
        return v


def _check_storage_accounts(accounts: dict[str, StorageAccountSettings]) -> None:
    for name, acct in accounts.items():
        if not _STORAGE_NAME_RE.fullmatch(name):
            raise PathError((name,), name, "a storage account name is 1-63 letters, digits, '_', '.' or '-'")
        if name == LOCAL_STORAGE:
            for key in ("account_url", "connection_string_env"):
                if getattr(acct, key) is not None:
                    raise PathError(
                        (name, key),
                        getattr(acct, key),
                        "'local' is the workspace's embedded Azurite: only its location may be set",
                    )
        elif acct.account_url is None:
            raise PathError((name, "account_url"), None, "required: the account's blob endpoint")


class WorkspaceSettings(_Strict):
    store: StoreSettings = StoreSettings()
    localbatch: LocalBatchSettings = LocalBatchSettings()
    proxy: ProxySettings = ProxySettings()
    storage_accounts: dict[str, StorageAccountSettings] = Field(
        default_factory=dict,
        description="storage accounts by name (jobs.yaml storage_account_settings, `batchfed data`); "
        f"'{LOCAL_STORAGE}' is always the workspace's embedded Azurite",
    )

    @field_validator("storage_accounts")
    @classmethod
    def _accounts_ok(cls, v: dict[str, StorageAccountSettings]) -> dict[str, StorageAccountSettings]:
        _check_storage_accounts(v)
        return v


def default_home() -> Path:
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".batchfed"


class Workspace:
    """A workspace folder and its validated settings."""

    def __init__(self, path: Path, settings: WorkspaceSettings):
        self.path = path
        self.settings = settings

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r}, store={self.settings.store.backend!r})"

    # -- well-known places ---------------------------------------------------------
    @property
    def settings_file(self) -> Path:
        return self.path / SETTINGS_FILE

    @property
    def runtime_dir(self) -> Path:
        return self.path / "runtime"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def localbatch_dir(self) -> Path:
        return self.path / "localbatch"

    @property
    def sqlite_path(self) -> Path:
        p = Path(self.settings.store.sqlite.path).expanduser()
        return p if p.is_absolute() else self.path / p

    def ensure(self) -> Workspace:
        """Create the folder tree owner-only (0700); tighten an existing one, and a settings
        file someone wrote with a looser mode."""
        for d in (self.path, self.runtime_dir, self.logs_dir, self.localbatch_dir):
            try:
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(d, 0o700)
            except OSError as exc:
                raise WorkspaceError(f"{d}: cannot create the workspace folder: {exc.strerror}") from None
        try:
            st = self.settings_file.stat()
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(self.settings_file, 0o600)
        except OSError:
            pass  # no settings file (the defaults apply), or not ours to change
        return self


def load_settings(path: Path) -> WorkspaceSettings:
    file = path / SETTINGS_FILE
    if not file.exists():
        return WorkspaceSettings()
    data, source = load_yaml_file(file)
    if data is None:
        return WorkspaceSettings()
    _refuse_secrets(data, source)
    return validate(WorkspaceSettings, data, source)


_SECRET_KEYS = SECRET_KEY_RE


def _refuse_secrets(data: object, source: str, path: tuple[object, ...] = ()) -> None:
    """Secrets never live in config files; say where they go instead (never echo the value)."""
    if isinstance(data, dict):
        for k, v in data.items():
            here = (*path, k)
            if _SECRET_KEYS.search(str(k)):
                instead = f"set {CONNECTION_STRING_ENV} or use credential: default (managed identity / CLI login)"
                if path[:1] == ("storage_accounts",):
                    instead = "name the environment variable holding it with connection_string_env, or leave it out "
                    instead += "to sign in with the workspace's Azure credential"
                raise ConfigError(f"{source}: {format_path(here)} = <hidden>: secrets are not read from files; {instead}")
            _refuse_secrets(v, source, here)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _refuse_secrets(v, source, (*path, i))


def open_workspace(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Workspace:
    """Open (and by default create) the workspace at ``path`` or ``$BATCHFED_HOME``."""
    root = Path(path).expanduser() if path is not None else default_home()
    root = root.absolute()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root}: workspace path exists and is not a folder")
    settings = load_settings(root) if root.exists() else WorkspaceSettings()
    ws = Workspace(root, settings)
    if create:
        ws.ensure()
    return ws
