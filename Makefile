# specgate: every target installs what it needs into .venv first, so a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install chromium generate check-generated test schema-diff golden bench soak run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install specgate with its dev extras

chromium: ## Debian's chromium for the browser test of /docs (apt-get; skipped when already installed)
	@command -v chromium >/dev/null 2>&1 || { \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

generate: $(STAMP) ## compile schemas/ into specgate.lock.json and src/specgate/_generated/
	$(BIN)/specgate compile

check-generated: $(STAMP) ## fail when a generated artefact is stale, missing or orphaned
	$(BIN)/specgate compile --check

test: check-generated chromium ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest -q

schema-diff: $(STAMP) ## breaking-change check: schemas/ against the committed lock and the previous commit
	$(BIN)/specgate diff lock:specgate.lock.json schemas
	if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:schemas 2>/dev/null; then \
		$(BIN)/specgate diff git:HEAD~1 schemas; \
	else echo "schema-diff: no previous commit with schemas/ to compare against"; fi

golden: $(STAMP) ## rewrite the golden test expectations (review the diff!)
	SPECGATE_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/golden

bench: $(STAMP) ## benchmarks: compile, validation, queues, stores, HTTP against a bare ceiling, schema diff
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/queue.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/http.py
	$(BIN)/python bench/diff.py

MINUTES ?= 10
soak: $(STAMP) ## mixed load for MINUTES (10) with Valkey and gateway SIGKILLed mid-run; audits deliveries (not in CI)
	$(BIN)/python bench/soak.py --minutes $(MINUTES)

run: $(STAMP) ## start the gateway with embedded backends
	$(BIN)/specgate serve

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info src/*.egg-info codegen/*.egg-info
