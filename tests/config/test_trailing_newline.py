"""A value that ends in a newline is refused wherever the value itself would be accepted: `$` in
a regex matches before a final newline, so every check matches the whole text. (Values the
models strip first, such as durations and remote paths, are not listed: no newline is left.)"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from batchfed_lab.config.accounting import FairShare
from batchfed_lab.config.federation import Deployment, FederationSection, Logging
from batchfed_lab.config.workspace import AzureStoreSettings, StorageAccountSettings, WorkspaceSettings
from batchfed_lab.errors import ConfigError

SUB = "00000000-0000-0000-0000-000000000000"
STORAGE_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct"
BATCH_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Batch/batchAccounts/acct"

CASES = [
    ("logging filename", lambda v: Logging(filename=v), "fedproxy.log"),
    ("subscription id", lambda v: Deployment(subscription_id=v), SUB),
    ("storage account id", lambda v: Deployment(storage_account_id=v), STORAGE_ID),
    ("data account ids", lambda v: Deployment(data_account_ids=(v,)), STORAGE_ID),
    ("batch account ids", lambda v: Deployment(batch_account_ids=(v,)), BATCH_ID),
    ("hostname prefix", lambda v: FederationSection(hostname_prefix=v), "fedproxy"),
    ("store prefix", lambda v: AzureStoreSettings(account_name="acct", prefix=v), "fed"),
    (
        "connection string variable",
        lambda v: StorageAccountSettings(account_url="https://a.blob.core.windows.net", connection_string_env=v),
        "DATA_CS",
    ),
    (
        "storage account name",
        lambda v: WorkspaceSettings(storage_accounts={v: {"account_url": "https://a.blob.core.windows.net"}}),
        "data",
    ),
    ("fair-share user", lambda v: FairShare(shares={v: 1}), "ada"),
]


@pytest.mark.parametrize(("what", "check", "good"), CASES, ids=[c[0] for c in CASES])
def test_a_trailing_newline_is_refused(what, check, good) -> None:
    check(good)  # the value itself is fine
    with pytest.raises((ValidationError, ValueError, ConfigError)):
        check(good + "\n")
