"""Hypothesis fuzzers for the config loader and the action decoder, shared by
``tests/badinput/test_fuzz.py`` (a few hundred examples each, inside ``make test``) and the
``fuzz`` drill (``drills/run.py``: 10,000 examples each).

The property every fuzzer checks: arbitrary input gives a result or one of *our* errors
(``ConfigError`` and friends, one line, never another exception), and an action built from
arbitrary payload text is handled by the real :class:`ActionProcessor` end to end — placed
when it is valid, failed with its reason when it is not — without the processor raising.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchfed_lab.config import load_federation, load_jobs, load_pool
from batchfed_lab.config.federation import FederationConfig
from batchfed_lab.config.jobs import JobsConfig
from batchfed_lab.config.loading import _field_keys, _unwrap
from batchfed_lab.config.pool import PoolConfig
from batchfed_lab.errors import ConfigError, StoreError

LOADERS: dict[str, Callable[..., Any]] = {"jobs": load_jobs, "pool": load_pool, "federation": load_federation}

# --------------------------------------------------------------------------- vocabulary


def _vocabulary() -> list[str]:
    """Every key the three config models accept (aliases included), found by walking them."""
    seen: set[type] = set()
    keys: set[str] = set()
    todo: list[type] = [JobsConfig, PoolConfig, FederationConfig]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        keys.update(_field_keys(model))
        for info in model.model_fields.values():
            todo.extend(_unwrap(info.annotation))
    return sorted(keys)


VOCAB = _vocabulary()
WORDS = [*VOCAB, "true", "false", "null", "64g", "1.5m", "westeurope", "standard_d2_v3", "00:10:00", "{0}", "${HOME}"]

key_st = st.one_of(st.sampled_from(VOCAB), st.text(max_size=12))
leaf_st = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=30),
)
#: arbitrary nested dicts and lists with the models' own keys mixed in
nested_st = st.recursive(
    leaf_st,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(key_st, inner, max_size=5)),
    max_leaves=25,
)
top_st = st.one_of(
    st.dictionaries(
        st.sampled_from(["job_specifications", "pool_specification", "federation"]), nested_st, min_size=1, max_size=2
    ),
    nested_st,
)


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """``doc`` with the node at ``path`` (indexes taken modulo) replaced by ``value``."""
    if not path:
        return value
    if isinstance(doc, dict) and doc:
        keys = sorted(doc, key=str)
        k = keys[path[0] % len(keys)] if isinstance(path[0], int) else path[0]
        return {**doc, k: _mutate(doc.get(k), path[1:], value)}
    if isinstance(doc, list) and doc:
        i = path[0] % len(doc) if isinstance(path[0], int) else 0
        return [*doc[:i], _mutate(doc[i], path[1:], value), *doc[i + 1 :]]
    return value


GOOD = Path(__file__).resolve().parents[1] / "data" / "good"


def _good_docs(kind: str) -> list[Any]:
    return [yaml.safe_load(f.read_text()) for f in sorted(GOOD.glob(f"{kind}-*.yaml"))]


def mutated_good_st(kind: str) -> Any:
    """A good sample of ``kind`` (tests/data/good) with one node replaced or one key added."""
    docs = _good_docs(kind)
    path_st = st.lists(st.one_of(st.integers(0, 9), st.sampled_from(VOCAB)), min_size=1, max_size=6)
    return st.tuples(st.sampled_from(docs), path_st, nested_st).map(lambda t: _mutate(t[0], t[1], t[2]))


def _yaml_text(data: Any) -> str:
    try:
        return yaml.safe_dump(data, default_flow_style=None, allow_unicode=True)
    except (yaml.YAMLError, ValueError, RecursionError):
        return str(data)


#: YAML-ish text: dumps of nested data, raw text made of YAML punctuation and model keys,
#: and dumps with a few characters spliced in
yaml_ish_st = st.one_of(
    top_st.map(_yaml_text),
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    *WORDS,
                    ": ",
                    "- ",
                    "\n",
                    "  ",
                    "{",
                    "}",
                    "[",
                    "]",
                    ",",
                    "&a ",
                    "*a",
                    "<<: ",
                    "!!str ",
                    "#",
                    "'",
                    '"',
                    "|",
                    ">",
                    "\t",
                    "---\n",
                    "...\n",
                    "?",
                    "%YAML 1.2\n",
                ]
            ),
            st.text(max_size=5),
        ),
        max_size=40,
    ).map("".join),
    st.tuples(top_st.map(_yaml_text), st.integers(min_value=0, max_value=400), st.text(min_size=1, max_size=4)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    ),
)

# --------------------------------------------------------------------------- payloads

VALID_JOB: dict[str, Any] = {"id": "fuzz-job", "tasks": [{"command": "true"}]}


json_leaf_st = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(WORDS),
)
json_st = st.recursive(
    json_leaf_st, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(key_st, inner, max_size=5)), max_leaves=20
)


def _add_base() -> dict[str, Any]:
    return {"version": 1, "job": json.loads(json.dumps(VALID_JOB)), "native_default": None, "windows_default": False}


#: payloads: anything JSON, a valid add payload with one node replaced, or with a key added
payload_st = st.one_of(
    json_st,
    st.tuples(st.lists(st.one_of(st.integers(0, 7), st.sampled_from([*VOCAB, "version", "job"])), max_size=4), json_st).map(
        lambda t: _mutate(_add_base(), t[0], t[1])
    ),
    st.tuples(st.sampled_from(VOCAB), json_st).map(lambda t: {**_add_base(), "job": {**VALID_JOB, t[0]: t[1]}}),
    st.tuples(st.sampled_from(VOCAB), json_st).map(
        lambda t: {**_add_base(), "job": {**VALID_JOB, "tasks": [{"command": "true", t[0]: t[1]}]}}
    ),
)

# --------------------------------------------------------------------------- checks


def one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, repr(text[:300])


def check_loader(kind: str, src: Any) -> str:
    """``load_<kind>(src)`` returns a model or raises ConfigError — nothing else."""
    try:
        LOADERS[kind](src)
    except ConfigError as exc:
        one_line(exc)
        return "refused"
    return "accepted"


def check_decoder(payload: Any) -> str:
    from batchfed_lab.proxy.payload import parse_add, parse_remove

    outcome = []
    for parse in (parse_add, parse_remove):
        try:
            parse(payload)
            outcome.append("ok")
        except ConfigError as exc:
            one_line(exc)
            outcome.append("refused")
    return "/".join(outcome)


class ProcessorRig:
    """A real SQLite store and the real :class:`ActionProcessor` over an in-memory Batch
    account with three pools (the only fake: no task ever runs). Thread-unsafe by design:
    one example at a time."""

    def __init__(self) -> None:
        import logging

        from batchfed_lab.proxy.capacity import CapacityCache
        from batchfed_lab.proxy.processor import ActionProcessor, ProcessingOptions
        from batchfed_lab.store.sqlite import SqliteStore

        # the processor logs each failed action; without a handler Python would print them all
        logging.getLogger("batchfed").addHandler(logging.NullHandler())
        self.tmp = tempfile.TemporaryDirectory(prefix="batchfed-fuzz-")
        self.store = SqliteStore(Path(self.tmp.name) / "store.sqlite")
        self.account = MemoryAccount()
        self.store.create_federation("fuzz", unique_job_ids=False)
        self.store.add_pools(
            "fuzz",
            [
                {"batch_service_url": self.account.service_url, "pool_id": p, "account": "fuzz", "location": "westeurope"}
                for p in self.account.pools
            ],
        )
        self.processor = ActionProcessor(
            self.store,
            CapacityCache(lambda url: self.account, ttl=0),
            lambda url: self.account,
            ProcessingOptions(blackout_interval=0, evaluate_autoscale=False, max_attempts=2, actions_interval=0),
        )
        self.n = 0

    def close(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    def handle(self, kind: str, method: str, payload: Any) -> str:
        """Enqueue (the store may refuse, with its own error) and process end to end."""
        from batchfed_lab.store import ActionState, NewAction

        self.n += 1
        job = payload.get("job") if isinstance(payload, dict) else None
        named = job.get("id") if isinstance(job, dict) else None
        # the target a client would give (the payload's job id) when there is one
        target = (
            named if isinstance(named, str) and named.strip() and len(named) <= 64 and named.isprintable() else f"job-{self.n}"
        )
        try:
            (action,) = self.store.enqueue("fuzz", [NewAction(kind, method, target, payload)])
        except StoreError as exc:
            one_line(exc)
            return "refused by the store"
        outcomes = []
        for _ in range(4):  # blocked/retried actions get a few more rounds; each must end cleanly
            claim = self.store.claim("fuzz", "fuzzer", ttl=60)
            if claim is None:
                break
            outcomes.append(self.processor.process(claim))  # must not raise
        final = self.store.get_action("fuzz", action.id)
        assert final.state in (
            ActionState.PLACED,
            ActionState.DONE,
            ActionState.FAILED,
            ActionState.BLOCKED,
            ActionState.QUEUED,
        ), final
        if final.state is ActionState.FAILED:
            assert final.error and "\n" not in final.error, final  # set aside with its reason, one line
        if final.state is ActionState.BLOCKED:
            assert final.reason, final
        if final.state in (ActionState.QUEUED, ActionState.BLOCKED):
            self.store.zap("fuzz", action.id)  # a blocked example must not hold the next one's pool
        return final.state.value


class MemoryAccount:
    """Just enough of :class:`batchfed_lab.batch.adapter.BatchAccount` for the processor:
    three pools (plain, GPU, Windows low-priority), jobs and task ids kept in memory."""

    service_url = "http://127.0.0.1:1/accounts/fuzz"

    def __init__(self) -> None:
        from factories import make_pool  # tests/factories.py

        from batchfed_lab.scheduler.catalog import lookup

        self.pools = {
            "plain": make_pool("plain", idle=4, slots=4, account="fuzz", size=lookup("standard_d4_v3")),
            "gpu": make_pool("gpu", vm_size="standard_nc6s_v3", idle=2, account="fuzz", size=lookup("standard_nc6s_v3")),
            "winlow": make_pool(
                "winlow", idle=0, lp_idle=2, slots=2, windows=True, account="fuzz", size=lookup("standard_d2_v3")
            ),
        }
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def snapshot_pools(self, pool_ids: Any = None, *, active_tasks: bool = True, overrides: Any = None) -> dict[str, Any]:
        return dict(self.pools)

    def create_job(self, job_id: str, pool_id: str, settings: Any = None, *, windows: bool = False) -> Any:
        from batchfed_lab.batch.jobs import JobCreateResult, JobInfo

        _batch_id(job_id, "job")
        with self.lock:
            key = job_id.lower()
            if key in self.jobs:
                return JobCreateResult(job_id, False, self.jobs[key]["info"])
            info = JobInfo(
                id=job_id,
                state="active",
                pool_id=pool_id,
                uses_task_dependencies=bool(settings and settings.uses_task_dependencies),
                on_task_failure=settings.on_task_failure if settings else "noaction",
                job_preparation_command_line=settings.preparation_command_line(windows=windows) if settings else None,
            )
            self.jobs[key] = {"pool": pool_id, "tasks": set(), "info": info}
            return JobCreateResult(job_id, True)

    def task_ids(self, job_id: str) -> set[str]:
        return set(self.jobs.get(job_id.lower(), {}).get("tasks", set()))

    def add_tasks(self, job_id: str, tasks: list[Any], *, windows: bool = False, concurrency: int = 1) -> Any:
        from batchfed_lab.batch.tasks import TaskAddReport, TaskAddResult

        job = self.jobs[job_id.lower()]
        results = []
        for t in tasks:
            if not _ID.match(t.id):  # what Batch checks of every task id
                results.append(TaskAddResult(t.id, "failed", "InvalidPropertyValue", "bad task id"))
                continue
            status = "exists" if t.id.lower() in job["tasks"] else "added"
            job["tasks"].add(t.id.lower())
            results.append(TaskAddResult(t.id, status))
        return TaskAddReport(tuple(results), 1)

    def set_auto_complete(self, job_id: str) -> None:
        pass

    def reevaluate_autoscale(self, pool_id: str) -> bool:
        return False

    def create_job_schedule(self, schedule_id: str, pool_id: str, **kwargs: Any) -> Any:
        from batchfed_lab.batch.jobs import JobCreateResult

        _batch_id(schedule_id, "job schedule")
        return JobCreateResult(schedule_id, True)

    def terminate_job(self, *a: Any, **k: Any) -> bool:
        return True

    delete_job = terminate_job_schedule = delete_job_schedule = terminate_job


_ID = __import__("re").compile(r"^[A-Za-z0-9_-]{1,64}$")


def _batch_id(value: str, what: str) -> None:
    from batchfed_lab.errors import BatchError

    if not _ID.match(value):  # Batch answers 400 InvalidPropertyValue
        raise BatchError(f"{what} id {value!r} is invalid", code="InvalidPropertyValue", status=400)


# --------------------------------------------------------------------------- runners

#: outcome counters per fuzzer, read by the drill and the tests
COUNTS: dict[str, Counter[str]] = {}


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck)
    )


def fuzzers(examples: int) -> dict[str, Callable[[], None]]:
    """Named zero-argument callables, each running ``examples`` hypothesis examples."""
    out: dict[str, Callable[[], None]] = {}

    def loader_fuzzer(kind: str, strategy: Any, counts: Counter[str]) -> Callable[[], None]:
        @_settings(examples)
        @given(src=strategy)
        def case(src: Any) -> None:
            counts[check_loader(kind, src)] += 1

        return case

    for kind in LOADERS:
        good = mutated_good_st(kind)
        text = st.one_of(yaml_ish_st, good.map(_yaml_text))
        nested = st.one_of(top_st.filter(lambda d: isinstance(d, dict)), good.filter(lambda d: isinstance(d, dict)))
        for label, strategy in (("YAML-ish text", text), ("nested dicts", nested)):
            name = f"load_{kind}: {label}"
            out[name] = loader_fuzzer(kind, strategy, COUNTS.setdefault(name, Counter()))

    dec = COUNTS.setdefault("parse_add / parse_remove", Counter())

    @_settings(examples)
    @given(payload=payload_st)
    def decoder_case(payload: Any) -> None:
        dec[check_decoder(payload)] += 1

    out["parse_add / parse_remove"] = decoder_case
    proc = COUNTS.setdefault("processor end to end", Counter())

    def processor_case() -> None:
        rig = ProcessorRig()
        try:

            @_settings(examples)
            @given(
                kind=st.sampled_from(["job", "job", "job", "job_schedule"]),
                method=st.sampled_from(["add", "add", "add", "terminate", "delete"]),
                payload=payload_st,
            )
            def case(kind: str, method: str, payload: Any) -> None:
                proc[rig.handle(kind, method, payload)] += 1

            case()
        finally:
            rig.close()

    out["processor end to end"] = processor_case
    return out


def run_all(examples: int) -> dict[str, dict[str, int]]:
    """Run every fuzzer; returns ``{name: {outcome: count}}`` (the drill prints it)."""
    COUNTS.clear()
    for _name, fn in fuzzers(examples).items():
        fn()
    return {name: dict(c) for name, c in COUNTS.items()}


__all__ = ["COUNTS", "ProcessorRig", "check_decoder", "check_loader", "fuzzers", "run_all"]
