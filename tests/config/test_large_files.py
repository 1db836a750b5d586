"""A config file as large as the limit allows validates in bounded memory and CPU.

Each case runs ``batchfed_lab.config.validate_file`` in a child process whose address space
and CPU time are capped (``resource.setrlimit``): a step that is quadratic, or that keeps
many copies of the input, hits a cap and the child dies — a guard on complexity, not a
timed test. The caps are generous (several times what the code needs on a slow machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from batchfed_lab.config import loading

MEMORY_CAP = 768 * 1024 * 1024  # bytes of address space for the child (Python itself uses ~45 MB)
CPU_CAP_S = 60  # CPU seconds for the child; the limit is chosen so a file validates in ≤ 5 s

CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
    resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
    from batchfed_lab.config import validate_file
    config = validate_file(sys.argv[1])
    print(sum(len(j.task_definitions) for j in config.job_specifications))
    """
)


def validate_capped(path: Path) -> int:
    """Validate ``path`` in a capped child; the number of tasks it found."""
    code = CHILD.format(mem=MEMORY_CAP, cpu=CPU_CAP_S)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"child exited {proc.returncode}: {proc.stderr[-2000:]}"
    return int(proc.stdout.strip())


def fill(head: str, item: str, limit: int) -> tuple[str, int]:
    """``head`` then as many numbered copies of ``item`` as fit in ``limit`` bytes."""
    parts, size, n = [head], len(head), 0
    while True:
        text = item.format(n=n)
        if size + len(text) > limit:
            return "".join(parts), n
        parts.append(text)
        size += len(text)
        n += 1


def test_a_file_of_many_small_jobs_at_the_limit_validates_in_bounded_memory(tmp_path: Path) -> None:
    # the costliest shape per byte: many mappings, few characters each
    text, n = fill("job_specifications:\n", "- id: j{n}\n  tasks:\n  - command: echo {n}\n", loading.MAX_CONFIG_BYTES)
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    assert validate_capped(path) == n


def test_tasks_inheriting_a_large_job_environment_do_not_each_copy_it(tmp_path: Path) -> None:
    # 20,000 variables × 20,000 tasks: one shared mapping, not 400 million entries
    env = "".join(f"    V{i}: value{i}\n" for i in range(20_000))
    tasks = "".join(f"  - command: echo {i}\n" for i in range(20_000))
    path = tmp_path / "jobs.yaml"
    path.write_text(f"job_specifications:\n- id: big\n  environment_variables:\n{env}  tasks:\n{tasks}")
    assert path.stat().st_size <= loading.MAX_CONFIG_BYTES
    assert validate_capped(path) == 20_000


def test_the_size_limit_is_said_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "MAX_CONFIG_BYTES", 1000)
    big = tmp_path / "jobs.yaml"
    big.write_text("# " + "x" * 2000 + "\n")
    from batchfed_lab.config import validate_file
    from batchfed_lab.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        validate_file(big)
    assert str(info.value).startswith("jobs.yaml: file is larger than 1000 bytes, the limit")
    assert "split" in str(info.value)
