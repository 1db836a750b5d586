"""Bootstrap of the proxy's container: fetch the wheel, install it, run the proxy in the foreground.

It runs in a stock Python image before anything is installed, so it uses the standard library
only and is started as a file (``python bootstrap.py``), never imported from the package.
Everything it needs comes from the environment:

=====================================  ======================================================
``BATCHFED_WHEEL_URL``                 the wheel's blob URL with a read-only SAS, or
``BATCHFED_WHEEL_BLOB``                ``<account>/<container>/<blob>``, read with the
                                       container's managed identity
``BATCHFED_WHEEL_SHA256``              optional; else the 64-hex segment of the blob name
``BATCHFED_STORE_ACCOUNT``             the federation's storage account (the Azure store)
``BATCHFED_STORE_PREFIX``              optional store prefix (default ``batchfed``)
``BATCHFED_STORE_{TABLE,QUEUE,BLOB}_ENDPOINT``  optional endpoints (an emulator in tests)
``BATCHFED_STORAGE_CONNECTION_STRING``  optional: the store signs with it instead of the
                                       managed identity (Azurite in tests)
``BATCHFED_STORAGE_ACCOUNTS``          optional JSON ``{name: {account_url, location}}``: the
                                       workspace's data accounts (settings.yaml
                                       ``storage_accounts``), reached with the identity
``BATCHFED_FEDERATION_YAML_URL``       optional federation.yaml (a SAS URL), or
``BATCHFED_FEDERATION_YAML_BLOB``      ``<account>/<container>/<blob>`` read with the identity, or
``BATCHFED_FEDERATION_YAML_FILE``      a local path (the container's mounted secret volume)
``BATCHFED_HOME``                      the workspace (default ``/var/lib/batchfed``)
``BATCHFED_VENV``                      the venv to install into (default
                                       ``/opt/batchfed/venv``; ``none``: this Python)
``BATCHFED_PIP_ARGS``                  optional extra ``pip install`` arguments
``BATCHFED_PROXY_ID``                  optional proxy id (default ``proxy-<host name>``)
=====================================  ======================================================

The managed identity's token comes from ``IDENTITY_ENDPOINT`` with ``IDENTITY_HEADER`` where
the platform sets both, else from the instance metadata service (IMDS; its host can be moved
with ``AZURE_POD_IDENTITY_AUTHORITY_HOST``, as azure-identity allows). ``AZURE_CLIENT_ID``
picks a user-assigned identity.

Every failure is one line on stderr and a non-zero exit; no URL query (a SAS), token or
connection string is ever printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

PREFIX = "batchfed-bootstrap"
STORAGE_RESOURCE = "https://storage.azure.com/"
IMDS_HOST = "http://169.254.169.254"
STORAGE_API_VERSION = "2021-08-06"  # bearer tokens need x-ms-version 2017-11-09 or later
RETRIES = 4  # attempts on a connection error, 429 or 5xx (IMDS may not answer at once at start)
TIMEOUT = 60.0
_SHA = re.compile(r"^[0-9a-f]{64}$")


class BootstrapError(Exception):
    """A missing variable or a failed step: printed as one line, exit 1."""


def say(message: str) -> None:
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)


def shown(url: str) -> str:
    """The URL without its query (a SAS): safe to print."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclass(frozen=True)
class Source:
    """Where a file comes from: a URL to GET as it is (SAS), or a blob read with the identity."""

    variable: str
    url: str
    with_identity: bool

    @property
    def shown(self) -> str:
        return shown(self.url)

    @property
    def file_name(self) -> str:
        return unquote(urlsplit(self.url).path.rstrip("/").rpartition("/")[2])


def source(env: Mapping[str, str], stem: str, *, required: bool) -> Source | None:
    """``<stem>_URL`` (a SAS URL) or ``<stem>_BLOB`` (account/container/blob) from ``env``."""
    url, blob = env.get(f"{stem}_URL", "").strip(), env.get(f"{stem}_BLOB", "").strip()
    if url:
        if urlsplit(url).scheme not in ("http", "https"):
            raise BootstrapError(f"{stem}_URL: expected an http(s) URL, got a {urlsplit(url).scheme or 'relative'} one")
        return Source(f"{stem}_URL", url, with_identity=False)
    if blob:
        account, _, rest = blob.partition("/")
        container, _, name = rest.partition("/")
        if not (account and container and name):
            raise BootstrapError(f"{stem}_BLOB = {blob!r}: expected <account>/<container>/<blob>")
        endpoint = env.get("BATCHFED_STORE_BLOB_ENDPOINT", "").strip() or f"https://{account}.blob.core.windows.net"
        return Source(f"{stem}_BLOB", f"{endpoint.rstrip('/')}/{container}/{quote(name, safe='/~')}", with_identity=True)
    if required:
        raise BootstrapError(f"{stem}_URL or {stem}_BLOB must be set")
    return None


# -- HTTP ---------------------------------------------------------------------------------------


def http_get(url: str, headers: Mapping[str, str], what: str) -> bytes:
    """GET with a few retries on connection errors, 429 and 5xx; BootstrapError otherwise."""
    where = shown(url)
    delay = 1.0
    for attempt in range(1, RETRIES + 1):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers)), timeout=TIMEOUT) as resp:
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as exc:
            code = exc.headers.get("x-ms-error-code") if exc.headers else None
            problem = f"HTTP {exc.code}" + (f" {code}" if code else "")
            if exc.code != 429 and exc.code < 500:
                raise BootstrapError(f"{what}: {problem} from {where}") from None
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
        if attempt == RETRIES:
            raise BootstrapError(f"{what}: {problem} from {where} ({RETRIES} attempts)")
        time.sleep(delay)  # back off before the next attempt
        delay *= 2
    raise AssertionError("unreachable")


def identity_token(env: Mapping[str, str], resource: str = STORAGE_RESOURCE) -> str:
    """An access token of the container's managed identity for ``resource``."""
    params = {"resource": resource}
    if env.get("AZURE_CLIENT_ID"):
        params["client_id"] = env["AZURE_CLIENT_ID"]
    endpoint, header = env.get("IDENTITY_ENDPOINT", ""), env.get("IDENTITY_HEADER", "")
    if endpoint and header:
        url = f"{endpoint}?{urlencode({**params, 'api-version': '2019-08-01'})}"
        headers = {"X-IDENTITY-HEADER": header}
    else:
        host = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip() or IMDS_HOST
        url = f"{host.rstrip('/')}/metadata/identity/oauth2/token?{urlencode({**params, 'api-version': '2018-02-01'})}"
        headers = {"Metadata": "true"}
    body = http_get(url, headers, "getting a managed identity token")
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise BootstrapError("getting a managed identity token: the endpoint answered without an access_token")
    return token


def fetch(src: Source, env: Mapping[str, str], what: str) -> bytes:
    headers: dict[str, str] = {"x-ms-version": STORAGE_API_VERSION}
    if src.with_identity:
        headers["Authorization"] = f"Bearer {identity_token(env)}"
    return http_get(src.url, headers, f"downloading {what} ({src.variable})")


# -- steps --------------------------------------------------------------------------------------


def wheel_source(env: Mapping[str, str]) -> Source:
    src = source(env, "BATCHFED_WHEEL", required=True)
    assert src is not None
    name = src.file_name
    if not name.endswith(".whl") or name.count("-") < 4:
        raise BootstrapError(f"{src.variable}: the blob name must end in a wheel file name (…-py3-none-any.whl), got {name!r}")
    return src


def download_wheel_or_fall_back(src: Source, env: Mapping[str, str], folder: Path) -> Path:
    """The wheel by its SAS URL; when that fails and ``BATCHFED_WHEEL_BLOB`` is set too, by the
    identity: a container restarted after the SAS expired still gets its wheel."""
    try:
        return download_wheel(src, env, folder)
    except BootstrapError as exc:
        if src.with_identity or not env.get("BATCHFED_WHEEL_BLOB", "").strip():
            raise
        say(f"{exc}; trying BATCHFED_WHEEL_BLOB with the identity")
        blob_env = {k: v for k, v in env.items() if k != "BATCHFED_WHEEL_URL"}
        return download_wheel(wheel_source(blob_env), blob_env, folder)


def download_wheel(src: Source, env: Mapping[str, str], folder: Path) -> Path:
    """Fetch the wheel, check its sha256, save it under its own file name in ``folder``."""
    name = src.file_name
    data = fetch(src, env, "the wheel")
    digest = hashlib.sha256(data).hexdigest()
    expected = env.get("BATCHFED_WHEEL_SHA256", "").strip().lower() or _sha_in_path(src)
    if expected and digest != expected:
        raise BootstrapError(f"the wheel {name} from {src.shown} has sha256 {digest}, expected {expected}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    say(f"fetched {name} ({len(data)} bytes, sha256 {digest}){'' if expected else ' (no sha256 to check against)'}")
    return path


def _sha_in_path(src: Source) -> str:
    """The content address of a blob named ``…/<sha256>/<file>`` (how deploy/wheel.py names it)."""
    segments = urlsplit(src.url).path.rstrip("/").split("/")
    return segments[-2] if len(segments) >= 2 and _SHA.match(segments[-2]) else ""


def prepare_python(env: Mapping[str, str]) -> str:
    """The Python to install into and run the proxy with: a venv (made unless it exists),
    or this interpreter with ``BATCHFED_VENV=none``."""
    venv_dir = env.get("BATCHFED_VENV", "").strip() or "/opt/batchfed/venv"
    if venv_dir.lower() == "none":
        return sys.executable
    python = Path(venv_dir) / "bin" / "python"
    if not python.exists():
        say(f"creating the venv {venv_dir}")
        run_step([sys.executable, "-m", "venv", venv_dir], f"creating the venv {venv_dir}")
    return str(python)


def install(python: str, wheel: Path, env: Mapping[str, str]) -> None:
    """Install exactly this wheel (even over the same version), then its dependencies
    unless the extra pip arguments say ``--no-deps``."""
    try:
        extra = shlex.split(env.get("BATCHFED_PIP_ARGS", ""))
    except ValueError as exc:
        raise BootstrapError(f"BATCHFED_PIP_ARGS: {exc}") from None
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"]
    run_step([*pip, "--force-reinstall", "--no-deps", *extra, str(wheel)], f"installing {wheel.name}")
    if "--no-deps" not in extra:
        run_step([*pip, *extra, str(wheel)], f"installing the dependencies of {wheel.name}")
    say(f"installed {wheel.name} into {python}")


def run_step(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False)  # its output: the container's log
    if proc.returncode != 0:
        raise BootstrapError(f"{what} failed ({Path(cmd[0]).name} exited {proc.returncode})")


def store_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """``store:`` of the workspace's settings.yaml: the Azure store on the federation's account."""
    azure: dict[str, Any] = {"prefix": env.get("BATCHFED_STORE_PREFIX", "").strip() or "batchfed"}
    account = env.get("BATCHFED_STORE_ACCOUNT", "").strip()
    if account:
        azure["account_name"] = account
    for service in ("table", "queue", "blob"):
        endpoint = env.get(f"BATCHFED_STORE_{service.upper()}_ENDPOINT", "").strip()
        if endpoint:
            azure[f"{service}_endpoint"] = endpoint
    # the connection string itself stays in the environment: settings files never hold secrets
    azure["credential"] = "connection_string" if env.get("BATCHFED_STORAGE_CONNECTION_STRING") else "default"
    if azure["credential"] == "default" and not account:
        raise BootstrapError("BATCHFED_STORE_ACCOUNT must be set (the federation's storage account)")
    settings: dict[str, Any] = {"store": {"backend": "azure", "azure": azure}}
    accounts = data_accounts(env)
    if accounts:
        settings["storage_accounts"] = accounts
    return settings


def data_accounts(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``storage_accounts:`` from ``BATCHFED_STORAGE_ACCOUNTS``: names, URLs and regions only,
    so each account is reached with the container's identity."""
    raw = env.get("BATCHFED_STORAGE_ACCOUNTS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise BootstrapError("BATCHFED_STORAGE_ACCOUNTS: not JSON (expected {name: {account_url, location}})") from None
    if not isinstance(value, dict):
        raise BootstrapError("BATCHFED_STORAGE_ACCOUNTS: expected a JSON object {name: {account_url, location}}")
    for name, entry in value.items():
        if not isinstance(entry, dict) or set(entry) - {"account_url", "location"}:
            raise BootstrapError(f"BATCHFED_STORAGE_ACCOUNTS: {name}: only account_url and location may be given")
        if not isinstance(entry.get("account_url"), str) or not entry["account_url"]:
            raise BootstrapError(f"BATCHFED_STORAGE_ACCOUNTS: {name}: account_url is required")
    return value


def write_workspace(env: Mapping[str, str], settings: dict[str, Any]) -> Path:
    """Create the workspace and write its settings.yaml (JSON, which is YAML too), owner-only."""
    home = Path(env.get("BATCHFED_HOME", "").strip() or "/var/lib/batchfed")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = home / "settings.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(settings, fh, indent=2)
            fh.write("\n")
    except OSError as exc:
        raise BootstrapError(f"{home}: cannot write the workspace: {exc.strerror}") from None
    return home


def federation_yaml(src: Source | None, env: Mapping[str, str], home: Path) -> Path | None:
    local = env.get("BATCHFED_FEDERATION_YAML_FILE", "").strip()
    if local:
        try:
            text = Path(local).read_bytes()
        except OSError as exc:
            raise BootstrapError(f"BATCHFED_FEDERATION_YAML_FILE = {local!r}: cannot read: {exc.strerror}") from None
        path = home / "federation.yaml"
        path.write_bytes(text)
        say(f"federation.yaml from {local}")
        return path
    if src is None:
        return None
    path = home / "federation.yaml"
    path.write_bytes(fetch(src, env, "federation.yaml"))
    say(f"fetched federation.yaml from {src.shown}")
    return path


def proxy_id(env: Mapping[str, str]) -> str:
    given = env.get("BATCHFED_PROXY_ID", "").strip()
    if given:
        return given
    host = re.sub(r"[^a-z0-9-]", "-", socket.gethostname().lower()).strip("-")
    return f"proxy-{host or 'aci'}"


def run_proxy(python: str, home: Path, pid: str, config: Path | None) -> int:
    """The proxy in the foreground; SIGTERM and SIGINT are passed on, its exit code returned."""
    cmd = [python, "-m", "batchfed_lab.proxy", "run", "--workspace", str(home), "--proxy-id", pid]
    if config is not None:
        cmd += ["--config", str(config)]
    holder: dict[str, subprocess.Popen[bytes]] = {}
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        proc = holder.get("proc")
        if proc is None:
            pending.append(signum)  # arrived before the proxy started: passed on once it has
            return
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    say(f"starting proxy {pid}")
    holder["proc"] = proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, cwd=str(home))
    for signum in pending:
        proc.send_signal(signum)
    code = proc.wait()
    say(f"proxy {pid} exited ({code})")
    return 128 - code if code < 0 else code


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        # every variable is checked before anything is written or downloaded
        settings = store_settings(env)
        wheel_src = wheel_source(env)
        federation_src = source(env, "BATCHFED_FEDERATION_YAML", required=False)
        home = write_workspace(env, settings)
        wheel = download_wheel_or_fall_back(wheel_src, env, home / "downloads")
        config = federation_yaml(federation_src, env, home)
        python = prepare_python(env)
        install(python, wheel, env)
        return run_proxy(python, home, proxy_id(env), config)
    except BootstrapError as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
