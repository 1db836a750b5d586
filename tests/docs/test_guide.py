"""The user guide (docs/) works as written: the configuration reference is the one the models
generate, every link resolves, the quickstart's commands run on a fresh checkout, and every
constraint example picks the pool the page says it does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack import wait_until, workspace_pids

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))

import gen_config_reference as gen  # noqa: E402


def block(page: str, heading: str, lang: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return section.split(f"```{lang}\n", 1)[1].split("```", 1)[0]


# --------------------------------------------------------------------------- reference
def test_configuration_reference_is_generated_and_fresh() -> None:
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == gen.render(), "docs/configuration.md is stale: run .venv/bin/python docs/gen_config_reference.py"
    assert gen.main(["--check"]) == 0


def test_every_key_is_described_and_no_note_is_stale() -> None:
    rows = [r for rs in gen.all_rows().values() for r in rs]
    undescribed = [r[5] for r in rows if not r[4]]
    assert not undescribed, f"fields with no description in the model nor in NOTES: {undescribed}"
    keys = {r[5] for r in rows}
    stale = [k for k in gen.NOTES if k not in keys]
    assert not stale, f"NOTES for fields that no longer exist: {stale}"
    assert len(rows) > 100


# --------------------------------------------------------------------------- links
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_the_index_links_every_page_and_every_link_resolves() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    missing = [p for p in pages if f"]({p})" not in index]
    assert not missing, f"docs/README.md does not link: {missing}"
    broken = []
    for page in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        for target, _anchor in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, broken


def test_the_azure_settings_example_is_valid() -> None:
    from batchfed_lab.config.workspace import WorkspaceSettings

    text = block("azure.md", "## 4. The workspace settings", "yaml")
    settings = WorkspaceSettings.model_validate(yaml.safe_load(text))
    assert settings.store.backend == "azure" and settings.store.azure.credential == "default"


# --------------------------------------------------------------------------- quickstart
def _clone(tmp: Path) -> Path:
    """What a fresh clone brings that the commands use (the package itself is installed)."""
    clone = tmp / "clone"
    shutil.copytree(ROOT / "docs" / "examples", clone / "docs" / "examples")
    (clone / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "federation.yaml", clone / "notebooks")
    return clone


def test_quickstart_terminal_commands_work_as_written(tmp_path: Path) -> None:
    script = block("quickstart.md", "## 2. A federation", "bash")
    assert "export BATCHFED_HOME=/tmp/fed-quickstart" in script
    ws = tmp_path / "ws"
    script = script.replace("/tmp/fed-quickstart", str(ws))
    clone = _clone(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("BATCHFED_HOME", None)
    try:
        p = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=180,
        )
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        out = p.stdout
        for shown in (
            "ok",
            "proxy proxy-1 started",
            "added to demo: we-general (local, westeurope), eus-gpu (local, eastus)",
            "train: → eus-gpu",
            "gpu: needs a GPU size",
            "training on eus-gpu",
            "stopped proxies: proxy-1",
        ):
            assert shown in out, (shown, out[-3000:])
        # "the workspace stays": up again finds the federation and its jobs (same localbatch port)
        again = "batchfed up && batchfed fed jobs list demo --raw && batchfed fed output demo --job-id train --task-id task-00000"
        env2 = {**env, "BATCHFED_HOME": str(ws)}
        q = subprocess.run(["bash", "-e", "-c", again], cwd=clone, env=env2, capture_output=True, text=True, timeout=120)
        assert q.returncode == 0 and '"job_id": "train"' in q.stdout and "training on eus-gpu" in q.stdout, q.stdout + q.stderr
    finally:
        subprocess.run(
            ["bash", "-c", "batchfed down"], cwd=clone, env={**env, "BATCHFED_HOME": str(ws)}, capture_output=True, timeout=120
        )
    wait_until(lambda: not workspace_pids(ws), "the quickstart's processes to stop", 20)


def test_quickstart_notebook_cells_work_as_written(tmp_path: Path) -> None:
    from ipshell import ipython_shell
    from IPython.utils.capture import capture_output

    lines = [ln for ln in block("quickstart.md", "## 3. The same in a notebook", "python").splitlines() if ln.strip()]
    assert lines[0] == "%load_ext batchfed_lab" and lines[-1] == "%fed down --if-started-here"
    clone = _clone(tmp_path)
    ws = tmp_path / "ws"
    cwd = os.getcwd()
    shown = []
    with ipython_shell(tmp_path / "ipython", ws) as ip:
        try:
            os.chdir(clone / "notebooks")  # a notebook of `make lab` runs in notebooks/
            for line in lines:
                with capture_output() as out:
                    result = ip.run_cell(line)
                assert result.success, (line, result.error_in_exec, out.stdout, out.stderr)
                shown.append(out.stdout + str(result.result))
            assert any("training on eus-gpu" in s for s in shown), shown
        finally:
            os.chdir(cwd)
            ip.run_cell("%fed down")
    wait_until(lambda: not workspace_pids(ws), "the notebook's processes to stop", 20)


# --------------------------------------------------------------------------- constraints
EXAMPLE = re.compile(r"```yaml\n# example → (\S+)\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((DOCS / "constraints.md").read_text(encoding="utf-8"))


def test_every_constraint_has_an_example() -> None:
    from gen_config_reference import rows

    from batchfed_lab.config.constraints import FederationConstraints

    text = (DOCS / "constraints.md").read_text(encoding="utf-8")
    leaves = [r[0].strip("`").split(" ")[0].split("`")[0] for r in rows("c", FederationConstraints) if r[1] != "mapping"]
    # each leaf is documented under its name without the section (`cores.amount`, `location`)
    missing = [leaf for leaf in leaves if f"`{leaf.split('.', 1)[1]}`" not in text]
    assert not missing, missing
    assert len(examples()) >= 20


@pytest.fixture(scope="module")
def seven_pools(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from federation_stack import POOLS, running_stack

    with running_stack(tmp_path_factory.mktemp("constraints") / "ws") as s:
        s.federation("doc", list(POOLS))
        yield s


@pytest.mark.parametrize("expected,body", examples(), ids=[f"{i}-{e[0]}" for i, e in enumerate(examples())])
def test_constraint_example_picks_the_documented_pool(expected: str, body: str, seven_pools: Any) -> None:
    (explanation,) = seven_pools.client.explain("doc", body)
    assert explanation.pool_id == expected, f"{explanation!r}"
