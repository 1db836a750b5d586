"""One embedded stack run under known secrets, shared by the security tests.

* the localbatch key (``<ws>/localbatch/key``), created before the stack starts, and also
  given as ``BATCHFED_BATCH_KEY_LAB1`` (so account lab1 is signed with the environment's key);
* ``BATCHFED_BATCH_KEY_AZACCT``: a shared key for an Azure account nobody calls;
* ``BATCHFED_STORAGE_CONNECTION_STRING``: a fake connection string with an ``AccountKey``
  (its endpoints are a loopback port where nothing listens).

Every process of the stack (localbatch, the proxy, the tasks it runs) inherits them.
``Secrets.all`` lists every form to search for (the text of each secret, and the key parts).
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from security_helpers import Secrets
from stack import DEFAULT_POOLS, Stack, embedded_stack

FEDERATION_YAML = """\
federation:
  proxy_options:
    polling_interval: {federations: 5, actions: 1}
    logging: {level: debug, persistence: true}
    scheduling:
      after_success: {blackout_interval: 0}
"""


@pytest.fixture(scope="package")
def known() -> Secrets:
    storage_key = base64.b64encode(secrets.token_bytes(64)).decode()
    return Secrets(
        localbatch_key="",  # filled by `stack` once the key file exists
        azure_batch_key=base64.b64encode(secrets.token_bytes(64)).decode(),
        storage_key=storage_key,
        # loopback endpoints where nothing listens: using it fails fast and stays on this machine
        connection_string=(
            f"DefaultEndpointsProtocol=http;AccountName=fakestore;AccountKey={storage_key};"
            "TableEndpoint=http://127.0.0.1:9/fakestore;QueueEndpoint=http://127.0.0.1:9/fakestore;"
            "BlobEndpoint=http://127.0.0.1:9/fakestore;"
        ),
    )


@pytest.fixture(scope="package")
def secret_stack(tmp_path_factory: pytest.TempPathFactory, known: Secrets) -> Iterator[tuple[Stack, Secrets]]:
    from batchfed_lab.localbatch import auth

    root = tmp_path_factory.mktemp("security") / "ws"
    root.mkdir(mode=0o700)
    key = auth.load_or_create_key(root / "localbatch")  # the key exists before anything starts
    full = Secrets(key, known.azure_batch_key, known.storage_key, known.connection_string)
    env = {
        "BATCHFED_BATCH_KEY_LAB1": key,
        "BATCHFED_BATCH_KEY_AZACCT": full.azure_batch_key,
        "BATCHFED_STORAGE_CONNECTION_STRING": full.connection_string,
    }
    with (
        patch.dict(os.environ, env),
        embedded_stack(root, pools=DEFAULT_POOLS, federations={"sec": None}, federation_yaml=FEDERATION_YAML) as s,
    ):
        yield s, full
