# Two entry points do all set-up on a fresh machine: `make lab` and `make test`.
# Everything else is a helper they call.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP_Q  := --quiet --disable-pip-version-check --no-warn-script-location
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: venv azurite chromium test lab demo bench drills clean

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_Q) --upgrade pip 2>/dev/null || true
	$(PY) -m pip install $(PIP_Q) -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import batchfed_lab, pytest, pydantic, azure.batch" || (echo "python environment is incomplete" >&2; exit 1)
	@touch $@

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

test: venv azurite chromium
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	$(PY) bench/scheduler.py
	@for b in bench/store.py bench/localbatch.py bench/adapter.py bench/proxy.py bench/surfaces.py; do \
	  if [ -f $$b ]; then echo; echo "== $$b"; $(PY) $$b || exit 1; fi; done

lab: venv
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
