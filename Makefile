# NexCart Analytics: `make run` builds everything from the sample data, `make test` tests it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: help install run sample test test-fast bench ui dbt-build dbt-docs clean

help:
	@echo "make run    install, generate sample data if data/raw is empty (and NEXCART_DATA_DIR unset), build the whole graph"
	@echo "make test   install and run the whole test suite (what CI runs)"
	@echo "make test-fast   the edit-test loop: the suite less the tests that build a warehouse with the whole pipeline or drive a browser"
	@echo "make bench  time nexcart run against the floor (plain DuckDB) and pandas: 50k orders x 3, about 10 min (BENCH_ARGS=\"--sizes 50k,1m --repeat 3,1\")"
	@echo "make ui     the Dagster UI on http://127.0.0.1:3000"
	@echo "make dbt-build / make dbt-docs   dbt on its own (after a run has ingested raw data)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The sample is generated only into the default raw root, and only when it is empty: with
# NEXCART_DATA_DIR set (a shop's own exports, or a typo), fake data must never be built into the
# warehouse; `nexcart run` then refuses an empty or missing folder with a clear message.
sample: $(STAMP)
	@if [ -n "$$NEXCART_DATA_DIR" ]; then \
		echo "NEXCART_DATA_DIR is set: running on $$NEXCART_DATA_DIR, no sample generated"; \
	elif [ -z "$$(ls -A data/raw 2>/dev/null)" ]; then \
		$(BIN)/nexcart generate --out data/raw; \
	else echo "data/raw already has data: not generating (nexcart generate --help)"; fi

run: sample
	$(BIN)/nexcart run

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not pipeline and not browser"

# benchmarks/harness.py (benchmarks/README.md); its extra: psutil (peak RSS) and matplotlib (the chart)
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/nexcart bench $(BENCH_ARGS)

ui: $(STAMP)
	$(BIN)/python -c "from orchestration.dbt_project import ensure_manifest; ensure_manifest()"
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

dbt-build: $(STAMP)
	cd dbt_project && ../$(BIN)/dbt build --profiles-dir .

dbt-docs: $(STAMP)
	cd dbt_project && ../$(BIN)/dbt docs generate --profiles-dir .

clean:
	rm -rf data/warehouse data/docs data/logs dbt_project/target dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs
