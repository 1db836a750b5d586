"""The proxy's container bootstrap, run for real: the wheel of this tree is uploaded to an
Azurite container, bootstrap.py fetches it through a read-only SAS, installs it into a fresh
venv and starts the proxy on the Azure store (Azurite); a client of another workspace on the
same store submits a job, the proxy places it on localbatch, and its log lines reach the
append blob. SIGTERM to the bootstrap stops the proxy gracefully.

The venv sees this interpreter's site-packages through a ``.pth`` line (the dependencies are
installed already; nothing is downloaded): its own copy of batchfed_lab is the wheel's.
"""

from __future__ import annotations

import json
import os
import signal
import site
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from stack import FAST_FEDERATION_YAML, PoolDef, job_yaml, wait_until, workspace_pids

from batchfed_lab.batch.adapter import close_accounts
from batchfed_lab.client import Client, connect
from batchfed_lab.config import load_pool
from batchfed_lab.deploy import bootstrap
from batchfed_lab.deploy.wheel import read_sas, upload_wheel
from batchfed_lab.localbatch import auth, control
from batchfed_lab.store import ActionState

pytestmark = pytest.mark.azurite

PROXY_ID = "aci-boot-1"
POOL = PoolDef("we-small", "lab1", "westeurope", dedicated=1, slots=2)
FEDERATION_YAML = FAST_FEDERATION_YAML + "    logging: {level: info, persistence: true}\n"


def _venv_on_this_interpreters_packages(path: Path) -> Path:
    """A venv without pip whose site-packages also list this interpreter's (a .pth line)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    (own,) = (path / "lib").glob("python3*/site-packages")
    (own / "_batchfed_test_parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path / "bin" / "python"


@contextmanager
def _localbatch_federation(root: Path, prefix: str) -> Iterator[tuple[Client, str]]:
    """A client workspace on the Azurite store, localbatch with one pool, federation ``boot``."""
    root.mkdir(mode=0o700)
    (root / "settings.yaml").write_text(
        f"store:\n  backend: azure\n  azure: {{credential: connection_string, prefix: {prefix}}}\n"
    )
    client = connect(root)
    try:
        control.start(client.workspace, allocation_delay_ms=20)
        url = control.account_url(POOL.account, client.workspace)
        account = client.account(url)
        account.create_pool(load_pool(POOL.spec()).pool_specification)
        wait_until(lambda: [p for p in account.list_pools() if p.allocation_state == "steady"], "the pool to be steady", 30)
        client.create_federation("boot")
        client.add_pools("boot", pool_ids=[POOL.id], batch_service_url=url)
        yield client, auth.load_or_create_key(client.workspace.localbatch_dir)
    finally:
        try:
            control.stop(client.workspace)
        finally:
            client.close()
            close_accounts()


def _bootstrap_env(azurite, prefix: str, tmp_path: Path, urls: dict[str, str], localbatch_key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "BATCHFED_HOME") and not k.startswith("BATCHFED_BATCH_KEY_")
    }
    return {
        **env,
        "BATCHFED_WHEEL_URL": urls["wheel"],
        "BATCHFED_FEDERATION_YAML_URL": urls["federation"],
        "BATCHFED_STORE_ACCOUNT": "devstoreaccount1",
        "BATCHFED_STORE_PREFIX": prefix,
        "BATCHFED_STORE_TABLE_ENDPOINT": azurite.endpoint("table"),
        "BATCHFED_STORE_QUEUE_ENDPOINT": azurite.endpoint("queue"),
        "BATCHFED_STORE_BLOB_ENDPOINT": azurite.endpoint("blob"),
        "BATCHFED_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "BATCHFED_HOME": str(tmp_path / "proxy-ws"),
        "BATCHFED_VENV": str(tmp_path / "venv"),
        "BATCHFED_PIP_ARGS": "--no-index --no-deps",
        "BATCHFED_PROXY_ID": PROXY_ID,
        "BATCHFED_BATCH_KEY_LAB1": localbatch_key,  # the container's key to the Batch account
    }


def _proxy_pid(home: Path) -> int | None:
    try:
        return int(json.loads((home / "runtime" / f"proxy-{PROXY_ID}.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _kill(pid: int | None) -> None:
    if pid is not None:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _log_text(container) -> str:
    return "".join(
        container.download_blob(b.name).readall().decode() for b in container.list_blobs(name_starts_with=f"{PROXY_ID}/")
    )


def test_the_bootstrap_installs_the_wheel_from_a_blob_and_its_proxy_places_a_job(
    azurite, wheel_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"boot{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BATCHFED_STORAGE_CONNECTION_STRING", azurite.connection_string)
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    deploy = blobs.get_container_client(f"{prefix}-deploy")
    wheel_blob = upload_wheel(deploy, wheel_file)
    deploy.upload_blob("federation.yaml", FEDERATION_YAML.encode())
    urls = {
        "wheel": read_sas(deploy.get_blob_client(wheel_blob), 10),
        "federation": read_sas(deploy.get_blob_client("federation.yaml"), 10),
    }
    python = _venv_on_this_interpreters_packages(tmp_path / "venv")
    home = tmp_path / "proxy-ws"
    out = tmp_path / "bootstrap.out"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with _localbatch_federation(tmp_path / "client", prefix) as (client, key), out.open("wb") as sink:
            env = _bootstrap_env(azurite, prefix, tmp_path, urls, key)
            # -I -S: no site-packages, as in a stock image before anything is installed
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", bootstrap.__file__],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            wait_until(lambda: _proxy_pid(home) or proc.poll() is not None, "the bootstrapped proxy to start", 90)
            assert proc.poll() is None, out.read_text()
            # the proxy runs on the venv's Python, which imports the wheel's copy of the package
            assert Path(f"/proc/{_proxy_pid(home)}/cmdline").read_bytes().split(b"\0")[0] == str(python).encode()
            probe = [str(python), "-c", "import batchfed_lab; print(batchfed_lab.__file__)"]
            installed = subprocess.run(probe, env=env, cwd=home, capture_output=True, text=True, timeout=60)
            assert installed.stdout.startswith(str(tmp_path / "venv" / "lib")), installed

            sub = client.submit("boot", job_yaml("boot-job-1"))
            (action,) = sub.wait(timeout=60)
            assert action.state is ActionState.PLACED, (action, out.read_text())
            assert PROXY_ID in {r.proxy_id for r in client.store.list_proxies()}

            logs = client.store.log_container()
            wait_until(
                lambda: "boot-job-1 placed on we-small" in _log_text(logs), "the placement's log line in the append blob", 30
            )

            proxy_pid = _proxy_pid(home)
            proc.send_signal(signal.SIGTERM)  # as ACI stops a container: the bootstrap passes it on
            assert proc.wait(timeout=60) == 0, out.read_text()
            wait_until(lambda: f"proxy {PROXY_ID} stopped" in _log_text(logs), "the proxy's stop line in the append blob", 10)
            assert proxy_pid is not None and not _alive(proxy_pid)
        text = out.read_text()
        assert "batchfed-bootstrap: fetched batchfed_lab-" in text and "batchfed-bootstrap: proxy aci-boot-1 exited (0)" in text
        assert "sig=" not in text and "AccountKey" not in text
    finally:
        if proc is not None and proc.poll() is None:
            _kill(_proxy_pid(home))
            _kill(proc.pid)
            proc.wait(10)
        for pid in workspace_pids(tmp_path):
            _kill(pid)
    assert workspace_pids(tmp_path) == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
