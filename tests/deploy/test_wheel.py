"""The wheel of the running version: built from this tree, uploaded under its content
address, read through a short-lived read-only SAS."""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.request
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobClient, BlobServiceClient, UserDelegationKey

from batchfed_lab._version import __version__
from batchfed_lab.deploy import wheel
from batchfed_lab.deploy.wheel import read_sas, upload_wheel
from batchfed_lab.errors import ProxyError


def test_the_wheel_of_this_tree_holds_the_running_version_and_the_bootstrap(wheel_file: Path) -> None:
    assert wheel_file.name == f"batchfed_lab-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel_file).namelist()
    assert zipfile.ZipFile(wheel_file).read("batchfed_lab/deploy/bootstrap.py") == wheel.bootstrap_script().read_bytes()
    assert "batchfed_lab/proxy/__main__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_a_wheel_file_name_without_its_parts_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "proxy.whl"
    bad.write_bytes(b"x")
    with pytest.raises(ProxyError, match=r"proxy\.whl: not a wheel file name"):
        wheel.blob_name_for(bad)


def _container(azurite):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.get_container_client(f"wheels{uuid.uuid4().hex[:10]}")


@pytest.mark.azurite
def test_the_upload_is_content_addressed_and_idempotent(azurite, wheel_file: Path, tmp_path: Path) -> None:
    container = _container(azurite)
    sha = hashlib.sha256(wheel_file.read_bytes()).hexdigest()
    first = upload_wheel(container, wheel_file)
    again = upload_wheel(container, wheel_file)
    assert first == again == f"wheels/{__version__}/{sha}/{wheel_file.name}"
    assert [b.name for b in container.list_blobs()] == [first]
    assert container.download_blob(first).readall() == wheel_file.read_bytes()
    changed = tmp_path / wheel_file.name
    changed.write_bytes(wheel_file.read_bytes() + b"\0")
    assert upload_wheel(container, changed) != first  # other bytes, other blob: nothing overwritten
    assert container.download_blob(first).readall() == wheel_file.read_bytes()


@pytest.mark.azurite
def test_the_key_sas_reads_the_blob_for_its_minutes_and_writes_nothing(azurite, wheel_file: Path) -> None:
    container = _container(azurite)
    blob = container.get_blob_client(upload_wheel(container, wheel_file))
    url = read_sas(blob, minutes=10)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["sp"] == "r"
    expiry = datetime.fromisoformat(query["se"].replace("Z", "+00:00"))
    assert timedelta(minutes=9) < expiry - datetime.now(timezone.utc) <= timedelta(minutes=10)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == wheel_file.read_bytes()
    put = urllib.request.Request(url, data=b"evil", method="PUT", headers={"x-ms-blob-type": "BlockBlob"})
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(put, timeout=10)
    assert denied.value.code == 403
    assert container.download_blob(blob.blob_name).readall() == wheel_file.read_bytes()


class _TokenCredential:
    def get_token(self, *scopes: str, **kwargs: object) -> object:
        raise AssertionError("a SAS is signed locally: no token is needed for it")


def test_a_token_credential_gets_a_user_delegation_sas(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, datetime, datetime]] = []
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    key.signed_service, key.signed_version = "b", "2025-01-05"
    key.value = base64.b64encode(b"k" * 32).decode()

    def fake_key(self: BlobServiceClient, start: datetime, expiry: datetime, **kwargs: object) -> UserDelegationKey:
        asked.append((self.url, start, expiry))
        key.signed_start, key.signed_expiry = start.strftime("%Y-%m-%dT%H:%M:%SZ"), expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        return key

    monkeypatch.setattr(BlobServiceClient, "get_user_delegation_key", fake_key)
    client = BlobClient(
        "https://fedstore.blob.core.windows.net",
        "deploy",
        "wheels/0.1.0/ab/x-0.1.0-py3-none-any.whl",
        credential=_TokenCredential(),
    )
    url = read_sas(client, minutes=15)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith("https://fedstore.blob.core.windows.net/deploy/wheels/0.1.0/ab/x-0.1.0-py3-none-any.whl?")
    assert query["sp"] == "r" and query["skoid"] == key.signed_oid and "sig" in query
    ((service_url, start, expiry),) = asked
    assert service_url.rstrip("/") == "https://fedstore.blob.core.windows.net"
    assert timedelta(minutes=19) < expiry - start <= timedelta(minutes=20)  # 15 + the clock-skew margin


def test_the_service_url_keeps_azurites_path_style_account() -> None:
    client = BlobClient("http://127.0.0.1:10000/devstoreaccount1", "deploy", "wheels/a b/x.whl", credential=None)
    assert wheel._service_url(client) == "http://127.0.0.1:10000/devstoreaccount1"


def test_a_client_with_neither_key_nor_token_cannot_sign() -> None:
    client = BlobClient("https://fedstore.blob.core.windows.net", "deploy", "x.whl", credential=None)
    with pytest.raises(ProxyError, match="neither a key nor a token credential"):
        read_sas(client, minutes=5)
    with pytest.raises(ValueError, match="minutes = 0"):
        read_sas(client, minutes=0)
