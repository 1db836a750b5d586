"""Proxy logs: secrets redacted, and persisted to blob storage with the Azure store."""

from __future__ import annotations

import logging

from batchfed_lab.proxy import logs
from batchfed_lab.proxy.logs import BlobLogHandler, RedactSecrets, persist_to
from batchfed_lab.store.azure import AzureStore


def test_secrets_are_redacted_from_log_lines():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "conn %s", ("AccountName=a;AccountKey=c2VjcmV0;EndpointSuffix=x",), None
    )
    RedactSecrets().filter(record)
    assert "c2VjcmV0" not in record.getMessage() and "AccountKey=***" in record.getMessage()
    header = logging.LogRecord("x", logging.INFO, __file__, 1, "Authorization: SharedKey lab1:abcdEFGH==", (), None)
    RedactSecrets().filter(header)
    assert "abcdEFGH" not in header.getMessage()


def test_the_log_file_rotates_at_its_size_limit_and_keeps_its_backups(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "ROTATE_BYTES", 1000)
    monkeypatch.setattr(logs, "BACKUPS", 3)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # configure() quiets the SDKs' loggers for the proxy process; later tests in this process
    # read those loggers at debug (e.g. that no key reaches them), so they are put back
    quieted = {name: logging.getLogger(name).level for name in ("azure", "urllib3", "msal")}
    try:
        path = logs.configure(tmp_path, "proxy.log", "info", "p1")
        for i in range(100):  # ~80 bytes a line: about 8 kB in all
            logging.getLogger("batchfed.proxy").info("placed action %03d AccountKey=c2VjcmV0", i)
        for h in root.handlers:
            h.close()
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert path.name == "proxy-p1.log" and files == ["proxy-p1.log", "proxy-p1.log.1", "proxy-p1.log.2", "proxy-p1.log.3"]
    sizes = [p.stat().st_size for p in tmp_path.iterdir()]
    assert all(size < 1000 + 200 for size in sizes)  # the limit, overshot by one line at most
    text = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "placed action 099" in path.read_text() and "c2VjcmV0" not in text


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
