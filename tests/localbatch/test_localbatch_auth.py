"""Shared-key auth as Batch checks it, and several accounts on one server."""

from __future__ import annotations

import datetime
import http.client
import json
import stat

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batchfed_lab.localbatch import control

from .lb_helpers import make_job, make_pool


def _raw_get(info: control.LocalBatchInfo, path: str, headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(info.host, info.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_unsigned_request_is_403(localbatch, account):
    status, body = _raw_get(localbatch, f"/accounts/{account}/jobs?api-version=2025-06-01")
    assert status == 403 and body["code"] == "AuthenticationFailed"
    assert body["message"]["lang"] == "en-US" and body["message"]["value"].startswith("Server failed to authenticate")
    status, body = _raw_get(
        localbatch,
        f"/accounts/{account}/jobs?api-version=2025-06-01",
        {"Authorization": f"SharedKey {account}:AAAA", "ocp-date": "Sun, 01 Jan 2040 00:00:00 GMT"},
    )
    assert status == 403 and body["code"] == "AuthenticationFailed"


def test_forged_and_mismatched_signatures_are_403(localbatch, lb_workspace, client_for, account):
    forged = BatchClient(localbatch.account_url(account), AzureNamedKeyCredential(account, "Zm9yZ2VkIGtleQ=="), retry_total=0)
    with pytest.raises(HttpResponseError) as exc:
        forged.get_job("anything")
    assert exc.value.status_code == 403 and exc.value.error.code == "AuthenticationFailed"

    _url, cred = control.credentials(account, lb_workspace)
    other = f"{account}x"  # the right key, signed for one account, sent to another
    crossed = BatchClient(localbatch.account_url(other), AzureNamedKeyCredential(account, cred.named_key.key), retry_total=0)
    with pytest.raises(HttpResponseError) as exc:
        list(crossed.list_pools())
    assert exc.value.status_code == 403

    client = client_for(account)
    stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    with pytest.raises(HttpResponseError) as exc:
        list(client.list_pools(ocp_date=stale))
    assert exc.value.status_code == 403
    assert list(client.list_pools(ocp_date=datetime.datetime.now(datetime.timezone.utc))) == []


def test_key_and_discovery_files(localbatch, lb_workspace):
    key_file = control.key_file(lb_workspace)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    discovery = control.discovery_path(lb_workspace)
    assert stat.S_IMODE(discovery.stat().st_mode) == 0o600
    record = json.loads(discovery.read_text())
    assert record["pid"] == localbatch.pid and record["url"] == f"http://127.0.0.1:{localbatch.port}"
    assert record["account_url_template"] == f"http://127.0.0.1:{localbatch.port}/accounts/{{account}}"
    assert {"pid", "url", "port", "version", "started", "workspace", "key_file", "log_file"} <= record.keys()
    key = key_file.read_text().strip()
    assert key not in discovery.read_text()
    assert key not in control.log_path(lb_workspace).read_text()


def test_two_accounts_on_one_server(client_for, account):
    east, west = client_for(account), client_for(account + "b")
    # one federation on one machine: two accounts, three locations
    make_pool(east, "p1", dedicated=1, wait=False, metadata=[bm.BatchMetadataItem(name="batchfed_location", value="eastus")])
    make_pool(east, "p2", dedicated=1, wait=False, metadata=[bm.BatchMetadataItem(name="batchfed_location", value="westus2")])
    make_pool(west, "p1", dedicated=1, wait=False, metadata=[bm.BatchMetadataItem(name="batchfed_location", value="westeurope")])
    locations = {(c, p.id): p.metadata[0].value for c, cl in (("east", east), ("west", west)) for p in cl.list_pools()}
    assert locations == {("east", "p1"): "eastus", ("east", "p2"): "westus2", ("west", "p1"): "westeurope"}
    make_job(east, "same-id", "p1")
    with pytest.raises(ResourceNotFoundError):
        west.get_job("same-id")
    make_job(west, "same-id", "p1")  # ids are per account
    assert [j.id for j in west.list_jobs()] == ["same-id"]
    assert {c.pool_id for c in east.list_pool_node_counts()} == {"p1", "p2"}
    assert {c.pool_id for c in west.list_pool_node_counts()} == {"p1"}
