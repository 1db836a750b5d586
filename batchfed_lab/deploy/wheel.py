"""The wheel of the running version, uploaded to the federation's storage account, and the
short-lived read-only SAS the proxy's container fetches it with (``bootstrap.py``).

Blob names are content-addressed (``wheels/<version>/<sha256>/<wheel file>``): uploading the
same wheel twice is a no-op, and a container can check what it downloaded against its name.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from .._version import __version__
from ..errors import ProxyError

log = logging.getLogger("batchfed.deploy")

DIST_NAME = "batchfed_lab"  # the wheel file's distribution part (PEP 427 normalises "-" to "_")
WHEEL_PREFIX = "wheels"
# a SAS's start is set back so a container whose clock runs a little behind accepts it
CLOCK_SKEW = timedelta(minutes=5)


def source_root() -> Path | None:
    """The source tree the running package comes from (a clone or an editable install), if any."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "batchfed-lab"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def bootstrap_script() -> Path:
    """``bootstrap.py``: what the proxy's container runs first (a file of the package and its wheel)."""
    return Path(__file__).with_name("bootstrap.py")


def wheel_name(version: str = __version__) -> str:
    return f"{DIST_NAME}-{version}-py3-none-any.whl"


def build_wheel(dest_dir: Path) -> Path:
    """The wheel of the running version in ``dest_dir``: built from the source tree with
    ``pip wheel`` (no build isolation when hatchling is importable, so nothing is downloaded),
    else one already there (an installed package has no source tree to build from)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / wheel_name()
    root = source_root()
    if root is None:
        if target.is_file():
            return target
        raise ProxyError(
            f"batchfed_lab {__version__} is installed without its source tree: put {target.name} in {dest_dir} "
            "(pip download or build it) and run again"
        )
    target.unlink(missing_ok=True)  # a stale build of the same version must not be reused
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--quiet", "-w", str(dest_dir)]
    if _has_hatchling():
        cmd.append("--no-build-isolation")
    proc = subprocess.run([*cmd, str(root)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not target.is_file():
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ProxyError(f"building the wheel of {root} failed: {detail[-1] if detail else f'pip exited {proc.returncode}'}")
    return target


def _has_hatchling() -> bool:
    try:
        import hatchling  # noqa: F401
    except ImportError:
        return False
    return True


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def blob_name_for(path: Path) -> str:
    """``wheels/<version>/<sha256>/<file name>``; the version is read from the file name."""
    parts = path.name.split("-")
    if len(parts) < 5 or not path.name.endswith(".whl"):
        raise ProxyError(f"{path}: not a wheel file name (<name>-<version>-<python>-<abi>-<platform>.whl)")
    return f"{WHEEL_PREFIX}/{parts[1]}/{sha256_of(path)}/{path.name}"


def upload_wheel(container_client: Any, path: Path) -> str:
    """Upload the wheel (creating the container if needed); returns its blob name. A blob of
    that name already holds these very bytes, so an existing one is left as it is."""
    from azure.core.exceptions import ResourceExistsError

    name = blob_name_for(path)
    try:
        container_client.create_container()
    except ResourceExistsError:
        pass
    try:
        with path.open("rb") as fh:
            container_client.upload_blob(name, fh, overwrite=False)
        log.info("uploaded %s to container %s", name, container_client.container_name)
    except ResourceExistsError:
        log.info("%s is already in container %s", name, container_client.container_name)
    return name


def read_sas(blob_client: Any, minutes: int) -> str:
    """A read-only SAS URL of the blob valid for ``minutes``: a user-delegation SAS when the
    client holds a token credential, an account-key SAS when it holds the key. The URL is a
    secret: hand it on, never log it."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    if minutes <= 0:
        raise ValueError(f"minutes = {minutes}: a SAS must be valid for at least one minute")
    now = datetime.now(timezone.utc)
    start, expiry = now - CLOCK_SKEW, now + timedelta(minutes=minutes)
    cred = blob_client.credential
    common: dict[str, Any] = {
        "account_name": blob_client.account_name,
        "container_name": blob_client.container_name,
        "blob_name": blob_client.blob_name,
        "permission": BlobSasPermissions(read=True),
        "start": start,
        "expiry": expiry,
    }
    if getattr(cred, "account_key", None):
        sas = generate_blob_sas(account_key=cred.account_key, **common)
    elif hasattr(cred, "get_token"):
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient(_service_url(blob_client), credential=cred)
        key = service.get_user_delegation_key(start, expiry)
        sas = generate_blob_sas(user_delegation_key=key, **common)
    else:
        raise ProxyError(
            f"cannot sign a SAS for blob {blob_client.blob_name}: the client holds neither a key nor a token credential"
        )
    return f"{_plain_url(blob_client.url)}?{sas}"


def _plain_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _service_url(blob_client: Any) -> str:
    """The account's blob endpoint: the blob URL less ``/<container>/<blob>`` (which keeps
    Azurite's path-style ``/<account>`` segment)."""
    parts = urlsplit(blob_client.url)
    tail = "/" + quote(blob_client.container_name) + "/" + quote(blob_client.blob_name, safe="/~")
    path = parts.path[: -len(tail)] if parts.path.endswith(tail) else ""
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
