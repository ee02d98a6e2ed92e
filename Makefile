# idlink — every target sets itself up from a bare clone with only python3 present.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project
# Dagster code servers and dbt subprocesses find the project's tools first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo dev test bench lint clean docs

setup: $(VENV)/.installed dbt_project/target/manifest.json

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --all-groups --inexact --compile-bytecode --python $(BIN)/python
	touch $@

# The dbt manifest is prepared once here, never at import time.
dbt_project/target/manifest.json: $(VENV)/.installed $(shell find dbt_project -name '*.sql' -o -name '*.yml' -o -name '*.csv' 2>/dev/null | grep -v -e /target/ -e /logs/)
	mkdir -p data
	cd dbt_project && ../$(BIN)/dbt parse --quiet
	touch $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml deploy/dagster.postgres.yaml
	mkdir -p $(DAGSTER_HOME)
	if [ -n "$$DAGSTER_POSTGRES_URL" ]; then cp deploy/dagster.postgres.yaml $@; else cp deploy/dagster.yaml $@; fi
	# the pool's single writer is DuckDB's rule: a Postgres warehouse serialises only steps of one scope itself
	if [ -n "$$WAREHOUSE_URL" ]; then sed -i '/default_limit: 1/d' $@; fi

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m orchestration.demo

dev: setup $(DAGSTER_HOME)/dagster.yaml
	bash deploy/dev.sh

test: setup lint
	$(BIN)/python -m pytest -q -n 2 --durations=15

bench: setup
	$(BIN)/python bench/ingest.py --size 100000
	$(BIN)/python bench/linking.py --size 1000000
	$(BIN)/python bench/publish.py --size 1000000
	$(BIN)/python bench/record_linkage.py
	$(BIN)/python bench/reverse_etl.py --size 100000 --latency-ms 50
	$(BIN)/python bench/realtime.py --start-stack

# The dbt docs site (every model and column, the lineage); the catalog is read from the warehouse when there is one.
docs: setup
	cd dbt_project && ../$(BIN)/dbt docs generate --static --quiet --target-path ../data/docs \
		$(if $(wildcard data/warehouse.duckdb),,--empty-catalog)
	@echo "dbt docs site: data/docs/static_index.html"

lint: setup
	$(BIN)/ruff check settings warehouse inbox clients ingestion reverse_etl publishing privacy stewardship gateway orchestration sandbox bench tests

clean:
	rm -rf data dbt_project/target dbt_project/logs
