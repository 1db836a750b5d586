"""What valid configuration means: defaults (SPEC §3, §4.1), units, sweeps, generated ids,
inheritance of job-level settings, and the good samples in tests/data/good/."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from batchfed_lab.config import (
    FederationConfig,
    FederationConstraints,
    JobsConfig,
    PoolConfig,
    TaskDefinition,
    load_federation,
    load_jobs,
    load_pool,
    validate_file,
)
from batchfed_lab.config.units import format_mib, iso_duration, parse_duration, parse_memory_mib
from batchfed_lab.errors import ConfigError

DATA = Path(__file__).resolve().parent.parent / "data"
GOOD = sorted((DATA / "good").glob("*.yaml"))
BATCHFED = Path(sys.executable).parent / "batchfed"


def attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def one_job(yaml_text: str):
    (job,) = load_jobs(yaml_text).job_specifications
    return job


def commands(job) -> list[str]:
    return [t.command for t in job.task_definitions]


def ids(job) -> list[str]:
    return [t.id for t in job.task_definitions]


# --- SPEC §4.1: every constraint is optional, with these defaults ---------------------

CONSTRAINT_DEFAULTS = [
    ("pool.autoscale.allow", True),
    ("pool.autoscale.exclusive", False),
    ("pool.low_priority_nodes.allow", True),
    ("pool.low_priority_nodes.exclusive", False),
    ("pool.native", None),  # taken from the pool config
    ("pool.windows", None),  # taken from the pool config
    ("pool.location", None),
    ("pool.container_registries.private_docker_hub", False),
    ("pool.container_registries.public", ()),
    ("pool.max_active_task_backlog", None),
    ("pool.custom_image_arm_id", None),
    ("pool.virtual_network_arm_id", None),
    ("compute_node.vm_size", None),
    ("compute_node.cores", None),
    ("compute_node.memory", None),
    ("compute_node.exclusive", False),
    ("compute_node.gpu", None),
    ("compute_node.infiniband", None),
]


@pytest.mark.parametrize("field,default", CONSTRAINT_DEFAULTS, ids=[f for f, _ in CONSTRAINT_DEFAULTS])
def test_constraint_default(field: str, default: Any) -> None:
    no_section = one_job("job_specifications:\n- id: j\n  tasks:\n  - command: x\n")
    empty_section = one_job(
        "job_specifications:\n- id: j\n  federation_constraints: {pool: {}, compute_node: {}}\n  tasks:\n  - command: x\n"
    )
    for constraints in (FederationConstraints(), no_section.federation_constraints, empty_section.federation_constraints):
        assert attr(constraints, field) == default


def test_backlog_autoscale_exempt_defaults_to_true_once_a_ratio_is_set() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  federation_constraints:\n    pool:\n      max_active_task_backlog: {ratio: 1.5}\n"
        "  tasks:\n  - command: x\n"
    )
    backlog = job.federation_constraints.pool.max_active_task_backlog
    assert (backlog.ratio, backlog.autoscale_exempt) == (1.5, True)


def test_constraint_values_are_normalised_for_case_insensitive_matching() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  federation_constraints:\n"
        "    pool:\n      location: WestEurope\n      container_registries: {public: [' Docker.IO ', MCR.Microsoft.com]}\n"
        "    compute_node:\n      vm_size: ' Standard_D2s_v3 '\n"
        "  tasks:\n  - command: x\n"
    )
    fc = job.federation_constraints
    assert fc.pool.location == "westeurope"
    assert fc.pool.container_registries.public == ("docker.io", "mcr.microsoft.com")
    assert fc.compute_node.vm_size == "Standard_D2s_v3"


# --- SPEC §3: federation.yaml defaults (30 / 5 / true / debug / fedproxy.log / 15 / true)

FEDERATION_DEFAULTS = [
    ("proxy_options.polling_interval.federations", 30),
    ("proxy_options.polling_interval.actions", 5),
    ("proxy_options.logging.persistence", True),
    ("proxy_options.logging.level", "debug"),
    ("proxy_options.logging.filename", "fedproxy.log"),
    ("proxy_options.scheduling.after_success.blackout_interval", 15),
    ("proxy_options.scheduling.after_success.evaluate_autoscale", True),
    ("proxy_options.scheduling.policy", "largest-fit"),
    ("store", None),
]


@pytest.mark.parametrize("field,default", FEDERATION_DEFAULTS, ids=[f.rsplit(".", 1)[-1] for f, _ in FEDERATION_DEFAULTS])
def test_federation_default(field: str, default: Any) -> None:
    sources = [
        FederationConfig(),
        load_federation("federation: {}\n"),
        load_federation("federation:\n  proxy_options: {}\n"),
        validate_file(DATA / "good" / "federation-defaults.yaml"),
    ]
    for cfg in sources:
        assert attr(cfg.federation, field) == default


def test_federation_full_sample_sets_every_key() -> None:
    fed = validate_file(DATA / "good" / "federation-full.yaml").federation
    po = fed.proxy_options
    assert (po.polling_interval.federations, po.polling_interval.actions) == (15, 2)
    assert (po.logging.persistence, po.logging.level, po.logging.filename) == (False, "info", "fedproxy-prod.log")
    assert (po.scheduling.after_success.blackout_interval, po.scheduling.after_success.evaluate_autoscale) == (30, False)
    assert po.scheduling.policy == "best-fit"
    assert fed.store.backend == "azure" and fed.store.azure.account_name == "fedstore"
    # every non-default value differs from its default, so the sample really exercises each key
    for field, default in FEDERATION_DEFAULTS[:-1]:
        assert attr(fed, field) != default, field


@pytest.mark.parametrize("interval", [5, 5.0, 600])
def test_federation_polling_interval_of_at_least_five_seconds_is_accepted(interval: float) -> None:
    cfg = load_federation(f"federation:\n  proxy_options:\n    polling_interval: {{federations: {interval}, actions: 0}}\n")
    assert cfg.federation.proxy_options.polling_interval.federations == interval
    assert cfg.federation.proxy_options.polling_interval.actions == 0  # event-driven: 0 is allowed


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_every_documented_log_level_is_accepted(level: str) -> None:
    cfg = load_federation(f"federation:\n  proxy_options:\n    logging: {{level: {level}}}\n")
    assert cfg.federation.proxy_options.logging.level == level


# --- memory and durations -----------------------------------------------------------

MEMORY = [
    ("1048576b", 1.0),
    ("1048576B", 1.0),
    ("1024k", 1.0),
    ("2048K", 2.0),
    ("512m", 512.0),  # crashed the original proxy
    ("4096M", 4096.0),  # so did this
    ("64g", 65536.0),
    ("64G", 65536.0),
    ("1.5g", 1536.0),
    ("1t", 1048576.0),
    ("2T", 2097152.0),
    (" 8 g ", 8192.0),
]


@pytest.mark.parametrize("text,mib", MEMORY, ids=[t.strip() for t, _ in MEMORY])
def test_memory_suffixes_are_binary_multiples_in_any_case(text: str, mib: float) -> None:
    assert parse_memory_mib(text) == pytest.approx(mib)
    job = one_job(
        f"job_specifications:\n- id: j\n  federation_constraints:\n    compute_node:\n      memory: {{amount: '{text}'}}\n"
        "  tasks:\n  - command: x\n"
    )
    assert job.federation_constraints.compute_node.memory.amount_mib == pytest.approx(mib)


@pytest.mark.parametrize("mib,text", [(512, "512m"), (1536, "1.5g"), (65536, "64g"), (1024, "1g")])
def test_format_mib_is_the_short_form(mib: float, text: str) -> None:
    assert format_mib(mib) == text


@pytest.mark.parametrize("field", ["cores", "memory"])
@pytest.mark.parametrize("variance,expected", [("0", 0.0), ("0.25", 0.25), ("3", 3.0), (None, None)])
def test_schedulable_variance_zero_means_exact_and_absent_means_no_upper_bound(field, variance, expected) -> None:
    amount = "4" if field == "cores" else "16g"
    extra = f", schedulable_variance: {variance}" if variance is not None else ""
    job = one_job(
        f"job_specifications:\n- id: j\n  federation_constraints:\n    compute_node:\n      {field}: {{amount: {amount}{extra}}}\n"
        "  tasks:\n  - command: x\n"
    )
    assert getattr(job.federation_constraints.compute_node, field).schedulable_variance == expected


DURATIONS = [
    ("00:05:00", timedelta(minutes=5)),
    ("1.00:00:00", timedelta(days=1)),
    ("2.03:04:05", timedelta(days=2, hours=3, minutes=4, seconds=5)),
    ("PT5M", timedelta(minutes=5)),
    ("pt1h30m", timedelta(hours=1, minutes=30)),
    ("P1DT12H", timedelta(days=1, hours=12)),
    (300, timedelta(minutes=5)),
    (0.5, timedelta(milliseconds=500)),
]


@pytest.mark.parametrize("value,expected", DURATIONS, ids=[str(v) for v, _ in DURATIONS])
def test_durations_as_the_original_wrote_them(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "td,iso", [(timedelta(minutes=5), "PT5M"), (timedelta(days=1, seconds=3), "P1DT3S"), (timedelta(0), "PT0S")]
)
def test_iso_duration_for_the_batch_rest_api(td: timedelta, iso: str) -> None:
    assert iso_duration(td) == iso


# --- parametric sweeps, substitution and generated ids --------------------------------

SWEEPS = [
    (
        "product of a range and a list",
        "product:\n        - {start: 0, stop: 3}\n        - [a, b]",
        "run {0} {1}",
        ["run 0 a", "run 0 b", "run 1 a", "run 1 b", "run 2 a", "run 2 b"],
    ),
    (
        "range with a step, stop excluded",
        "product:\n        - {start: 0, stop: 10, step: 4}",
        "run {0}",
        ["run 0", "run 4", "run 8"],
    ),
    (
        "descending range",
        "product:\n        - {start: 3, stop: 0, step: -1}",
        "run {0}",
        ["run 3", "run 2", "run 1"],
    ),
    (
        "product_iterables",
        "product_iterables:\n        - [x, y]\n        - [1, 2]",
        "run {1}-{0}",
        ["run 1-x", "run 2-x", "run 1-y", "run 2-y"],
    ),
    (
        "zip takes lists element-wise",
        "zip:\n        - [1, 2, 3]\n        - [a, b, c]",
        "run {0}{1}",
        ["run 1a", "run 2b", "run 3c"],
    ),
    (
        "numbers keep their YAML spelling",
        "product_iterables:\n        - [0.001, 1e-05, 10]",
        "lr={0}",
        ["lr=0.001", "lr=1e-05", "lr=10"],
    ),
    (
        "a placeholder may repeat",
        "zip:\n        - [a, b]",
        "{0}/{0}.out",
        ["a/a.out", "b/b.out"],
    ),
]


@pytest.mark.parametrize("what,sweep,command,expected", SWEEPS, ids=[s[0] for s in SWEEPS])
def test_parametric_sweep_expansion(what: str, sweep: str, command: str, expected: list[str]) -> None:
    job = one_job(
        "job_specifications:\n- id: sweep\n  tasks:\n"
        f"  - command: '{command}'\n    task_factory:\n      parametric_sweep:\n        {sweep}\n"
    )
    assert commands(job) == expected
    assert ids(job) == [f"task-{i:05d}" for i in range(len(expected))]
    assert all(t.generated_id for t in job.task_definitions)


def test_substitution_replaces_only_numbered_placeholders_and_keeps_escapes() -> None:
    job = one_job(
        "job_specifications:\n- id: sweep\n  tasks:\n"
        "  - command: 'echo ${HOME} {{0}} {0} {a,b} {} {name} ${1}'\n"
        "    task_factory:\n      parametric_sweep:\n        zip: [[v], [w]]\n"
    )
    # ${HOME}, {a,b}, {} and {name} stay as written; {{0}} is a literal {0}; {0} and the {1} of ${1} are replaced
    assert commands(job) == ["echo ${HOME} {0} v {a,b} {} {name} $w"]


@pytest.mark.parametrize(
    "sweep",
    [
        "product: [{start: 0, stop: 1000000000}]",
        "product: [{start: 0, stop: 400000}, {start: 0, stop: 400000}]",
        "zip: [[a], [b]]\n        product: [{start: 0, stop: 1000000000}]",
    ],
    ids=["one huge range", "two ranges whose product is huge", "huge range beside another mode"],
)
def test_a_huge_sweep_is_refused_by_counting_never_by_expanding(sweep: str) -> None:
    # a billion-value range would exhaust memory if it were listed before the 100,000-task check
    with pytest.raises(ConfigError) as err:
        one_job(
            "job_specifications:\n- id: sweep\n  tasks:\n"
            f"  - command: run {{0}}\n    task_factory:\n      parametric_sweep:\n        {sweep}\n"
        )
    assert "\n" not in str(err.value)
    assert "more than 100000 tasks" in str(err.value) or "exactly one of" in str(err.value)


def test_a_command_without_a_sweep_is_not_substituted() -> None:
    job = one_job("job_specifications:\n- id: j\n  tasks:\n  - command: 'awk \"{print $1}\" {0} {{1}}'\n")
    assert commands(job) == ['awk "{print $1}" {0} {{1}}']


def test_generated_ids_skip_explicit_ids_and_continue_across_tasks() -> None:
    job = one_job(
        "job_specifications:\n- id: mixed\n  tasks:\n"
        "  - id: task-00001\n    command: explicit\n"
        "  - command: sweep {0}\n    task_factory:\n      parametric_sweep:\n        product_iterables: [[a, b, c]]\n"
        "  - command: no id\n"
        "  - id: task-00005\n    command: explicit too\n"
        "  - command: last\n"
    )
    assert [(t.id, t.command, t.generated_id) for t in job.task_definitions] == [
        ("task-00001", "explicit", False),
        ("task-00000", "sweep a", True),
        ("task-00002", "sweep b", True),
        ("task-00003", "sweep c", True),
        ("task-00004", "no id", True),
        ("task-00005", "explicit too", False),
        ("task-00006", "last", True),
    ]


def test_id_less_tasks_get_ids_and_each_job_counts_from_zero() -> None:
    cfg = load_jobs(
        "job_specifications:\n- id: a\n  tasks:\n  - command: one\n  - command: two\n- id: b\n  tasks:\n  - command: three\n"
    )
    assert [ids(j) for j in cfg.job_specifications] == [["task-00000", "task-00001"], ["task-00000"]]


def test_sweep_tasks_carry_the_settings_of_the_task_they_come_from() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  tasks:\n"
        "  - id: setup\n    command: prepare\n"
        "  - command: run {0}\n    depends_on: [setup]\n    docker_image: python:3.12\n    gpus: 1\n"
        "    environment_variables: {MODE: fast}\n    max_task_retries: 3\n    max_wall_time: PT10M\n"
        "    task_factory:\n      parametric_sweep:\n        zip: [[1, 2]]\n"
    )
    _setup, *swept = job.task_definitions
    assert len(swept) == 2
    for t in swept:
        assert t.depends_on == ("setup",)
        assert (t.docker_image, t.gpu, t.environment, t.max_task_retries, t.max_wall_time_s) == (
            "python:3.12",
            True,
            {"MODE": "fast"},
            3,
            600.0,
        )
    assert job.uses_dependencies


def test_dependencies_may_name_generated_ids_of_the_same_job() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  tasks:\n"
        "  - command: part {0}\n    task_factory:\n      parametric_sweep:\n        zip: [[1, 2]]\n"
        "  - id: merge\n    command: merge\n    depends_on: [task-00000, task-00001]\n"
    )
    assert job.task_definitions[-1].depends_on == ("task-00000", "task-00001")


# --- job-level settings a task inherits ---------------------------------------------

GPU_INHERITANCE = [
    # job gpus, task gpus, task needs a GPU
    (None, None, False),
    ("1", None, True),
    ("all", None, True),
    ("1", "0", False),
    ("1", "disable", False),
    (None, "2", True),
    ("0", "1", True),
    ("disable", "all", True),
]


@pytest.mark.parametrize("job_gpus,task_gpus,gpu", GPU_INHERITANCE)
def test_gpus_task_level_overrides_job_level(job_gpus, task_gpus, gpu) -> None:
    job_line = f"  gpus: {job_gpus}\n" if job_gpus is not None else ""
    task_line = f"    gpus: {task_gpus}\n" if task_gpus is not None else ""
    job = one_job(f"job_specifications:\n- id: j\n{job_line}  tasks:\n  - command: x\n{task_line}")
    assert job.task_definitions[0].gpu is gpu


IB_INHERITANCE = [
    (None, None, False),
    ("true", None, True),
    ("true", "false", False),
    (None, "true", True),
    ("false", "true", True),
]


@pytest.mark.parametrize("job_ib,task_ib,ib", IB_INHERITANCE)
def test_infiniband_task_level_overrides_job_level(job_ib, task_ib, ib) -> None:
    job_line = f"  infiniband: {job_ib}\n" if job_ib is not None else ""
    task_line = f"    infiniband: {task_ib}\n" if task_ib is not None else ""
    job = one_job(f"job_specifications:\n- id: j\n{job_line}  tasks:\n  - command: x\n{task_line}")
    assert job.task_definitions[0].infiniband is ib


def test_gpu_false_is_fine_when_a_task_turns_the_job_level_gpus_off() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  gpus: 1\n  federation_constraints: {compute_node: {gpu: false}}\n"
        "  tasks:\n  - command: x\n    gpus: 0\n"
    )
    assert job.task_definitions[0].gpu is False


def test_environment_variables_are_merged_task_over_job_and_stringified() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n"
        "  environment_variables: {A: 1, B: true, C: null, D: job, F: false}\n"
        "  tasks:\n  - command: x\n    environment_variables: {D: 2.5, E: task, _UNDER: ok}\n"
        "  - command: y\n"
    )
    first, second = job.task_definitions
    assert first.environment == {"A": "1", "B": "true", "C": "", "D": "2.5", "F": "false", "E": "task", "_UNDER": "ok"}
    assert second.environment == {"A": "1", "B": "true", "C": "", "D": "job", "F": "false"}
    assert all(isinstance(v, str) for v in first.environment.values())


def test_retries_and_wall_time_are_inherited_from_the_job() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  max_task_retries: 2\n  max_wall_time: '01:00:00'\n"
        "  tasks:\n  - command: x\n  - command: y\n    max_task_retries: -1\n    max_wall_time: 90\n"
    )
    a, b = job.task_definitions
    assert (a.max_task_retries, a.max_wall_time_s) == (2, 3600.0)
    assert (b.max_task_retries, b.max_wall_time_s) == (-1, 90.0)


def test_multi_instance_task() -> None:
    (job,) = validate_file(DATA / "good" / "jobs-multi-instance.yaml").job_specifications
    solve, reconstruct = job.task_definitions
    assert (solve.num_instances, solve.multi_instance, solve.infiniband) == (4, True, True)
    assert solve.coordination_command == "/opt/setup/mount-scratch.sh"
    assert solve.max_wall_time_s == 86400.0
    assert (reconstruct.num_instances, reconstruct.multi_instance, reconstruct.infiniband) == (1, False, False)
    assert reconstruct.depends_on == ("solve",)


def test_task_definition_round_trips_through_a_plain_dict() -> None:
    for path in DATA.glob("good/jobs-*.yaml"):
        for job in validate_file(path).job_specifications:
            for t in job.task_definitions:
                # source_index only serves error paths while validating; it is not carried
                assert TaskDefinition.from_dict(t.to_dict()) == dataclasses.replace(t, source_index=0)


# --- jobs vs job schedules ----------------------------------------------------------


def test_recurrence_makes_a_job_schedule() -> None:
    (sched,) = validate_file(DATA / "good" / "jobs-schedule.yaml").job_specifications
    assert (sched.kind, sched.is_schedule) == ("job_schedule", True)
    s = sched.recurrence.schedule
    assert s.recurrence_interval == timedelta(days=1)
    assert s.start_window == timedelta(hours=2)
    assert s.do_not_run_until == "2026-12-01T02:00:00Z"
    assert sched.recurrence.job_manager.monitor_task_completion is True
    plain = one_job("job_specifications:\n- id: j\n  tasks:\n  - command: x\n")
    assert (plain.kind, plain.is_schedule) == ("job", False)


# --- pools --------------------------------------------------------------------------

POOL_DEFAULTS = [
    ("vm_count.dedicated", 1),  # set by the test input
    ("vm_count.low_priority", 0),
    ("task_slots_per_node", 1),
    ("autoscale.enabled", False),
    ("autoscale.formula", None),
    ("autoscale.evaluation_interval", timedelta(minutes=15)),
    ("inter_node_communication_enabled", False),
    ("virtual_network", None),
    ("os", None),
    ("location", None),
    ("container_registries", ()),
    ("vm_size_override", None),
    ("windows", False),
    ("native", False),
    ("vm_configuration.node_agent", "batch.node.ubuntu 22.04"),
]


@pytest.mark.parametrize("field,default", POOL_DEFAULTS, ids=[f for f, _ in POOL_DEFAULTS])
def test_pool_default(field: str, default: Any) -> None:
    pool = load_pool("pool_specification:\n  id: p\n  vm_size: STANDARD_D2S_V3\n  vm_count: {dedicated: 1}\n").pool_specification
    assert attr(pool, field) == default


def test_max_tasks_per_node_is_an_alias_of_task_slots_per_node() -> None:
    pool = validate_file(DATA / "good" / "pool-max-tasks-alias.yaml").pool_specification
    assert pool.task_slots_per_node == 8
    assert (
        load_pool(
            {"pool_specification": {"id": "p", "vm_size": "A2", "vm_count": {"dedicated": 1}, "task_slots_per_node": 3}}
        ).pool_specification.task_slots_per_node
        == 3
    )


POOL_SAMPLES = [
    # file, windows, native, autoscale, node agent
    ("pool-platform-native.yaml", False, True, False, "batch.node.ubuntu 20.04"),
    ("pool-custom-image.yaml", False, False, False, "batch.node.ubuntu 22.04"),
    ("pool-autoscale.yaml", False, True, True, "batch.node.ubuntu 22.04"),
    ("pool-windows.yaml", True, False, False, "batch.node.windows amd64"),
    ("pool-registries-override.yaml", False, False, False, "batch.node.ubuntu 22.04"),
    ("pool-max-tasks-alias.yaml", False, False, False, "batch.node.ubuntu 22.04"),
]


@pytest.mark.parametrize("name,windows,native,autoscale,agent", POOL_SAMPLES, ids=[s[0] for s in POOL_SAMPLES])
def test_pool_sample_os_native_and_autoscale(name, windows, native, autoscale, agent) -> None:
    pool = validate_file(DATA / "good" / name).pool_specification
    assert (pool.windows, pool.native, pool.autoscale.enabled, pool.vm_configuration.node_agent) == (
        windows,
        native,
        autoscale,
        agent,
    )


def test_windows_is_derived_from_the_image_when_os_is_not_given() -> None:
    pool = load_pool(
        "pool_specification:\n  id: w\n  vm_size: STANDARD_D2S_V3\n  vm_count: {dedicated: 1}\n"
        "  vm_configuration:\n    platform_image: {publisher: MicrosoftWindowsServer, offer: WindowsServer, sku: 2022-datacenter}\n"
    ).pool_specification
    assert (pool.os, pool.windows) == (None, True)


def test_registry_logins_and_size_override() -> None:
    pool = validate_file(DATA / "good" / "pool-registries-override.yaml").pool_specification
    assert [r.login for r in pool.container_registries] == ["myregistry.azurecr.io", "dockerhub-genomicslab", "ghcr.io"]
    o = pool.vm_size_override
    assert (o.cores, o.memory_mib, o.gpus, o.rdma) == (32, 262144, 2, False)


def test_autoscale_pool_may_start_with_zero_nodes() -> None:
    pool = validate_file(DATA / "good" / "pool-autoscale.yaml").pool_specification
    assert pool.vm_count.dedicated + pool.vm_count.low_priority == 0
    assert pool.autoscale.evaluation_interval == timedelta(minutes=5)
    assert "$TargetDedicatedNodes" in pool.autoscale.formula


def test_pool_location_is_lower_cased() -> None:
    pool = load_pool("pool_specification:\n  id: p\n  vm_size: A2\n  vm_count: {dedicated: 1}\n  location: WestEurope\n")
    assert pool.pool_specification.location == "westeurope"


# --- loading from a path, text or a mapping -----------------------------------------

MINIMAL = "job_specifications:\n- id: hello\n  tasks:\n  - command: echo hello\n"


@pytest.mark.parametrize("form", ["Path", "str path", "YAML text", "dict"])
def test_load_jobs_accepts_a_path_yaml_text_and_a_mapping(form: str, tmp_path: Path) -> None:
    f = tmp_path / "my-jobs.yaml"
    f.write_text(MINIMAL)
    src = {
        "Path": f,
        "str path": str(f),
        "YAML text": MINIMAL,
        "dict": {"job_specifications": [{"id": "hello", "tasks": [{"command": "echo hello"}]}]},
    }[form]
    cfg = load_jobs(src)
    assert isinstance(cfg, JobsConfig)
    assert [j.id for j in cfg.job_specifications] == ["hello"]
    assert cfg.job_specifications[0].task_definitions[0].command == "echo hello"


@pytest.mark.parametrize(
    "src,kwargs,source",
    [
        ("job_specifications: []\n", {}, "jobs.yaml"),
        ("job_specifications: []\n", {"name": "<cell>"}, "<cell>"),
        ({"job_specifications": []}, {}, "jobs.yaml"),
    ],
)
def test_errors_name_the_source_of_text_and_mappings(src, kwargs, source) -> None:
    with pytest.raises(ConfigError) as info:
        load_jobs(src, **kwargs)
    assert info.value.problems == [f"{source}: job_specifications = []: must not be empty"]


def test_errors_name_the_file_of_a_path(tmp_path: Path) -> None:
    f = tmp_path / "team-jobs.yaml"
    f.write_text("job_specifications:\n- id: x\n  tasks: []\n")
    with pytest.raises(ConfigError, match=r"^team-jobs\.yaml: job_specifications\[0\]\.tasks = \[\]: must not be empty$"):
        load_jobs(f)
    with pytest.raises(ConfigError, match="file not found"):
        load_jobs(str(tmp_path / "absent.yaml"))


def test_load_pool_and_load_federation_accept_the_same_forms(tmp_path: Path) -> None:
    text = (DATA / "good" / "pool-windows.yaml").read_text()
    assert isinstance(load_pool(text), PoolConfig)
    assert isinstance(load_pool(DATA / "good" / "pool-windows.yaml"), PoolConfig)
    assert isinstance(load_federation({"federation": {}}), FederationConfig)
    assert isinstance(load_federation(str(DATA / "good" / "federation-full.yaml")), FederationConfig)


def test_yaml_anchors_and_merge_keys_work_and_may_override() -> None:
    job = one_job(
        "job_specifications:\n- id: j\n  tasks:\n  - &t\n    command: echo default\n    docker_image: python:3.12\n"
        "  - <<: *t\n    command: echo own\n"
    )
    assert [(t.command, t.docker_image) for t in job.task_definitions] == [
        ("echo default", "python:3.12"),
        ("echo own", "python:3.12"),
    ]


# --- the good samples ---------------------------------------------------------------

KIND = {"jobs": JobsConfig, "pool": PoolConfig, "federation": FederationConfig}


def test_there_is_a_good_sample_of_every_kind() -> None:
    names = {p.name for p in GOOD}
    assert {
        "jobs-rich.yaml",
        "jobs-multi-instance.yaml",
        "jobs-schedule.yaml",
        "jobs-minimal.yaml",
        "pool-platform-native.yaml",
        "pool-custom-image.yaml",
        "pool-autoscale.yaml",
        "pool-windows.yaml",
        "pool-registries-override.yaml",
        "pool-max-tasks-alias.yaml",
        "federation-defaults.yaml",
        "federation-full.yaml",
    } <= names


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_sample_validates(path: Path) -> None:
    cfg = validate_file(path)
    assert isinstance(cfg, KIND[path.name.split("-", 1)[0]])


def test_cli_says_ok_for_every_good_sample() -> None:
    run = subprocess.run([str(BATCHFED), "config", "validate", *map(str, GOOD)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.splitlines() == [f"{p}: ok" for p in GOOD]


def fields_set(model: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every field written in the YAML, nested sections included."""
    out: set[str] = set()
    for name in model.model_fields_set:
        out.add(prefix + name)
        value = getattr(model, name)
        if hasattr(value, "model_fields_set"):
            out |= fields_set(value, f"{prefix}{name}.")
    return out


def test_rich_sample_uses_every_constraint_family_and_a_sweep() -> None:
    cfg = validate_file(DATA / "good" / "jobs-rich.yaml")
    hpo, genomics, render = cfg.job_specifications
    set_fields: set[str] = set()
    for job in cfg.job_specifications:
        set_fields |= fields_set(job.federation_constraints)
    every = {f for f, _ in CONSTRAINT_DEFAULTS}
    assert every <= set_fields, f"not exercised: {sorted(every - set_fields)}"
    # the sweep: 3 learning rates x 4 batch sizes, then an aggregation depending on all of them
    assert len(hpo.task_definitions) == 13
    assert hpo.task_definitions[5].command == "python train.py --lr 0.01 --batch-size 128 --out /mnt/results/lr0.01-bs128"
    assert hpo.task_definitions[-1].depends_on == tuple(f"task-{i:05d}" for i in range(12))
    assert all(t.gpu for t in hpo.task_definitions[:12]) and not hpo.task_definitions[-1].gpu
    assert hpo.federation_constraints.compute_node.memory.amount_mib == 100 * 1024
    assert render.federation_constraints.compute_node.memory.amount_mib == 8192  # written 8192M
    assert len(render.task_definitions) == 48
    assert genomics.federation_constraints.compute_node.vm_size == "STANDARD_E16S_V3"


def test_blank_keys_mean_default_as_in_the_original_templates():
    job = load_jobs(
        "job_specifications:\n- id: j\n  federation_constraints:\n    pool:\n      autoscale:\n        allow:\n"
        "        exclusive:\n      location:\n  tasks:\n  - command: a\n    environment_variables: {EMPTY: }\n"
    ).job_specifications[0]
    assert job.federation_constraints.pool.autoscale.allow is True
    assert job.federation_constraints.pool.location is None
    assert job.task_definitions[0].environment == {"EMPTY": ""}


@pytest.mark.parametrize(
    "where,yaml_text,message",
    [
        ("job gpus", "  gpus: -3\n  tasks:\n  - command: x\n", "job_specifications[0].gpus = -3: must be at least 0"),
        ("task gpus", "  tasks:\n  - command: x\n    gpus: -1\n", "job_specifications[0].tasks[0].gpus = -1: must be at least 0"),
        (
            "backlog ratio inf",
            "  federation_constraints:\n    pool:\n      max_active_task_backlog:\n        ratio: .inf\n  tasks:\n  - command: x\n",
            "max_active_task_backlog.ratio = inf: expected a finite number",
        ),
        (
            "backlog ratio nan",
            "  federation_constraints:\n    pool:\n      max_active_task_backlog:\n        ratio: .nan\n  tasks:\n  - command: x\n",
            "max_active_task_backlog.ratio = nan: expected a finite number",
        ),
    ],
)
def test_validation_refuses_what_submission_would_refuse(where: str, yaml_text: str, message: str) -> None:
    # `config validate`, `explain` and `jobs add` share these models, so one rule holds for all
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_jobs("job_specifications:\n- id: a\n" + yaml_text)
