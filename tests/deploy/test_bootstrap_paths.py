"""The bootstrap's checks and fetch paths, one at a time: a missing or malformed variable,
a SAS the storage refuses, a wheel whose sha256 differs, and the managed identity's token
(IDENTITY_ENDPOINT style and IMDS style) against a fake endpoint on loopback."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import BlobServiceClient
from deploy_fakes import IDENTITY_HEADER, TOKEN, FakeIdentity

from batchfed_lab.deploy import bootstrap
from batchfed_lab.deploy.wheel import read_sas, upload_wheel

SCRIPT = Path(bootstrap.__file__)


def base_env(tmp_path: Path, **more: str) -> dict[str, str]:
    """Were a check to let a run through, it would stay in ``tmp_path`` and download nothing."""
    return {
        "BATCHFED_HOME": str(tmp_path / "ws"),
        "BATCHFED_STORE_ACCOUNT": "fedstore",
        "BATCHFED_VENV": str(tmp_path / "venv"),
        "BATCHFED_PIP_ARGS": "--no-index --no-deps",
        **more,
    }


def test_the_bootstrap_imports_only_the_standard_library() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    outside = {n for n in names if n.split(".")[0] not in sys.stdlib_module_names}
    assert outside == set()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"BATCHFED_STORE_ACCOUNT": "fedstore"}, "BATCHFED_WHEEL_URL or BATCHFED_WHEEL_BLOB must be set"),
        (
            {"BATCHFED_WHEEL_URL": "http://127.0.0.1:9/c/w-1-py3-none-any.whl"},
            "BATCHFED_STORE_ACCOUNT must be set (the federation's storage account)",
        ),
        (
            {"BATCHFED_STORE_ACCOUNT": "fedstore", "BATCHFED_WHEEL_BLOB": "fedstore/deploy"},
            "BATCHFED_WHEEL_BLOB = 'fedstore/deploy': expected <account>/<container>/<blob>",
        ),
        (
            {"BATCHFED_STORE_ACCOUNT": "fedstore", "BATCHFED_WHEEL_URL": "http://127.0.0.1:9/c/proxy.zip?sig=c2VjcmV0"},
            "BATCHFED_WHEEL_URL: the blob name must end in a wheel file name (…-py3-none-any.whl), got 'proxy.zip'",
        ),
        (
            {"BATCHFED_STORE_ACCOUNT": "fedstore", "BATCHFED_WHEEL_URL": "file:///tmp/w-1-py3-none-any.whl"},
            "BATCHFED_WHEEL_URL: expected an http(s) URL, got a file one",
        ),
    ],
    ids=["no-wheel", "no-account", "short-blob", "not-a-wheel", "not-http"],
)
def test_a_missing_or_bad_variable_is_one_line_and_writes_nothing(tmp_path: Path, env: dict[str, str], message: str) -> None:
    """Run as a stock image runs it: a bare interpreter without site-packages (-I -S)."""
    home = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT)],
        env={"PATH": "/usr/bin:/bin", "BATCHFED_HOME": str(home), "BATCHFED_VENV": str(tmp_path / "venv"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"batchfed-bootstrap: error: {message}\n"
    assert "c2VjcmV0" not in proc.stderr and not home.exists()


def _uploaded(azurite, wheel_file: Path, name: str | None = None) -> tuple[BlobServiceClient, str]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(f"deploy{uuid.uuid4().hex[:10]}")
    if name is None:
        return service, f"{container.container_name}/{upload_wheel(container, wheel_file)}"
    container.create_container()
    container.upload_blob(name, wheel_file.read_bytes())
    return service, f"{container.container_name}/{name}"


@pytest.mark.azurite
def test_a_sas_the_storage_refuses_fails_with_its_status_and_no_secret(azurite, wheel_file: Path, tmp_path: Path, capsys) -> None:
    service, path = _uploaded(azurite, wheel_file)
    container, _, blob = path.partition("/")
    url = read_sas(service.get_blob_client(container, blob), minutes=5)
    query = urlsplit(url).query
    signature = next(p for p in query.split("&") if p.startswith("sig="))
    forged = url.replace(signature, "sig=" + "A" * 43 + "%3D")  # a SAS whose signature is wrong
    assert forged != url
    assert bootstrap.main(base_env(tmp_path, BATCHFED_WHEEL_URL=forged)) == 1
    err = capsys.readouterr().err
    assert err.startswith("batchfed-bootstrap: error: downloading the wheel (BATCHFED_WHEEL_URL): HTTP 403")
    assert f"from {url.partition('?')[0]}" in err
    assert "sig=" not in err and signature[4:] not in err and "AAAA" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ws" / "downloads").exists()


@pytest.mark.azurite
def test_a_wheel_whose_sha256_differs_is_refused(azurite, wheel_file: Path, tmp_path: Path, capsys) -> None:
    real = hashlib.sha256(wheel_file.read_bytes()).hexdigest()
    service, path = _uploaded(azurite, wheel_file)
    container, _, blob = path.partition("/")
    url = read_sas(service.get_blob_client(container, blob), minutes=5)
    assert bootstrap.main(base_env(tmp_path, BATCHFED_WHEEL_URL=url, BATCHFED_WHEEL_SHA256="0" * 64)) == 1
    assert f"has sha256 {real}, expected {'0' * 64}" in capsys.readouterr().err
    # a blob whose content address (…/<sha256>/<file>) is not its content's
    service, path = _uploaded(azurite, wheel_file, f"wheels/0.1.0/{'a' * 64}/{wheel_file.name}")
    container, _, blob = path.partition("/")
    url = read_sas(service.get_blob_client(container, blob), minutes=5)
    assert bootstrap.main(base_env(tmp_path, BATCHFED_WHEEL_URL=url)) == 1
    assert f"has sha256 {real}, expected {'a' * 64}" in capsys.readouterr().err
    assert not (tmp_path / "ws" / "downloads" / wheel_file.name).exists()


def _blob_env(fake: FakeIdentity, wheel_file: Path, tmp_path: Path, **more: str) -> dict[str, str]:
    sha = hashlib.sha256(wheel_file.read_bytes()).hexdigest()
    name = f"wheels/0.1.0/{sha}/{wheel_file.name}"
    fake.blobs[f"/fedstore/deploy/{name}"] = wheel_file.read_bytes()
    return base_env(
        tmp_path, BATCHFED_WHEEL_BLOB=f"fedstore/deploy/{name}", BATCHFED_STORE_BLOB_ENDPOINT=f"{fake.base}/fedstore", **more
    )


def test_the_identity_endpoints_token_reads_the_wheel_blob(
    fake_identity: FakeIdentity, wheel_file: Path, tmp_path: Path, capsys
) -> None:
    env = _blob_env(
        fake_identity, wheel_file, tmp_path, IDENTITY_ENDPOINT=f"{fake_identity.base}/msi/token", IDENTITY_HEADER=IDENTITY_HEADER
    )
    path = bootstrap.download_wheel(bootstrap.wheel_source(env), env, tmp_path / "dl")
    assert path.name == wheel_file.name and path.read_bytes() == wheel_file.read_bytes()
    ((asked,),) = [fake_identity.token_requests]
    assert asked["path"] == "/msi/token"
    assert asked["query"] == {"resource": "https://storage.azure.com/", "api-version": "2019-08-01"}
    assert [r["auth"] for r in fake_identity.blob_requests] == [f"Bearer {TOKEN}"]
    assert TOKEN not in capsys.readouterr().err


def test_an_expired_sas_falls_back_to_the_identity_when_the_blob_is_named(
    fake_identity: FakeIdentity, wheel_file: Path, tmp_path: Path, capsys
) -> None:
    # a container group restarted after its SAS expired: the URL is refused, the blob is read
    # with the managed identity instead
    env = _blob_env(
        fake_identity, wheel_file, tmp_path, IDENTITY_ENDPOINT=f"{fake_identity.base}/msi/token", IDENTITY_HEADER=IDENTITY_HEADER
    )
    env["BATCHFED_WHEEL_URL"] = f"{fake_identity.base}/fedstore/deploy/expired/{wheel_file.name}?sig=EXPIRED"
    path = bootstrap.download_wheel_or_fall_back(bootstrap.wheel_source(env), env, tmp_path / "dl")
    assert path.read_bytes() == wheel_file.read_bytes()
    assert [r["auth"] for r in fake_identity.blob_requests] == ["", f"Bearer {TOKEN}"]
    err = capsys.readouterr().err
    assert "trying BATCHFED_WHEEL_BLOB with the identity" in err and "EXPIRED" not in err


def test_without_an_identity_endpoint_the_token_comes_from_imds(
    fake_identity: FakeIdentity, wheel_file: Path, tmp_path: Path
) -> None:
    """ACI's Linux containers: IDENTITY_HEADER may be set alone; the token comes from IMDS
    (its host moved to loopback here, as azure-identity allows)."""
    env = _blob_env(
        fake_identity,
        wheel_file,
        tmp_path,
        IDENTITY_HEADER="ignored-without-an-endpoint",
        AZURE_POD_IDENTITY_AUTHORITY_HOST=fake_identity.base,
        AZURE_CLIENT_ID="33333333-3333-3333-3333-333333333333",
    )
    path = bootstrap.download_wheel(bootstrap.wheel_source(env), env, tmp_path / "dl")
    assert path.read_bytes() == wheel_file.read_bytes()
    ((asked,),) = [fake_identity.token_requests]
    assert asked["path"] == "/metadata/identity/oauth2/token"
    assert asked["query"] == {
        "resource": "https://storage.azure.com/",
        "client_id": "33333333-3333-3333-3333-333333333333",
        "api-version": "2018-02-01",
    }


def test_an_identity_endpoint_not_ready_yet_is_asked_again_then_given_up_on(
    fake_identity: FakeIdentity, wheel_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(bootstrap.time, "sleep", waits.append)  # the back-off, without the waiting
    env = _blob_env(fake_identity, wheel_file, tmp_path, AZURE_POD_IDENTITY_AUTHORITY_HOST=fake_identity.base)
    fake_identity.busy_tokens = 2
    assert bootstrap.download_wheel(bootstrap.wheel_source(env), env, tmp_path / "dl").read_bytes() == wheel_file.read_bytes()
    assert (len(fake_identity.token_requests), waits) == (3, [1.0, 2.0])
    fake_identity.busy_tokens = 100
    with pytest.raises(bootstrap.BootstrapError, match=r"getting a managed identity token: HTTP 503 from .* \(4 attempts\)$"):
        bootstrap.identity_token(env)


def test_a_refused_token_or_blob_is_one_line_without_the_token(
    fake_identity: FakeIdentity, wheel_file: Path, tmp_path: Path, capsys
) -> None:
    env = _blob_env(
        fake_identity, wheel_file, tmp_path, IDENTITY_ENDPOINT=f"{fake_identity.base}/msi/token", IDENTITY_HEADER="wrong"
    )
    assert bootstrap.main(env) == 1
    assert capsys.readouterr().err == (
        f"batchfed-bootstrap: error: getting a managed identity token: HTTP 400 from {fake_identity.base}/msi/token\n"
    )
    env = {**env, "IDENTITY_HEADER": IDENTITY_HEADER, "BATCHFED_WHEEL_BLOB": f"fedstore/deploy/wheels/{wheel_file.name}"}
    assert bootstrap.main(env) == 1
    err = capsys.readouterr().err
    assert err == (
        "batchfed-bootstrap: error: downloading the wheel (BATCHFED_WHEEL_BLOB): HTTP 404 BlobNotFound "
        f"from {fake_identity.base}/fedstore/deploy/wheels/{wheel_file.name}\n"
    )
    assert TOKEN not in err


def test_the_workspace_settings_name_the_azure_store_and_hold_no_secret(tmp_path: Path) -> None:
    from batchfed_lab.config.workspace import open_workspace

    env = base_env(
        tmp_path,
        BATCHFED_STORE_PREFIX="fedx",
        BATCHFED_STORE_TABLE_ENDPOINT="http://127.0.0.1:9/fedstore",
        BATCHFED_STORAGE_CONNECTION_STRING="AccountName=fedstore;AccountKey=c2VjcmV0",
    )
    home = bootstrap.write_workspace(env, bootstrap.store_settings(env))
    text = (home / "settings.yaml").read_text()
    assert "c2VjcmV0" not in text and (home / "settings.yaml").stat().st_mode & 0o077 == 0
    azure = open_workspace(home).settings.store.azure
    assert (azure.account_name, azure.prefix, azure.credential) == ("fedstore", "fedx", "connection_string")
    assert azure.table_endpoint == "http://127.0.0.1:9/fedstore" and azure.blob_endpoint is None
    identity = bootstrap.store_settings(base_env(tmp_path))
    assert json.loads(json.dumps(identity))["store"]["azure"] == {
        "prefix": "batchfed",
        "account_name": "fedstore",
        "credential": "default",
    }


def test_the_data_accounts_reach_the_proxys_workspace_signing_in_with_the_identity(tmp_path: Path) -> None:
    from batchfed_lab.config.workspace import open_workspace
    from batchfed_lab.data.accounts import resolve_account

    accounts = {"research": {"account_url": "https://researchdata.blob.core.windows.net", "location": "westeurope"}}
    env = base_env(tmp_path, BATCHFED_STORAGE_ACCOUNTS=json.dumps(accounts))
    home = bootstrap.write_workspace(env, bootstrap.store_settings(env))
    research = resolve_account(open_workspace(home), "research")
    assert (research.account_url, research.region, research.auth) == (
        "https://researchdata.blob.core.windows.net",
        "westeurope",
        "token",  # DefaultAzureCredential: the container's managed identity
    )


def test_a_missing_venv_is_created_with_pip(tmp_path: Path) -> None:
    python = bootstrap.prepare_python({"BATCHFED_VENV": str(tmp_path / "venv")})
    assert python == str(tmp_path / "venv" / "bin" / "python")
    assert subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=60).returncode == 0
    assert bootstrap.prepare_python({"BATCHFED_VENV": "none"}) == sys.executable
