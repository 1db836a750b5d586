"""Proxy logs: secrets redacted, and persisted to blob storage with the Azure store."""

from __future__ import annotations

import logging

from batchfed_lab.proxy.logs import BlobLogHandler, RedactSecrets, persist_to
from batchfed_lab.store.azure import AzureStore


def test_secrets_are_redacted_from_log_lines():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "conn %s", ("AccountName=a;AccountKey=c2VjcmV0;EndpointSuffix=x",), None)
    RedactSecrets().filter(record)
    assert "c2VjcmV0" not in record.getMessage() and "AccountKey=***" in record.getMessage()
    header = logging.LogRecord("x", logging.INFO, __file__, 1, "Authorization: SharedKey lab1:abcdEFGH==", (), None)
    RedactSecrets().filter(header)
    assert "abcdEFGH" not in header.getMessage()


def test_logs_are_appended_to_a_blob_with_the_azure_store(azurite):
    store = AzureStore.from_connection_string(azurite.connection_string, prefix="logtest")
    logger = logging.getLogger("batchfed.test.blob")
    logger.setLevel(logging.INFO)
    handler = persist_to(store, "proxy-9", "info")  # on the root logger, like the proxy's
    assert isinstance(handler, BlobLogHandler)
    try:
        logger.info("placed action one")
        logger.info("key AccountKey=topsecret must not leak")
        handler.flush()
        logger.info("placed action two")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    container = store.log_container()
    (blob,) = list(container.list_blobs(name_starts_with="proxy-9/"))
    text = container.download_blob(blob.name).readall().decode()
    assert "placed action one" in text and "placed action two" in text
    assert "topsecret" not in text
    store.close()
