# specgate: every target installs what it needs into .venv first, so a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install generate check-generated test golden bench run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install specgate with its dev extras

generate: $(STAMP) ## compile schemas/ into specgate.lock.json and src/specgate/_generated/
	$(BIN)/specgate compile

check-generated: $(STAMP) ## fail when a generated artefact is stale, missing or orphaned
	$(BIN)/specgate compile --check

test: check-generated ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q

golden: $(STAMP) ## rewrite the golden test expectations (review the diff!)
	SPECGATE_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/golden

bench: $(STAMP) ## benchmarks: compile times, validation throughput, document stores
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/store.py

run: $(STAMP) ## start the gateway with embedded backends
	$(BIN)/specgate serve

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info src/*.egg-info codegen/*.egg-info
