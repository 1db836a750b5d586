"""Opt-in, against real Azure: create the proxy, place a job through it, read its log,
destroy it. Skipped unless every variable below is set (docs/azure.md, "Deploying the proxy"):

    BATCHFED_E2E_AZURE=1            opt in (it costs money: a container group for minutes)
    BATCHFED_E2E_HOME               a workspace whose settings.yaml names the storage account
                                    (store.backend: azure, credential: default)
    BATCHFED_E2E_FEDERATION_YAML    federation.yaml with location, resource_group, deployment …
    BATCHFED_E2E_FEDERATION         a federation of that store with at least one Azure pool
    AZURE_SUBSCRIPTION_ID           unless federation.yaml sets deployment.subscription_id

and an Azure login (az login, or AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET)
allowed to create container groups and role assignments (Owner, or Contributor plus Role
Based Access Control Administrator, on the resource groups involved).
"""

from __future__ import annotations

import os
import uuid

import pytest

NEEDED = ("BATCHFED_E2E_AZURE", "BATCHFED_E2E_HOME", "BATCHFED_E2E_FEDERATION_YAML", "BATCHFED_E2E_FEDERATION")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        os.environ.get("BATCHFED_E2E_AZURE") != "1" or not all(os.environ.get(v) for v in NEEDED),
        reason="real Azure: set " + ", ".join(NEEDED) + " (docs/azure.md)",
    ),
]


@pytest.fixture(autouse=True)
def bootstrap() -> None:
    """The real bootstrap script and the real login: overrides tests/deploy/conftest.py's."""


def test_create_place_a_job_read_logs_destroy() -> None:
    from batchfed_lab import connect

    fed_yaml, fed = os.environ["BATCHFED_E2E_FEDERATION_YAML"], os.environ["BATCHFED_E2E_FEDERATION"]
    with connect(os.environ["BATCHFED_E2E_HOME"]) as client:
        try:
            created = client.proxy_create(config=fed_yaml)
            assert not created.what_if and any("deployed" in line for line in created.lines)
            job = "e2e-" + uuid.uuid4().hex[:8]
            jobs = {"job_specifications": [{"id": job, "tasks": [{"command": "/bin/sh -c 'echo deployed-proxy-ok'"}]}]}
            # the first start waits for the container, the wheel and the roles: minutes
            client.submit(fed, jobs).wait(timeout=1800)
            assert len(client.locations(fed, job)) == 1
            assert str(client.proxy_logs(200)).strip()
        finally:
            gone = client.proxy_destroy(config=fed_yaml)
            assert any("container group" in line for line in gone.lines)
