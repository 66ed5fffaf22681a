# Foresight: `make demo` runs the whole pipeline locally; `make test` runs the test suite.
# Both bootstrap a virtualenv from the lock file on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.foresight-installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: install system-packages demo test test-fast lint lock dashboards clean

install: $(STAMP)

# Real servers for the integration tests (Prometheus and friends); a no-op when present.
system-packages:
	@bash infra/ci/install-system-packages.sh

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

demo: install
	$(VENV)/bin/foresight demo

# Everything, in two processes: the end-to-end pipelines beside the rest (infra/ci/test-shards.sh).
test: install system-packages
	@bash infra/ci/test-shards.sh $(PY)

# Everything but the servers, the demo pipeline and the slow model/data tests (`make test` runs them).
test-fast: install
	$(PY) -m pytest -m "not integration and not e2e and not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy foresight flows connectors simulator models features dashboards response streaming bench

# Re-resolve the dependency ranges in pyproject.toml and pin the result.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip && .lock-venv/bin/pip install --quiet ".[test,dev]"
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^foresight-aiops' > requirements.lock
	rm -rf .lock-venv

dashboards: install
	$(PY) -m dashboards.build

clean:
	rm -rf .foresight mlruns .pytest_cache
