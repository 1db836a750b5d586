# Two entry points do all set-up on a fresh machine: `make lab` and `make test`.
# Everything else is a helper they call.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP_Q  := --quiet --disable-pip-version-check --no-warn-script-location
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: venv azurite chromium check fix test lab demo bench drills clean

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@echo "creating $(VENV) and installing batchfed_lab with its extras (pip, about a minute on a fresh machine) ..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_Q) --upgrade pip 2>/dev/null || true
	$(PY) -m pip install $(PIP_Q) -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import batchfed_lab, pytest, pydantic, azure.batch" || (echo "python environment is incomplete" >&2; exit 1)
	@touch $@
	@echo "$(VENV) is ready"

# Azurite (Azure Storage emulator) from the npm registry, pinned in package.json.
azurite: $(NODE_STAMP)

$(NODE_STAMP): package.json
	@command -v npm >/dev/null || (echo "npm is required for Azurite (apt-get install nodejs npm)" >&2; exit 1)
	npm install --no-audit --no-fund --loglevel=error
	@test -x node_modules/.bin/azurite
	@touch $@

# Debian's Chromium for the browser test (as root in CI; skipped elsewhere with a note).
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: chromium could not be installed; the browser test will be skipped" >&2; \
	else echo "note: chromium is missing and this is not root; the browser test will be skipped" >&2; fi

# check: the gate that runs first in `make test` (rules in pyproject.toml; see CONTRIBUTING.md)
LINTED := batchfed_lab tests bench drills docs
check: venv
	@echo "ruff check, ruff format --check, mypy"
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

# fix: ruff's safe fixes and the formatter
fix: venv
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

test: venv azurite chromium check
	$(PY) -m pytest $(PYTEST_ARGS)

# drills: the resilience drills at full strength (kill -9 storms, HA failover, restarts, store
# contention, preemption, an Azure store outage, 10,000-example fuzzing); prints every figure.
drills: venv azurite
	$(PY) drills/run.py

# bench: every benchmark runs and prints its figures, even after one misses a target; the
# exit status is non-zero at the end if any missed
BENCHES := bench/scheduler.py bench/store.py bench/localbatch.py bench/adapter.py bench/proxy.py \
  "bench/proxy.py --store azure" bench/surfaces.py bench/widgets.py bench/config_load.py bench/data.py bench/fairshare.py
bench: venv azurite
	@missed=""; for b in $(BENCHES); do \
	  echo; echo "== $$b"; $(PY) $$b || missed="$$missed\n  $$b"; done; \
	if [ -n "$$missed" ]; then printf "\nmissed a target:$$missed\n" >&2; exit 1; fi; \
	echo; echo "every benchmark met its targets"

# lab: start the embedded stack (localbatch + Azurite + proxy) in 01-quickstart's workspace, then JupyterLab on
# 127.0.0.1 opened on 01-quickstart (it prints its URL with the token). Its kernels get that
# workspace (BATCHFED_HOME) and a file (BATCHFED_LAB_STACKS) where every `up` or `proxy start` of
# theirs notes its workspace; on exit (Ctrl-C twice) every stack noted there is brought down.
LAB_WS ?= $(CURDIR)/notebooks/.workspaces/01-quickstart
JUPYTER ?= $(VENV)/bin/jupyter
AS_ROOT = $$([ "$$(id -u)" = 0 ] && echo --allow-root)
lab: venv azurite
	@stacks=$$(mktemp); echo "$(LAB_WS)" >"$$stacks"; \
	trap 'sort -u "$$stacks" | while IFS= read -r ws; do BATCHFED_HOME="$$ws" $(VENV)/bin/batchfed down; done; rm -f "$$stacks"' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "starting the embedded stack in $(LAB_WS)"; \
	BATCHFED_HOME="$(LAB_WS)" $(VENV)/bin/batchfed up --config notebooks/federation.yaml || exit 1; \
	BATCHFED_HOME="$(LAB_WS)" BATCHFED_LAB_STACKS="$$stacks" $(JUPYTER) lab --notebook-dir=notebooks \
	  --ServerApp.ip=127.0.0.1 --LabApp.default_url=/lab/tree/01-quickstart.ipynb $(AS_ROOT)

# demo: run 01-quickstart headless (papermill, a temporary workspace and kernelspec of this venv)
# and print its placement table; every process it started is stopped, the temp folder removed.
demo: venv
	@set -e; tmp=$$(mktemp -d); \
	trap 'BATCHFED_HOME="$$tmp/ws" $(VENV)/bin/batchfed down >/dev/null 2>&1 || true; rm -rf "$$tmp"' EXIT; \
	$(PY) -m ipykernel install --prefix "$$tmp/jupyter" --name batchfed-demo >/dev/null 2>&1; \
	echo "running notebooks/01-quickstart.ipynb headless (papermill) ..."; \
	if ! JUPYTER_PATH="$$tmp/jupyter/share/jupyter" $(PY) -m papermill notebooks/01-quickstart.ipynb "$$tmp/out.ipynb" \
	    -k batchfed-demo --cwd notebooks -p workspace "$$tmp/ws" --execution-timeout 120 --no-progress-bar \
	    2>"$$tmp/papermill.log"; then cat "$$tmp/papermill.log" >&2; exit 1; fi; \
	echo "placements:"; \
	$(PY) -m batchfed_lab.widgets "$$tmp/out.ipynb" placements job_id state pool_id account location latency_s tasks tasks_completed

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
