# segmint: `make demo` runs the demo workspace, `make test` runs every test. Both set themselves up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYS_STAMP := $(VENV)/.system-packages

.PHONY: demo test test-deep bench lint format setup system clean

setup: $(STAMP)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# System packages the tests need (PostgreSQL server for `segmint sync` tests; Chromium and CJK fonts for
# the browser tests). Idempotent.
system: $(SYS_STAMP)

$(SYS_STAMP): Makefile | $(BIN)/python
	@missing=""; \
	for p in postgresql chromium fonts-noto-cjk; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	touch $(SYS_STAMP)

demo: setup
	$(BIN)/segmint demo

test: setup system
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -n 2 -q

test-deep: setup system
	SEGMINT_DEEP=1 $(BIN)/python -m pytest -n 2 -q -m "deep or not deep"

bench: setup
	$(BIN)/python -m bench.run

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) segmint-data .pytest_cache .ruff_cache
