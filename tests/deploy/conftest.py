"""Fixtures of the deploy tests: a federation.yaml for deployments, a fake Azure, the wheel of
this tree (built once), and a fake managed-identity token endpoint with a blob endpoint that
accepts its token, on loopback.

Nothing here reaches Azure: :class:`FakeAzure` stands in for
:class:`batchfed_lab.deploy.AzureApi` and records every call in order.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deploy_fakes import FakeIdentity, serving

from batchfed_lab.deploy.wheel import build_wheel

SUB = "11111111-2222-3333-4444-555555555555"
OTHER_SUB = "99999999-8888-7777-6666-555555555555"
BOOTSTRAP = b"# stands in for batchfed_lab/deploy/bootstrap.py\nprint('bootstrap')\n"
SAS_URL = "https://store.blob.core.windows.net/batchfed-deploy/batchfed_lab-1-py3-none-any.whl?sv=2024&sig=SECRETSIG"

FEDERATION_YAML = f"""\
federation:
  location: westeurope
  resource_group: fed-rg
  hostname_prefix: fedproxy
  vm_size: STANDARD_D2S_V3
  deployment:
    subscription_id: {SUB}
    batch_account_ids:
      - /subscriptions/{OTHER_SUB}/resourceGroups/batch-eus/providers/Microsoft.Batch/batchAccounts/accteus
  proxy_options:
    logging:
      persistence: true
"""


@dataclass
class FakeAzure:
    """Records calls; ``existing`` holds the container groups ``find_groups`` reports."""

    existing: list[str] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] | None = None

    def ensure_resource_group(self, name: str, location: str) -> bool:
        self.calls.append(("ensure_resource_group", (name, location)))
        return True

    def what_if(
        self, resource_group: str, deployment: str, template: dict[str, Any], parameters: dict[str, Any]
    ) -> list[dict[str, str]]:
        self.calls.append(("what_if", (resource_group, deployment)))
        return [{"change": "Create", "resource": r["name"]} for r in template["resources"]]

    def deploy(
        self, resource_group: str, deployment: str, template: dict[str, Any], parameters: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append(("deploy", (resource_group, deployment)))
        self.parameters = parameters
        return {"fedproxy_aci000_principalId": "00000000-0000-0000-0000-00000000abcd"}

    def find_groups(self, resource_group: str, prefix: str) -> list[str]:
        self.calls.append(("find_groups", (resource_group, prefix)))
        return list(self.existing)

    def delete(self, resource_id: str) -> bool:
        self.calls.append(("delete", resource_id))
        return True

    def delete_deployment(self, resource_group: str, deployment: str) -> None:
        self.calls.append(("delete_deployment", (resource_group, deployment)))

    def upload_artifacts(self, container: str, sas_minutes: int) -> tuple[str, str]:
        self.calls.append(("upload_artifacts", (container, sas_minutes)))
        return "batchfed_lab-1-py3-none-any.whl", SAS_URL

    def delete_container(self, container: str) -> bool:
        self.calls.append(("delete_container", container))
        return True

    def factory(self, subscription: str, settings: Any) -> FakeAzure:
        self.calls.append(("connect", subscription))
        return self


@pytest.fixture(autouse=True)
def bootstrap(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A stand-in bootstrap script (the real one is another part's file) and no Azure login."""
    from batchfed_lab.deploy import operations

    monkeypatch.setattr(operations, "bootstrap_source", lambda: BOOTSTRAP)
    monkeypatch.setenv("BATCHFED_ARM_WHAT_IF", "0")
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    return BOOTSTRAP


@pytest.fixture
def fed_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "federation.yaml"
    path.write_text(FEDERATION_YAML, encoding="utf-8")
    return path


@pytest.fixture
def fake() -> FakeAzure:
    return FakeAzure()


@pytest.fixture(scope="session")
def wheel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def fake_identity() -> Iterator[FakeIdentity]:
    with serving() as fake:
        yield fake
