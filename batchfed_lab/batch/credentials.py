"""Which Batch service a URL names, and which credential signs requests to it.

Two URL forms are accepted (SPEC §2 ``pool add``)::

    https://<account>.<region>.batch.azure.com      Azure Batch (other clouds: *.batch.<suffix>)
    http://127.0.0.1:<port>/accounts/<account>      localbatch on loopback (also localhost, [::1])

Credentials, first match wins (:func:`resolve_credential`):

1. an explicit ``key=`` (a base64 shared key) or credential object given by the caller;
2. the environment variable ``BATCHFED_BATCH_KEY_<ACCOUNT>`` (account upper-cased, every
   character that is not a letter or digit turned into ``_``): a shared key for that account;
3. local URLs: the workspace key ``<workspace>/localbatch/key`` (one key signs every local
   account; the workspace is ``BATCHFED_HOME`` unless given);
4. Azure URLs: ``azure.identity.DefaultAzureCredential`` (managed identity, CLI login,
   environment), one instance per process so its token cache is shared.

Shared keys are never written to logs, reprs or exception text: :class:`ResolvedCredential`
hides the secret from its repr and every error here names only where the key came from.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from ..errors import BatchAuthError, ConfigError

__all__ = [
    "KEY_ENV_PREFIX",
    "ResolvedCredential",
    "ServiceUrl",
    "key_env_var",
    "normalize_service_url",
    "parse_service_url",
    "resolve_credential",
]

KEY_ENV_PREFIX = "BATCHFED_BATCH_KEY_"
LOCAL_KEY_FILE = "key"  # <workspace>/localbatch/key, written by localbatch (owner-only)

_AZURE_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.(?P<region>[a-z0-9]+)\.batch\.[a-z0-9.-]+$")
_LOCAL_PATH = re.compile(r"^/accounts/(?P<account>[A-Za-z0-9_-]{1,64})$")
_EXPECTED = "expected https://<account>.<region>.batch.azure.com or http://127.0.0.1:<port>/accounts/<account>"


class ServiceUrl(NamedTuple):
    account: str
    region: str | None  # None for local URLs: the pool's metadata says where it "is"
    is_local: bool


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_service_url(url: str) -> ServiceUrl:
    """``(account, region | None, is_local)`` of a Batch service URL; ConfigError otherwise."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"batch service url {text!r}: {_EXPECTED}") from None
    path = parts.path.rstrip("/")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"batch service url {text!r}: no query, fragment or user info allowed; {_EXPECTED}")
    if parts.scheme == "https":
        m = _AZURE_HOST.match(host)
        if m and not path:
            return ServiceUrl(m["account"], m["region"], False)
    elif parts.scheme == "http" and _is_loopback(host) and port:
        m = _LOCAL_PATH.match(path)
        if m:
            return ServiceUrl(m["account"], None, True)
    raise ConfigError(f"batch service url {text!r}: {_EXPECTED}")


def normalize_service_url(url: str) -> str:
    """The canonical spelling used as cache key and in pool keys: lower-case host, no trailing slash."""
    parse_service_url(url)  # validate first
    parts = urlsplit(url.strip())
    netloc = parts.netloc.lower()
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def key_env_var(account: str) -> str:
    """``BATCHFED_BATCH_KEY_<ACCOUNT>`` for an account name."""
    return KEY_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", account.upper())


@dataclass(frozen=True)
class ResolvedCredential:
    """A credential plus a description of where it came from (safe to print)."""

    kind: Literal["shared_key", "token"]
    source: str  # e.g. "env BATCHFED_BATCH_KEY_ACME", "workspace key", "DefaultAzureCredential"
    credential: Any = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.kind} ({self.source})"


def _checked_key(key: str, account: str, source: str) -> str:
    key = key.strip()
    try:
        if not key or not base64.b64decode(key, validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        # never echo the key itself, only where it came from
        raise BatchAuthError(f"shared key for account '{account}' from {source} is not valid base64") from None
    return key


def _shared_key(account: str, key: str, source: str) -> ResolvedCredential:
    from azure.core.credentials import AzureNamedKeyCredential

    return ResolvedCredential("shared_key", source, AzureNamedKeyCredential(account, _checked_key(key, account, source)))


def read_workspace_key(workspace: str | os.PathLike[str] | None = None) -> str:
    """The localbatch key of a workspace (``BATCHFED_HOME`` when not given)."""
    if workspace is None:
        from ..config.workspace import default_home

        workspace = default_home()
    path = Path(workspace) / "localbatch" / LOCAL_KEY_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise BatchAuthError(
            f"{path}: no localbatch key in this workspace (start localbatch first, or set {KEY_ENV_PREFIX}<ACCOUNT>)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchAuthError(f"{path}: cannot read the localbatch key: {type(exc).__name__}") from None


_default_credential: Any = None
_default_lock = threading.Lock()


def _default_azure_credential() -> Any:
    """One DefaultAzureCredential per process: it caches tokens and is thread-safe."""
    global _default_credential
    with _default_lock:
        if _default_credential is None:
            from azure.identity import DefaultAzureCredential

            _default_credential = DefaultAzureCredential()
        return _default_credential


def resolve_credential(
    service_url: str,
    *,
    key: str | None = None,
    credential: Any = None,
    workspace: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> ResolvedCredential:
    """The credential for ``service_url`` (see the module docstring for the order)."""
    account, _, is_local = parse_service_url(service_url)
    if isinstance(credential, str):  # a bare string can only be a shared key
        key, credential = credential, None
    if credential is not None:
        if isinstance(credential, ResolvedCredential):
            return credential
        kind: Literal["shared_key", "token"] = "shared_key" if hasattr(credential, "named_key") else "token"
        return ResolvedCredential(kind, "given by the caller", credential)
    if key is not None:
        return _shared_key(account, key, "the key given by the caller")
    env = os.environ if environ is None else environ
    var = key_env_var(account)
    if env.get(var):
        return _shared_key(account, env[var], f"env {var}")
    if is_local:
        return _shared_key(account, read_workspace_key(workspace), "workspace key")
    return ResolvedCredential("token", "DefaultAzureCredential", _default_azure_credential())
