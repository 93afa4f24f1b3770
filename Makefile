# Two commands from a fresh clone: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist processes for `make test`: one more than CI's 2 cores, since many tests wait (on a subprocess, a
# tracking server's timeout, the Spark JVM) with a core idle: 18.6 min against 24.0 with 2 workers, on the same
# 2-core machine (bench/RESULTS.md, "Wave 24: CI time"). Three workers peaked at 8.9 GB in use, so a machine
# with less than 12 GB of memory keeps two; `make test TEST_WORKERS=0` runs in one process
TEST_WORKERS ?= $(shell awk '/^MemTotal:/ {print ($$2 >= 12000000 ? 3 : 2)}' /proc/meminfo 2>/dev/null || echo 2)

.PHONY: run test lint bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

run: $(STAMP)
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/churn run

test: $(STAMP)
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python bench/generate.py
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python bench/features.py
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python bench/train.py
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python bench/score.py
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m bench.chance_bound

clean:
	rm -rf $(VENV) .churn .pytest_cache .ruff_cache build *.egg-info bench/out
