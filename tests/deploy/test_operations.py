"""create / destroy against a fake Azure: what is called, in which order, what is shown,
and that no SAS ever reaches the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchfed_lab.config.workspace import (
    AzureStoreSettings,
    StorageAccountSettings,
    StoreSettings,
    Workspace,
    WorkspaceSettings,
    open_workspace,
)
from batchfed_lab.deploy import create, destroy
from batchfed_lab.deploy.template import REDACTED, dumps
from batchfed_lab.errors import ConfigError
from batchfed_lab.store import Store, open_store
from deploy.conftest import BOOTSTRAP, SAS_URL, FakeAzure


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(open_workspace(tmp_path / "sqlite"))
    s.create_federation("research")
    s.add_pool("research", "https://acctweu.westeurope.batch.azure.com", "general", account="acctweu", location="westeurope")
    yield s
    s.close()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    settings = WorkspaceSettings(store=StoreSettings(backend="azure", azure=AzureStoreSettings(account_name="fedstore")))
    return Workspace(tmp_path / "ws", settings)


def text_of(report) -> str:
    return dumps(report.document) + "\n".join(report.lines + report.warnings)


def test_what_if_shows_everything_and_calls_no_azure(
    ws: Workspace, store: Store, fed_yaml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchfed_lab.deploy import operations

    def no_azure(*args: object) -> FakeAzure:
        raise AssertionError("--what-if without a login must not reach Azure")

    monkeypatch.setattr(operations, "_default_azure", no_azure)
    report = create(ws, store, fed_yaml, standby=1, what_if=True)
    assert report.what_if
    doc = json.loads(dumps(report.document))
    assert [g["name"] for g in doc["container_groups"]] == ["fedproxy-aci000", "fedproxy-aci001"]
    assert doc["parameters"]["wheelUrl"] == {"value": REDACTED}
    assert "bootstrap.py" in doc["parameters"]["bootstrapScript"]["value"]
    # storage ×3, the federation's Batch account and the one federation.yaml lists, per proxy
    assert len(doc["role_assignments"]) == 2 * 5
    assert {r["scope"] for r in doc["role_assignments"]} >= {
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/fed-rg/providers/Microsoft.Batch/batchAccounts/acctweu"
    }
    assert "arm_what_if" not in doc
    assert any("ARM what-if skipped" in w for w in report.warnings)


def test_what_if_with_a_login_also_runs_arm_what_if(ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure) -> None:
    report = create(ws, store, fed_yaml, what_if=True, azure=fake.factory)
    assert [c[0] for c in fake.calls] == ["connect", "what_if"]
    assert report.document["arm_what_if"][0] == {"change": "Create", "resource": "fedproxy-aci000"}
    assert "SECRETSIG" not in text_of(report)


def test_create_uploads_the_wheel_then_deploys_and_never_shows_the_sas(
    ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure
) -> None:
    report = create(ws, store, fed_yaml, azure=fake.factory)
    assert [c[0] for c in fake.calls] == ["connect", "ensure_resource_group", "upload_artifacts", "deploy"]
    assert fake.calls[2][1] == ("batchfed-deploy", 60)
    assert fake.parameters is not None and fake.parameters["wheelUrl"] == {"value": SAS_URL}
    assert fake.parameters["wheelBlob"] == {"value": "batchfed_lab-1-py3-none-any.whl"}
    import base64

    assert base64.b64decode(fake.parameters["bootstrapScript"]["value"]) == BOOTSTRAP
    assert base64.b64decode(fake.parameters["federationYaml"]["value"]) == fed_yaml.read_bytes()
    shown = text_of(report)
    assert "SECRETSIG" not in shown and "sig=" not in shown
    assert "container group fedproxy-aci000 (leader) deployed" in report.lines


def test_destroy_what_if_lists_groups_and_role_assignments_offline(ws: Workspace, store: Store, fed_yaml: Path) -> None:
    report = destroy(ws, store, fed_yaml, standby=1, what_if=True)
    text = "\n".join(report.lines)
    assert (
        "would delete container group /subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/fed-rg/providers/Microsoft.ContainerInstance/containerGroups/fedproxy-aci001"
        in text
    )
    assert text.count("would delete role assignment") == 2 * 5
    assert "federation data is kept" in text
    assert report.document["federations_purged"] == []


def test_destroy_removes_roles_then_groups_and_keeps_federation_data(
    ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure
) -> None:
    fake.existing = ["fedproxy-aci000", "fedproxy-aci001", "otherproxy-aci007"]  # a standby not asked for: found
    report = destroy(ws, store, fed_yaml, azure=fake.factory)
    deleted = [c[1] for c in fake.calls if c[0] == "delete"]
    roles = [d for d in deleted if "/roleAssignments/" in d]
    groups = [d for d in deleted if "/containerGroups/" in d]
    assert len(roles) == 2 * 5 and [g.rsplit("/", 1)[1] for g in groups] == ["fedproxy-aci000", "fedproxy-aci001"]
    assert deleted == roles + groups  # no group goes while one of its roles is still assigned
    assert ("delete_container", "batchfed-deploy") in fake.calls
    assert [f.id for f in store.list_federations()] == ["research"]
    assert "federation data kept (--purge removes it)" in report.lines


def test_destroy_purge_also_destroys_the_federations(ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure) -> None:
    report = destroy(ws, store, fed_yaml, purge=True, azure=fake.factory)
    assert store.list_federations() == []
    assert "federation research destroyed" in report.lines


def test_a_proxy_on_azure_needs_the_azure_store(tmp_path: Path, store: Store, fed_yaml: Path) -> None:
    local = Workspace(tmp_path / "local", WorkspaceSettings())
    with pytest.raises(ConfigError, match=r"store\.backend = sqlite: a proxy on Azure needs the azure store"):
        create(local, store, fed_yaml, what_if=True)


def test_bad_federation_yaml_names_file_key_and_value(ws: Workspace, store: Store, fed_yaml: Path) -> None:
    fed_yaml.write_text(fed_yaml.read_text().replace("location: westeurope", "location: west europe"))
    with pytest.raises(ConfigError) as err:
        create(ws, store, fed_yaml, what_if=True)
    assert str(err.value).startswith("federation.yaml: federation.location = 'west europe': ")


def with_data(ws: Workspace, **accounts: StorageAccountSettings) -> Workspace:
    return Workspace(ws.path, ws.settings.model_copy(update={"storage_accounts": accounts}))


RESEARCH = StorageAccountSettings(account_url="https://researchdata.blob.core.windows.net", location="westeurope")


def test_what_if_and_destroy_cover_the_data_accounts_roles(ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure) -> None:
    data_ws = with_data(ws, research=RESEARCH)
    report = create(data_ws, store, fed_yaml, what_if=True)
    on_data = [r for r in report.document["role_assignments"] if r["scope"].endswith("/storageAccounts/researchdata")]
    assert sorted(r["role"] for r in on_data) == ["Storage Blob Data Contributor", "Storage Blob Delegator"]
    planned = destroy(data_ws, store, fed_yaml, what_if=True)
    assert sum("would delete role assignment Storage Blob Delegator on" in line for line in planned.lines) == 1
    destroy(data_ws, store, fed_yaml, azure=fake.factory)
    deleted = [c[1] for c in fake.calls if c[0] == "delete"]
    assert {r["id"] for r in on_data} <= set(deleted)


def test_create_refuses_a_data_account_the_deployed_proxy_cannot_sign_in_to(
    ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure
) -> None:
    keyed = StorageAccountSettings(account_url="https://keyed.blob.core.windows.net", connection_string_env="KEYED_CONN")
    with pytest.raises(ConfigError) as err:
        create(with_data(ws, keyed=keyed), store, fed_yaml, azure=fake.factory)
    assert f"{ws.path / 'settings.yaml'}: storage_accounts.keyed.connection_string_env = KEYED_CONN" in str(err.value)
    assert fake.calls == []  # refused before anything is created


def test_destroy_is_not_held_back_by_an_account_create_would_refuse(
    ws: Workspace, store: Store, fed_yaml: Path, fake: FakeAzure
) -> None:
    keyed = StorageAccountSettings(account_url="https://keyed.blob.core.windows.net", connection_string_env="KEYED_CONN")
    report = destroy(with_data(ws, research=RESEARCH, keyed=keyed), store, fed_yaml, azure=fake.factory)
    scopes = {r["scope"].rsplit("/", 1)[1] for r in report.document["role_assignments"]}
    assert "researchdata" in scopes and "keyed" not in scopes  # it never got a role: nothing to remove


def test_what_if_names_the_data_accounts_the_proxy_gets(ws: Workspace, store: Store, fed_yaml: Path) -> None:
    report = create(with_data(ws, research=RESEARCH), store, fed_yaml, what_if=True)
    assert report.document["data_accounts"] == [
        {
            "name": "research",
            "account_url": "https://researchdata.blob.core.windows.net",
            "location": "westeurope",
            "id": "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/fed-rg/providers/Microsoft.Storage/storageAccounts/researchdata",
        }
    ]
