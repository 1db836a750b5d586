"""`batchfed fed proxy create | destroy --what-if` and `%fed proxy create --what-if` on a
workspace whose store is Azure Storage (Azurite): the acceptance of issue 17's first point."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchfed_lab.cli import main

pytestmark = pytest.mark.azurite

CONTAINER_GROUP = "Microsoft.ContainerInstance/containerGroups"


@pytest.fixture
def home(tmp_path: Path, azurite, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A workspace on Azurite with one federation whose pool is in an Azure Batch account."""
    from batchfed_lab import connect

    root = tmp_path / "ws"
    root.mkdir()
    prefix = "d" + uuid.uuid4().hex[:10]
    (root / "settings.yaml").write_text(
        f"store:\n  backend: azure\n  azure:\n    account_name: devstoreaccount1\n    credential: connection_string\n    prefix: {prefix}\n"
    )
    monkeypatch.setenv("BATCHFED_HOME", str(root))
    monkeypatch.setenv("BATCHFED_STORAGE_CONNECTION_STRING", azurite.connection_string)
    with connect(root) as client:
        client.create_federation("research")
        client.store.add_pool("research", "https://acctweu.westeurope.batch.azure.com", "general", account="acctweu")
    return root


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_create_what_if_prints_a_template_that_parses_as_json(home: Path, fed_yaml: Path) -> None:
    code, out, err = run("fed", "proxy", "create", "--config", str(fed_yaml), "--standby", "1", "--what-if")
    assert code == 0, err
    doc = json.loads(out)
    template = doc["template"]
    groups = [r for r in template["resources"] if r["type"] == CONTAINER_GROUP]
    assert [g["name"] for g in groups] == ["fedproxy-aci000", "fedproxy-aci001"]
    assert all(g["identity"] == {"type": "SystemAssigned"} for g in groups)
    scopes = {r["scope"] for r in doc["role_assignments"]}
    assert any(s.endswith("/Microsoft.Batch/batchAccounts/acctweu") for s in scopes)
    assert any(s.endswith("/Microsoft.Storage/storageAccounts/devstoreaccount1") for s in scopes)
    assert "ARM what-if skipped" in err  # no Azure login here: nothing was sent to Azure


def test_destroy_what_if_lists_what_would_go_without_asking(home: Path, fed_yaml: Path) -> None:
    code, out, err = run("fed", "proxy", "destroy", "--config", str(fed_yaml), "--what-if")
    assert code == 0, err
    assert "would delete container group /subscriptions/" in out and "/containerGroups/fedproxy-aci000" in out
    assert out.count("would delete role assignment") == 5
    code, out, err = run("fed", "proxy", "destroy", "--config", str(fed_yaml), "--what-if", "--raw")
    assert json.loads(out)["kept"]


def test_destroy_for_real_asks_first(home: Path, fed_yaml: Path) -> None:
    code, _, err = run("fed", "proxy", "destroy", "--config", str(fed_yaml))
    assert code != 0 and "add -y/--yes" in err


def test_bad_input_is_one_line_and_non_zero(home: Path, fed_yaml: Path) -> None:
    fed_yaml.write_text(fed_yaml.read_text().replace("  resource_group: fed-rg\n", ""))
    code, out, err = run("fed", "proxy", "create", "--config", str(fed_yaml), "--what-if")
    assert code == 1 and out == ""
    assert err.strip() == "error: federation.yaml: federation.resource_group: required by `fed proxy create` / `destroy`"


def test_the_magic_takes_the_same_verbs(home: Path, fed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from batchfed_lab.magics.fed import FedMagics

    magics = FedMagics(shell=None)
    magics.fed(f"proxy create --config {fed_yaml} --what-if")
    assert json.loads(capsys.readouterr().out)["template"]["resources"]
    magics.fed(f"proxy destroy --config {fed_yaml} --what-if")
    assert "would delete container group" in capsys.readouterr().out
