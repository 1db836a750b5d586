"""JupyterLab in Debian's Chromium: run 01-quickstart and see the PoolCapacity widget render.

JupyterLab (the venv's) serves a temporary copy of notebooks/ on 127.0.0.1 with a random
free port and token; the quickstart's default workspace is therefore temporary too.
Playwright drives /usr/bin/chromium (no browser download), runs all cells, waits until the
live widget — not the HTML fallback — lists every pool, and saves screenshots (to the test's
tmp dir, and to $BATCHFED_ARTIFACTS when set). JupyterLab, its kernels, the stack and the
browser are stopped by pid; none may survive.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))  # nbrun helpers

from nbrun import NOTEBOOKS, descendants, install_kernelspec, process_table, wait_gone

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
POOLS = ["we-native", "we-gpu", "eus-hpc", "eus-lowpri", "jp-auto", "jp-custom", "jp-windows"]
VENV_BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (make test installs it with apt as root)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path: Path):
    """JupyterLab on a temp root holding a copy of the notebooks; yields (url, token, root)."""
    root = tmp_path / "root"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".workspaces", "*.out.ipynb", ".ipynb_checkpoints"))
    jupyter = tmp_path / "jupyter"
    install_kernelspec(jupyter / "data", "python3")  # the notebooks' kernel name, running this venv's python
    settings = jupyter / "settings" / "@jupyterlab"
    # every cell in the DOM (JupyterLab 4 renders only visible cells by default), and no news prompt
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHFED_NONINTERACTIVE", "BATCHFED_HOME")}
    env.update(
        JUPYTER_PATH=str(jupyter / "data"),
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
    )
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [
            str(VENV_BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    kernels: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while True:  # the server answers its API once it is up
            try:
                req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
            time.sleep(0.2)
        yield url, token, root, lambda: kernels.update(descendants(server.pid))
    finally:
        kernels.update(descendants(server.pid))
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()
        from federation_stack import workspace_processes

        from batchfed_lab.client import connect

        ws = root / ".workspaces" / "01-quickstart"
        if ws.exists():  # a run that failed before its last cell leaves its stack up
            with connect(ws) as client:
                client.down()
        left_kernels = wait_gone(lambda: [k for k in kernels if k in process_table()], 15)
        left = wait_gone(lambda: workspace_processes(root), 10)
        for pid in left_kernels + left:
            os.kill(pid, signal.SIGKILL)
        assert not left_kernels, f"kernels survived JupyterLab: {left_kernels}"
        assert not left, f"processes of the workspace survived: {left}"


def test_quickstart_renders_the_live_pool_capacity_widget(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token, _root, note_kernels = lab
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/01-quickstart.ipynb?token={token}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                timeout=60_000,
            )
            note_kernels()
            # remember whether the widget ever said it refreshes live (the end of the notebook stops it)
            page.evaluate(
                """() => { window.__batchfedLive = false;
                     new MutationObserver(() => { const w = document.querySelector('.batchfed-pool-capacity-widget');
                       if (w && w.innerText.includes('live every')) window.__batchfedLive = true; })
                     .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            widget = page.locator(".batchfed-pool-capacity-widget")  # the widget view; the HTML fallback has no such class
            page.wait_for_function(
                """(pools) => { const w = document.querySelector('.batchfed-pool-capacity-widget');
                     return w && pools.every(p => w.innerText.includes(p)); }""",
                arg=POOLS,
                timeout=60_000,
            )
            note_kernels()
            assert widget.count() == 1
            text = widget.inner_text()
            assert "7 pools in 3 regions" in text and all(r in text for r in ("westeurope", "eastus", "japaneast"))
            assert widget.locator("button", has_text="Pause").count() + widget.locator("button", has_text="Resume").count() == 1
            assert page.locator(".batchfed-submission-widget").count() <= 1

            # the notebook ran to its last cell: the stack is down, the widget shows its last refresh
            page.wait_for_function(
                "() => document.body.innerText.includes('stopped proxies:')",
                timeout=60_000,
            )
            assert page.evaluate("() => window.__batchfedLive"), "the widget never showed a live refresh"
            status = widget.locator(".widget-html").last.inner_text()
            assert "refreshes" in status and "error" not in status, status
            assert (
                page.locator(
                    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback"
                ).count()
                == 0
            )

            widget.scroll_into_view_if_needed()
            widget.screenshot(path=str(shots / "pool-capacity-widget.png"))
            page.screenshot(path=str(shots / "quickstart-lab.png"))
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)  # what the page showed when it failed
            (shots / "failure.txt").write_text(page.inner_text("body"))
            raise
        finally:
            _save_artifacts(shots)
            browser.close()
    assert (shots / "pool-capacity-widget.png").stat().st_size > 5_000


def _save_artifacts(shots: Path) -> None:
    artifacts = os.environ.get("BATCHFED_ARTIFACTS")
    if artifacts:
        dest = Path(artifacts) / "browser"
        dest.mkdir(parents=True, exist_ok=True)
        for f in shots.iterdir():
            shutil.copy2(f, dest / f.name)
