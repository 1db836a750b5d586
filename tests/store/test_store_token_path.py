"""The Entra ID (token) path of the Azure store, on Azurite in OAuth mode over HTTPS.

The store conformance tests marked ``token_path`` run on it as the ``azure-token`` backend;
these tests pin what only that path has: the workspace settings reach the store through
DefaultAzureCredential, tokens the service refuses give one-line errors, the proxies' log
blobs are written with tokens, and no token ever lands in a log, an error or the store.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from azurite_oauth import IssuedTokens

from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.errors import StoreError, StoreUnavailableError
from batchfed_lab.proxy.logs import BlobLogHandler, persist_to
from batchfed_lab.store import NewAction, open_store
from batchfed_lab.store.azure import AzureStore

pytestmark = pytest.mark.azurite


def test_workspace_settings_reach_storage_with_default_azure_credential_tokens(azure_token_backend, workspace_dir, monkeypatch):
    """``credential: default`` with explicit endpoints: no key anywhere, so every request the
    store makes is authorised by a bearer token DefaultAzureCredential fetched for Storage."""
    b = azure_token_backend
    monkeypatch.delenv("BATCHFED_STORAGE_CONNECTION_STRING", raising=False)
    workspace_dir.mkdir(parents=True)
    ep = b.az.endpoint
    (workspace_dir / "settings.yaml").write_text(
        "store:\n  backend: azure\n  azure:\n    credential: default\n"
        f"    prefix: {b.prefix}\n    table_endpoint: {ep('table')}\n"
        f"    queue_endpoint: {ep('queue')}\n    blob_endpoint: {ep('blob')}\n"
    )
    asked_before = b.oauth.identity.requests
    store = open_store(open_workspace(workspace_dir), client_options=b.oauth.client_options, retries=1)
    try:
        assert isinstance(store, AzureStore) and store.prefix == b.prefix
        store.create_federation("fed")
        (action,) = store.enqueue("fed", [NewAction("job", "add", "j1", {"x": "y" * 100_000})])  # a payload blob
        assert store.claim("fed", "w").action.id == action.id
    finally:
        store.close()
    assert b.oauth.identity.requests > asked_before
    assert b.oauth.identity.resources == {"https://storage.azure.com"}


def test_the_emulator_really_checks_the_tokens(azure_token_backend):
    """Without this, the token tests could pass on an Azurite that lets anyone in."""
    b = azure_token_backend
    settings, options = b.oauth.settings(b.prefix), b.oauth.client_options
    with pytest.raises(StoreError, match=r"^azure store: create tables and containers: credentials refused \(status 403\)$"):
        AzureStore.from_settings(settings, credential=IssuedTokens(lifetime=-60), client_options=options, retries=0)
    with pytest.raises(StoreError, match="credentials refused"):
        AzureStore.from_settings(settings, credential=_ForeignAudience(), client_options=options, retries=0)
    store = AzureStore.from_settings(settings, credential=IssuedTokens(), client_options=options, retries=0)
    store.close()


def test_an_untrusted_certificate_is_refused_in_one_line(azure_token_backend):
    """The emulator's certificate is trusted only where the test says so (``connection_verify``)."""
    b = azure_token_backend
    with pytest.raises(StoreUnavailableError, match=r"^azure store: [^\n]*unreachable \(ServiceRequestError\)$"):
        AzureStore.from_settings(b.oauth.settings(b.prefix), credential=IssuedTokens(), retries=0)


def test_proxy_logs_are_appended_to_a_blob_on_the_token_path(azure_token_backend):
    store = azure_token_backend.open()
    handler = persist_to(store, "proxy-t", "info")
    assert isinstance(handler, BlobLogHandler)
    try:
        logging.getLogger("batchfed.test.tokenlog").warning("placed action one")
        handler.flush()
        logging.getLogger("batchfed.test.tokenlog").warning("placed action two")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    try:
        container = store.log_container()
        (blob,) = list(container.list_blobs(name_starts_with="proxy-t/"))
        text = container.download_blob(blob.name).readall().decode()
        assert "placed action one" in text and "placed action two" in text
    finally:
        store.close()


def test_no_token_reaches_a_log_an_error_or_the_store(azure_token_backend, caplog):
    """Every token issued during a busy session, and the identity endpoint's secret header,
    are searched for in the log lines (the SDKs' HTTP logging on, at debug), the persisted log
    blob, the store's errors and repr, and every entity, message and blob of the store."""
    b = azure_token_backend
    caplog.set_level(logging.DEBUG)
    store = AzureStore.from_settings(
        b.oauth.settings(b.prefix), client_options={**b.oauth.client_options, "logging_enable": True}, retries=1
    )
    handler = persist_to(store, "proxy-s", "debug")
    assert handler is not None
    shown: dict[str, str] = {"repr": repr(store)}
    try:
        store.create_federation("fed")
        store.enqueue("fed", [NewAction("job", "add", "j1", {"x": 1}), NewAction("job", "add", "j2", {"x": "y" * 100_000})])
        claim = store.claim("fed", "w1")
        store.mark_placed(claim)
        store.acquire_lease("leader", "proxy-s", ttl=20)
        store.set_suspended(True)
        with pytest.raises(StoreError) as refused:
            AzureStore.from_settings(
                b.oauth.settings(b.prefix), credential=_Expired(b.oauth.tokens), client_options=b.oauth.client_options, retries=0
            )
        shown["error"] = str(refused.value)
        store.release_lease("leader", "proxy-s")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    try:
        container = store.log_container()
        shown["log blob"] = "".join(container.download_blob(x.name).readall().decode() for x in container.list_blobs())
    finally:
        store.close()
    shown["log lines"] = caplog.text
    shown["store"] = _everything_in(b)
    assert "Authorization" in shown["log lines"]  # the HTTP logging did run (and redacted the header)
    secrets = _secrets(b)
    assert len(secrets) > 3  # tokens were issued during the session
    assert _search({"planted": "x" + secrets[-1] + "y"}, secrets), "the search finds a planted token"
    assert _search(shown, secrets) == []


class _ForeignAudience(IssuedTokens):
    """Tokens for another service (Key Vault), which Storage must not take."""

    def mint(self, scope: str = "") -> tuple[str, int]:
        return super().mint("https://vault.azure.net/.default")


class _Expired(IssuedTokens):
    """Expired tokens, also kept in ``into`` so the search looks for them too."""

    def __init__(self, into: IssuedTokens):
        super().__init__(lifetime=-60)
        self.issued = into.issued


def _secrets(b: Any) -> list[str]:
    return [*b.oauth.tokens.issued, b.oauth.identity.header]


def _search(texts: dict[str, str], secrets: list[str]) -> list[str]:
    found = []
    for where, text in texts.items():
        for secret in secrets:
            # a JWT's parts are as secret as the whole: the signature alone can be replayed with it
            if secret in text or secret.rsplit(".", 1)[-1] in text:
                found.append(f"a token in {where}" if secret.count(".") == 2 else f"the identity header in {where}")
    return found


def _everything_in(b: Any) -> str:
    """All text of this prefix's tables, queue messages and blobs, read with the plain SDKs."""
    tables, queues, blobs = b._clients()
    parts: list[str] = []
    for t in tables.list_tables():
        if t.name.startswith(b.prefix):
            for e in tables.get_table_client(t.name).list_entities():
                parts += [str(v) for v in e.values()]
    for q in queues.list_queues(name_starts_with=b.prefix):
        parts += [m.content for m in queues.get_queue_client(q.name).peek_messages(max_messages=32)]
    for c in blobs.list_containers(name_starts_with=b.prefix):
        client = blobs.get_container_client(c.name)
        for blob in client.list_blobs(include=["metadata"]):
            parts += [blob.name, *(blob.metadata or {}).values()]
            parts.append(client.download_blob(blob.name).readall().decode("utf-8", "replace"))
    return "\n".join(parts)


def test_azurite_takes_tokens_over_https_only():
    from batchfed_lab.store.emulator import Azurite

    with pytest.raises(StoreError, match=r"^azurite: oauth needs tls=\(certificate, key\)"):
        Azurite.start(oauth=True)
