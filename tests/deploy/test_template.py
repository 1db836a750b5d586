"""The proxy's ARM template, checked as data: same input → the same bytes; every resource,
dependency, identity, role definition id and scope is the one the plan names."""

from __future__ import annotations

import json
import uuid

import pytest

from batchfed_lab.config import load_federation
from batchfed_lab.config.workspace import AzureStoreSettings, StorageAccountSettings
from batchfed_lab.deploy import ROLES, build_template, make_plan
from batchfed_lab.deploy.template import dumps
from batchfed_lab.errors import ConfigError
from deploy.conftest import FEDERATION_YAML, OTHER_SUB, SUB

POOL_URLS = (
    "https://acctweu.westeurope.batch.azure.com",
    "https://ACCTWEU.westeurope.batch.azure.com/",  # the same account twice: one role
    "http://127.0.0.1:40123/accounts/local",  # localbatch: not an Azure account
)
STORAGE_ID = f"/subscriptions/{SUB}/resourceGroups/fed-rg/providers/Microsoft.Storage/storageAccounts/fedstore"
WEU_ID = f"/subscriptions/{SUB}/resourceGroups/fed-rg/providers/Microsoft.Batch/batchAccounts/acctweu"
EUS_ID = f"/subscriptions/{OTHER_SUB}/resourceGroups/batch-eus/providers/Microsoft.Batch/batchAccounts/accteus"
GROUP = "Microsoft.ContainerInstance/containerGroups"
NESTED = "Microsoft.Resources/deployments"
ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


def plan(standby: int = 1, yaml: str = FEDERATION_YAML, **store: str):
    settings = AzureStoreSettings(account_name="fedstore", **store)
    return make_plan(load_federation(yaml), settings, POOL_URLS, standby=standby)


def by_type(template: dict, kind: str) -> list[dict]:
    return [r for r in template["resources"] if r["type"] == kind]


def assignments(template: dict) -> list[tuple[dict, dict]]:
    """(nested deployment, role assignment) for every role assignment in the template."""
    return [(d, a) for d in by_type(template, NESTED) for a in d["properties"]["template"]["resources"]]


def full_scope(deployment: dict, assignment: dict) -> str:
    """A role assignment's scope as a resource id: the nested deployment's resource group
    plus the assignment's scope below it."""
    return f"/subscriptions/{deployment['subscriptionId']}/resourceGroups/{deployment['resourceGroup']}/providers/{assignment['scope']}"


def test_the_same_plan_gives_byte_identical_json() -> None:
    first, second = dumps(build_template(plan())), dumps(build_template(plan()))
    assert first == second
    assert json.loads(first) == build_template(plan())


def test_one_container_group_per_proxy_each_with_a_system_assigned_identity() -> None:
    p = plan(standby=2)
    groups = by_type(build_template(p), GROUP)
    assert [g["name"] for g in groups] == ["fedproxy-aci000", "fedproxy-aci001", "fedproxy-aci002"]
    for g in groups:
        assert g["identity"] == {"type": "SystemAssigned"}
        assert g["location"] == "westeurope"
        (container,) = g["properties"]["containers"]
        props = container["properties"]
        assert props["image"] == "python:3.11-slim"
        assert props["resources"]["requests"] == {"cpu": 2.0, "memoryInGB": 8.0}  # Standard_D2s_v3
        assert props["command"] == ["python", "/mnt/batchfed/bootstrap.py"]
        assert g["properties"]["volumes"][0]["secret"]["bootstrap.py"] == "[parameters('bootstrapScript')]"


def test_the_environment_names_the_store_and_hides_the_sas() -> None:
    (g, *_) = by_type(build_template(plan()), GROUP)
    env = {e["name"]: e for e in g["properties"]["containers"][0]["properties"]["environmentVariables"]}
    assert env["BATCHFED_STORE_ACCOUNT"]["value"] == "fedstore"
    assert env["BATCHFED_STORE_BLOB_ENDPOINT"]["value"] == "https://fedstore.blob.core.windows.net"
    assert env["BATCHFED_PROXY_ID"]["value"] == "fedproxy-aci000"
    assert env["BATCHFED_WHEEL_URL"] == {"name": "BATCHFED_WHEEL_URL", "secureValue": "[parameters('wheelUrl')]"}
    assert "BATCHFED_FEDERATION_YAML_FILE" in env and "BATCHFED_WHEEL_BLOB" in env
    params = build_template(plan())["parameters"]
    assert params["wheelUrl"]["type"] == "securestring"


def test_endpoint_overrides_reach_the_container() -> None:
    (g, *_) = by_type(build_template(plan(table_endpoint="http://127.0.0.1:10002/fedstore")), GROUP)
    env = {e["name"]: e.get("value") for e in g["properties"]["containers"][0]["properties"]["environmentVariables"]}
    assert env["BATCHFED_STORE_TABLE_ENDPOINT"] == "http://127.0.0.1:10002/fedstore"


def test_roles_are_the_built_in_data_roles_on_the_storage_and_batch_accounts_only() -> None:
    p = plan(standby=1)
    template = build_template(p)
    found = assignments(template)
    by_group: dict[str, set[tuple[str, str]]] = {}
    for d, a in found:
        group = d["name"].rsplit("-roles-", 1)[0]
        role_id = a["properties"]["roleDefinitionId"].rsplit("/", 1)[1]
        by_group.setdefault(group, set()).add((full_scope(d, a), role_id))
    storage = {
        (STORAGE_ID, ROLES[r])
        for r in ("Storage Table Data Contributor", "Storage Queue Data Contributor", "Storage Blob Data Contributor")
    }
    batch = {(WEU_ID, ROLES["Azure Batch Data Contributor"]), (EUS_ID, ROLES["Azure Batch Data Contributor"])}
    assert by_group == {"fedproxy-aci000": storage | batch, "fedproxy-aci001": storage | batch}
    assert len(found) == 2 * 5
    for d, a in found:
        assert a["type"] == ASSIGNMENT
        # never a subscription or resource group: always one storage or Batch account
        assert a["scope"].split("/")[:2] in (["Microsoft.Storage", "storageAccounts"], ["Microsoft.Batch", "batchAccounts"])
        assert a["properties"]["roleDefinitionId"].startswith(
            f"/subscriptions/{d['subscriptionId']}/providers/Microsoft.Authorization/roleDefinitions/"
        )
        assert a["properties"]["principalType"] == "ServicePrincipal"
        uuid.UUID(a["name"])  # role assignment names are GUIDs


def test_the_built_in_role_ids_are_azures() -> None:
    assert ROLES == {
        "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Azure Batch Data Contributor": "6aaa78f1-f7de-44ca-8722-c64a23943cae",
        "Storage Blob Delegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    }


def test_each_role_deployment_follows_its_group_and_takes_the_groups_principal() -> None:
    p = plan(standby=1)
    template = build_template(p)
    ids = {g.name: g.resource_id for g in p.groups}
    for d, _ in assignments(template):
        group = d["name"].rsplit("-roles-", 1)[0]
        assert d["dependsOn"] == [ids[group]]
        principal = d["properties"]["parameters"]["principalId"]["value"]
        assert principal == f"[reference('{ids[group]}', '2023-05-01', 'full').identity.principalId]"
        assert d["properties"]["expressionEvaluationOptions"] == {"scope": "inner"}
        inner = d["properties"]["template"]
        assert inner["parameters"] == {"principalId": {"type": "string"}}
        assert all(a["properties"]["principalId"] == "[parameters('principalId')]" for a in inner["resources"])
    # every resource of the template is a container group or a role deployment
    assert {r["type"] for r in template["resources"]} == {GROUP, NESTED}


def test_assignment_names_are_stable_and_distinct() -> None:
    names = [a["name"] for _, a in assignments(build_template(plan(standby=2)))]
    assert len(names) == len(set(names)) == 3 * 5
    assert names == [a["name"] for _, a in assignments(build_template(plan(standby=2)))]
    assert [a.name for a in plan(standby=2).assignments()] == names


def test_the_plan_lists_what_the_template_assigns() -> None:
    p = plan(standby=1)
    listed = {(a.target.resource_id, a.role_definition_id.rsplit("/", 1)[1], a.group) for a in p.assignments()}
    in_template = {
        (full_scope(d, a), a["properties"]["roleDefinitionId"].rsplit("/", 1)[1], d["name"].rsplit("-roles-", 1)[0])
        for d, a in assignments(build_template(p))
    }
    assert listed == in_template
    assert all(
        a.resource_id.startswith(a.target.resource_id + "/providers/Microsoft.Authorization/roleAssignments/")
        for a in p.assignments()
    )


def test_cpu_and_memory_can_be_given_instead_of_a_vm_size() -> None:
    yaml = FEDERATION_YAML.replace("  vm_size: STANDARD_D2S_V3\n", "").replace(
        "  deployment:\n", "  deployment:\n    cpu: 0.5\n    memory_gb: 1\n"
    )
    p = plan(yaml=yaml)
    assert (p.cpu, p.memory_gb) == (0.5, 1.0)
    default = plan(yaml=FEDERATION_YAML.replace("  vm_size: STANDARD_D2S_V3\n", ""))
    assert (default.cpu, default.memory_gb) == (1.0, 1.5)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  location: westeurope\n", "", "federation.yaml: federation.location: required by `fed proxy create`"),
        ("  resource_group: fed-rg\n", "", "federation.resource_group: required"),
        ("vm_size: STANDARD_D2S_V3", "vm_size: Standard_D16s_v3", "more than a container gets"),
        ("vm_size: STANDARD_D2S_V3", "vm_size: Standard_Nope", "federation.vm_size = Standard_Nope: not in the size catalog"),
        (f"subscription_id: {SUB}", "subscription_id: not-a-guid", "federation.deployment.subscription_id"),
        ("hostname_prefix: fedproxy", "hostname_prefix: Fed_Proxy", "federation.hostname_prefix"),
        ("/batchAccounts/accteus", "/storageAccounts/accteus", "federation.deployment.batch_account_ids"),
    ],
)
def test_bad_deployment_keys_are_one_line_errors(old: str, new: str, message: str) -> None:
    assert old in FEDERATION_YAML
    with pytest.raises(ConfigError) as err:
        plan(yaml=FEDERATION_YAML.replace(old, new))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_subscription_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    yaml = FEDERATION_YAML.replace(f"    subscription_id: {SUB}\n", "")
    with pytest.raises(ConfigError, match="AZURE_SUBSCRIPTION_ID"):
        plan(yaml=yaml)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB.upper())
    assert plan(yaml=yaml).subscription == SUB


def test_standby_count_is_bounded() -> None:
    with pytest.raises(ConfigError, match="--standby = 10"):
        plan(standby=10)


def test_the_container_environment_is_what_the_bootstrap_reads(tmp_path) -> None:
    # the template and bootstrap.py are two halves of one contract: every variable the
    # template sets must be one the bootstrap accepts, in the form it expects
    import re

    from batchfed_lab.deploy import bootstrap

    (g, *_) = by_type(build_template(plan()), GROUP)
    container = g["properties"]["containers"][0]["properties"]
    sha = "a" * 64
    wheel = f"wheels/1.0/{sha}/batchfed_lab-1.0-py3-none-any.whl"
    env: dict[str, str] = {}
    for e in container["environmentVariables"]:
        value = e.get("value", "")
        value = re.sub(r"\[concat\('([^']*)', parameters\('wheelBlob'\)\)\]", lambda m: m.group(1) + wheel, value)
        env[e["name"]] = value
    env["BATCHFED_WHEEL_URL"] = f"https://fedstore.blob.core.windows.net/batchfed-deploy/{wheel}?sv=1&sig=x"
    fed = tmp_path / "federation.yaml"
    fed.write_text(FEDERATION_YAML)
    env["BATCHFED_FEDERATION_YAML_FILE"] = str(fed)

    azure = bootstrap.store_settings(env)["store"]["azure"]
    assert (azure["account_name"], azure["credential"]) == ("fedstore", "default")
    assert bootstrap.wheel_source(env).variable == "BATCHFED_WHEEL_URL"
    without_sas = {k: v for k, v in env.items() if k != "BATCHFED_WHEEL_URL"}
    by_identity = bootstrap.wheel_source(without_sas)
    assert by_identity.with_identity and by_identity.url.endswith(wheel)
    home = tmp_path / "home"
    home.mkdir()
    copied = bootstrap.federation_yaml(None, env, home)
    assert copied is not None and copied.read_text() == FEDERATION_YAML


DATA_ACCOUNTS = {
    "research": StorageAccountSettings(account_url="https://researchdata.blob.core.windows.net", location="westeurope"),
    "archive": StorageAccountSettings(account_url="https://archivedata.blob.core.windows.net"),
    # the store's own account holding data too: only the role it lacks is added
    "shared": StorageAccountSettings(account_url="https://fedstore.blob.core.windows.net"),
    "local": StorageAccountSettings(location="westeurope"),  # the laptop's Azurite: not an Azure account
}
ARCHIVE_ID = f"/subscriptions/{OTHER_SUB}/resourceGroups/archive-rg/providers/Microsoft.Storage/storageAccounts/archivedata"
RESEARCH_ID = f"/subscriptions/{SUB}/resourceGroups/fed-rg/providers/Microsoft.Storage/storageAccounts/researchdata"
DATA_YAML = FEDERATION_YAML.replace(
    "    batch_account_ids:\n", f"    data_account_ids:\n      - {ARCHIVE_ID}\n    batch_account_ids:\n"
)


def data_plan(standby: int = 0):
    settings = AzureStoreSettings(account_name="fedstore")
    return make_plan(load_federation(DATA_YAML), settings, POOL_URLS, standby=standby, data_accounts=DATA_ACCOUNTS)


def test_the_storage_blob_delegator_role_id_is_azures() -> None:
    assert ROLES["Storage Blob Delegator"] == "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"


def test_each_data_account_gets_the_delegator_and_blob_data_contributor_on_the_account_only() -> None:
    p = data_plan(standby=1)
    template = build_template(p)
    found = assignments(template)
    granted: dict[str, set[tuple[str, str]]] = {}
    for d, a in found:
        group = d["name"].rsplit("-roles-", 1)[0]
        granted.setdefault(group, set()).add((full_scope(d, a), a["properties"]["roleDefinitionId"].rsplit("/", 1)[1]))
    delegator, blob = ROLES["Storage Blob Delegator"], ROLES["Storage Blob Data Contributor"]
    for group in ("fedproxy-aci000", "fedproxy-aci001"):
        assert {(RESEARCH_ID, delegator), (RESEARCH_ID, blob), (ARCHIVE_ID, delegator), (ARCHIVE_ID, blob)} <= granted[group]
        assert (STORAGE_ID, delegator) in granted[group]  # the store's account serves data too
        # storage ×3 + delegator on the store's account, batch ×2, two data accounts ×2
        assert len(granted[group]) == 3 + 1 + 2 + 2 * 2
    names = [a["name"] for _, a in found]
    assert len(names) == len(set(names))  # one assignment per group, scope and role
    for _, a in found:
        assert a["scope"].split("/")[:2] in (["Microsoft.Storage", "storageAccounts"], ["Microsoft.Batch", "batchAccounts"])
    listed = {(a.target.resource_id, a.role, a.group) for a in p.assignments()}
    assert (ARCHIVE_ID, "Storage Blob Delegator", "fedproxy-aci001") in listed
    assert {d["subscriptionId"] for d, a in found if "archivedata" in a["scope"]} == {OTHER_SUB}


def test_the_container_is_told_the_data_accounts_without_secrets_or_the_local_azurite() -> None:
    (g, *_) = by_type(build_template(data_plan()), GROUP)
    env = {e["name"]: e.get("value") for e in g["properties"]["containers"][0]["properties"]["environmentVariables"]}
    accounts = json.loads(env["BATCHFED_STORAGE_ACCOUNTS"])
    assert accounts == {
        "archive": {"account_url": "https://archivedata.blob.core.windows.net"},
        "research": {"account_url": "https://researchdata.blob.core.windows.net", "location": "westeurope"},
        "shared": {"account_url": "https://fedstore.blob.core.windows.net"},
    }


def test_a_data_account_signed_in_by_connection_string_is_refused_naming_it() -> None:
    accounts = {
        "keyed": StorageAccountSettings(account_url="https://keyed.blob.core.windows.net", connection_string_env="KEYED_CONN")
    }
    with pytest.raises(ConfigError) as err:
        make_plan(
            load_federation(FEDERATION_YAML),
            AzureStoreSettings(account_name="fedstore"),
            POOL_URLS,
            data_accounts=accounts,
            settings_source="/ws/settings.yaml",
        )
    text = str(err.value)
    assert text.startswith("/ws/settings.yaml: storage_accounts.keyed.connection_string_env = KEYED_CONN: ")
    assert "managed identity" in text and "\n" not in text


def test_a_data_account_id_must_be_a_storage_account() -> None:
    yaml = DATA_YAML.replace("/storageAccounts/archivedata", "/batchAccounts/archivedata")
    with pytest.raises(ConfigError, match=r"federation\.deployment\.data_account_ids"):
        make_plan(load_federation(yaml), AzureStoreSettings(account_name="fedstore"), POOL_URLS)


def test_the_data_accounts_the_template_sets_become_the_deployed_workspaces_storage_accounts(tmp_path) -> None:
    # the other half of the env contract: what the bootstrap writes is settings.yaml the
    # proxy loads, with the accounts signing in by the container's identity
    from batchfed_lab.config.workspace import WorkspaceSettings
    from batchfed_lab.deploy import bootstrap

    (g, *_) = by_type(build_template(data_plan()), GROUP)
    env = {e["name"]: e.get("value", "") for e in g["properties"]["containers"][0]["properties"]["environmentVariables"]}
    settings = WorkspaceSettings.model_validate(bootstrap.store_settings(env))
    assert set(settings.storage_accounts) == {"archive", "research", "shared"}
    research = settings.storage_accounts["research"]
    assert (research.account_url, research.location, research.connection_string_env) == (
        "https://researchdata.blob.core.windows.net",
        "westeurope",
        None,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "BATCHFED_STORAGE_ACCOUNTS: not JSON"),
        (
            '{"x": {"account_url": "https://x.blob.core.windows.net", "connection_string_env": "X"}}',
            "only account_url and location",
        ),
        ('{"x": {"location": "westeurope"}}', "BATCHFED_STORAGE_ACCOUNTS: x: account_url"),
    ],
)
def test_bad_data_accounts_in_the_environment_are_one_line(value: str, message: str) -> None:
    from batchfed_lab.deploy import bootstrap

    env = {"BATCHFED_STORE_ACCOUNT": "fedstore", "BATCHFED_STORAGE_ACCOUNTS": value}
    with pytest.raises(bootstrap.BootstrapError, match=message):
        bootstrap.store_settings(env)
