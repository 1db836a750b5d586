"""Helper process for the store tests (run as a script; one JSON spec in argv[1]).

Writes JSON lines to stdout; reads "go" lines from stdin where a step waits for the test.
"""

from __future__ import annotations

import json
import os
import sys
import time

from batchfed_lab.config.workspace import AzureStoreSettings
from batchfed_lab.store import NewAction
from batchfed_lab.store.azure import AzureStore
from batchfed_lab.store.sqlite import SqliteStore


def open_store(spec: dict) -> object:
    if spec["kind"] == "sqlite":
        return SqliteStore(spec["path"])
    if spec["kind"] == "azure-token":  # DefaultAzureCredential, from the identity endpoint in the environment
        settings = AzureStoreSettings(**spec["settings"])
        return AzureStore.from_settings(settings, client_options={"connection_verify": spec["ca"]}, retries=2)
    return AzureStore.from_connection_string(os.environ["BATCHFED_STORAGE_CONNECTION_STRING"], prefix=spec["prefix"], retries=2)


def say(value: object) -> None:
    print(json.dumps(value), flush=True)


def main() -> None:
    spec = json.loads(sys.argv[1])
    store = open_store(spec["store"])
    op, fid = spec["op"], spec.get("fid")
    if op == "enqueue_each":
        # one action per call, as concurrent clients would; wait for "go" so all start together
        sys.stdin.readline()
        ids = []
        for i in range(spec["n"]):
            target = spec["targets"][i % len(spec["targets"])]
            ids.append(store.enqueue(fid, [NewAction("job", "terminate", target, {"who": spec["who"], "i": i})])[0].id)
        say({"ids": ids})
    elif op == "enqueue_batch":  # a multi-row change; BATCHFED_STORE_CRASHPOINT may kill us inside it
        targets = spec.get("targets")  # several job ids, round robin, or one
        ids = [spec["target"] if targets is None else f"{spec['target']}{i % targets}" for i in range(spec["n"])]
        store.enqueue(fid, [NewAction("job", "terminate", t, {"i": i}) for i, t in enumerate(ids)])
        say({"done": True})
    elif op == "destroy":
        store.destroy_federation(fid)
        say({"done": True})
    elif op == "add_pools":
        store.add_pools(
            fid, [{"batch_service_url": "https://a.westeurope.batch.azure.com", "pool_id": f"p{i}"} for i in range(spec["n"])]
        )
        say({"done": True})
    elif op == "claim_and_die":
        claim = store.claim(fid, "doomed-worker", ttl=spec["ttl"])
        say({"claimed": claim.action.id if claim else None})
        os._exit(0)  # no release, no clean-up: the claim must lapse on its own
    elif op == "enqueue_on_go":
        # latency probe: enqueue when told, report the wall time right after the commit
        for _ in range(spec["rounds"]):
            if sys.stdin.readline().strip() != "go":
                break
            store.enqueue(fid, [NewAction("job", "terminate", "probe", {})])
            say({"committed": time.time()})
    else:
        raise SystemExit(f"unknown op {op}")
    store.close()


if __name__ == "__main__":
    main()
