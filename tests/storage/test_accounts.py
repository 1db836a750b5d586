"""Storage accounts by name (issue 18, point 2): settings.yaml ``storage_accounts:`` entries and
the built-in ``local``; container URLs a task may use carry a SAS minted here, never a key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.data import container_url, resolve_account, split_remote
from batchfed_lab.errors import ConfigError, DataError
from batchfed_lab.store.emulator import DEV_KEY

# a well-formed (fake) account key: base64 of 64 bytes
FAKE_KEY = "a2V5" * 21 + "aw=="


def write_settings(root: Path, text: str):
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text(text)
    return open_workspace(root)


def test_an_entry_resolves_to_its_url_region_and_credential(tmp_path: Path) -> None:
    ws = write_settings(
        tmp_path / "ws",
        "storage_accounts:\n"
        "  results:\n    account_url: https://acct.blob.core.windows.net/\n    location: westeurope\n"
        "  shared:\n    account_url: https://other.blob.core.windows.net\n    connection_string_env: SHARED_CONN\n",
    )
    a = resolve_account(ws, "results")
    assert (a.name, a.account_url, a.region, a.auth, a.account_name) == (
        "results",
        "https://acct.blob.core.windows.net",
        "westeurope",
        "token",
        "acct",
    )
    b = resolve_account(ws.settings, "shared")
    assert (b.auth, b.connection_string_env, b.region) == ("connection_string", "SHARED_CONN", None)


def test_an_unknown_name_is_one_line_naming_the_file_and_field(tmp_path: Path) -> None:
    ws = write_settings(tmp_path / "ws", "storage_accounts:\n  results:\n    account_url: https://acct.blob.core.windows.net\n")
    with pytest.raises(DataError) as err:
        resolve_account(ws, "reslts")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(ws.settings_file) in msg and "storage_accounts.reslts" in msg and "results" in msg


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("results:\n    account_url: https://acct.blob.core.windows.net/?sv=2024&sig=abc", "query string"),
        ("results:\n    account_url: ftp://acct", "http(s) URL"),
        ("results:\n    location: westeurope", "account_url"),
        (
            "results:\n    account_url: https://a.blob.core.windows.net\n    connection_string_env: 'DefaultEndpoints=x'",
            "name of an",
        ),
        (
            "results:\n    account_url: https://a.blob.core.windows.net\n    connection_string: DefaultEndpointsProtocol=https",
            "connection_string_env",
        ),
        ("results:\n    account_url: https://a.blob.core.windows.net\n    account_key: abc", "<hidden>"),
        ("local:\n    account_url: http://127.0.0.1:10000/devstoreaccount1", "only its location"),
    ],
)
def test_bad_entries_and_secrets_in_the_file_are_refused_clearly(tmp_path: Path, entry: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        write_settings(tmp_path / "ws", "storage_accounts:\n  " + entry + "\n")
    msg = str(err.value)
    assert "\n" not in msg and "settings.yaml" in msg and words in msg
    assert "sig=abc" not in msg and ": abc" not in msg and "'abc'" not in msg  # secrets are never echoed


def test_a_sas_in_an_account_url_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        write_settings(
            tmp_path / "ws", "storage_accounts:\n  r:\n    account_url: https://a.blob.core.windows.net/?sig=SECRETSIG\n"
        )
    assert "storage_accounts.r.account_url" in str(err.value) and "SECRETSIG" not in str(err.value)


def test_local_needs_the_embedded_azurite_running(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    with pytest.raises(DataError, match=r"local.*not running.*batchfed up"):
        resolve_account(ws, "local")


def test_a_key_signed_container_url_is_a_service_sas_of_the_asked_rights(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(
        "SHARED_CONN", f"DefaultEndpointsProtocol=https;AccountName=other;AccountKey={FAKE_KEY};EndpointSuffix=core.windows.net"
    )
    ws = write_settings(
        tmp_path / "ws",
        "storage_accounts:\n  shared:\n    account_url: https://other.blob.core.windows.net\n    connection_string_env: SHARED_CONN\n",
    )
    acct = resolve_account(ws, "shared")
    read = container_url(acct, "inputs", write=False, expiry=dt.timedelta(hours=2))
    write = container_url(acct, "outputs", write=True)
    r, w = urlsplit(read), urlsplit(write)
    assert r.scheme == "https" and r.netloc == "other.blob.core.windows.net" and r.path == "/inputs"
    assert parse_qs(r.query)["sp"] == ["rl"] and parse_qs(w.query)["sp"] == ["cw"]
    assert parse_qs(r.query)["sr"] == ["c"] and "sig" in parse_qs(r.query)
    assert FAKE_KEY not in read and FAKE_KEY not in write  # the key itself never leaves


def test_a_connection_string_variable_that_is_unset_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_CONN", raising=False)
    ws = write_settings(
        tmp_path / "ws",
        "storage_accounts:\n  s:\n    account_url: https://o.blob.core.windows.net\n    connection_string_env: NOPE_CONN\n",
    )
    with pytest.raises(DataError, match="NOPE_CONN"):
        container_url(resolve_account(ws, "s"), "inputs", write=False)


def test_a_token_credential_gets_a_user_delegation_sas(azurite_oauth, tmp_path: Path, monkeypatch) -> None:
    """The OAuth Azurite plays Entra ID: the workspace's credential signs in, no key is known."""
    from azure.storage.blob import ContainerClient

    acct_url = azurite_oauth.azurite.endpoint("blob")
    import os

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azurite_oauth.ca))
    for name in [n for n in os.environ if n.startswith(("AZURE_", "MSI_"))]:
        monkeypatch.delenv(name)  # a developer's service principal must not win the chain
    for k, v in azurite_oauth.identity.env.items():
        monkeypatch.setenv(k, v)
    ws = write_settings(tmp_path / "ws", f"storage_accounts:\n  ent:\n    account_url: {acct_url}\n")
    acct = resolve_account(ws, "ent")
    assert acct.auth == "token"
    acct.service_client().create_container("udk")
    url = container_url(acct, "udk", write=True, expiry=dt.timedelta(hours=1))
    q = parse_qs(urlsplit(url).query)
    assert "skoid" in q and q["sp"] == ["cw"]  # a user-delegation SAS names the signing identity
    ContainerClient.from_container_url(url, connection_verify=str(azurite_oauth.ca)).upload_blob("x.txt", b"hi")
    # by default as long as a user-delegation SAS may live; longer is refused clearly
    assert "se=" in container_url(acct, "udk", write=False)
    with pytest.raises(DataError, match="at most 7 days"):
        container_url(acct, "udk", write=False, expiry=dt.timedelta(days=8))


def test_container_names_and_expiry_are_checked() -> None:
    assert split_remote("inputs/a/b.txt") == ("inputs", "a/b.txt")
    assert split_remote("inputs") == ("inputs", "")
    with pytest.raises(DataError, match="Bad_Name"):
        split_remote("Bad_Name/x")
    from batchfed_lab.data.accounts import StorageAccount

    acct = StorageAccount("x", "http://127.0.0.1:1/devstoreaccount1", None, "emulator")
    with pytest.raises(DataError, match="not in the future"):
        container_url(acct, "inputs", write=False, expiry=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    url = container_url(acct, "inputs", write=False)
    assert url.startswith("http://127.0.0.1:1/devstoreaccount1/inputs?") and DEV_KEY not in url
