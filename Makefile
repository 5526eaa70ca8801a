# Every target calls `repro`; no logic lives here. `make help` lists them.
VENV   ?= .venv
PYTHON ?= python3
REPRO  := $(VENV)/bin/repro
PAPERS := random-walk-bridge norm-preservation skip-resnet-gd gradient-confusion transition-to-linearity

.PHONY: help setup all smoke paper test test-fast lint smoke-diff gpu-check verify report bench data readme clean $(PAPERS)

help:
	@echo "make all | smoke | paper | test | test-fast | lint | smoke-diff BASE=rev | gpu-check | verify | report | bench | data | readme | clean | <paper name>"

$(REPRO): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test,ray]'
	@touch $(REPRO)

setup: $(REPRO)

# make all PRESET=smoke runs every figure in seconds; missing datasets are unpacked from ../shared/datasets first
PRESET ?= default
all: $(REPRO)
	$(REPRO) all --preset $(PRESET)
	$(REPRO) report --preset $(PRESET)

smoke: $(REPRO)
	$(REPRO) all --preset smoke

paper: $(REPRO)
	$(REPRO) all --preset paper

verify: $(REPRO)
	$(REPRO) verify

# figures/index.html and figures/README.md from the results present (PRESET=smoke: figures/smoke/)
report: $(REPRO)
	$(REPRO) report --preset $(PRESET)

# tests across the CPUs (pytest-xdist; a group's tests share one worker: the Ray instance, the report fixture)
test: $(REPRO)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadgroup --durations=15

test-fast: $(REPRO)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadgroup -m "not slow"

lint: $(REPRO)
	$(VENV)/bin/ruff check reproduce tests tools

# every figure's smoke CSV, byte for byte, against revision BASE (default: the previous commit)
BASE ?= HEAD~1
smoke-diff: $(REPRO)
	$(VENV)/bin/python tools/compare_smoke.py $(BASE)

gpu-check: $(REPRO)
	$(VENV)/bin/python tests/gpu_check.py

bench: $(REPRO)
	$(REPRO) bench

data: $(REPRO)
	$(REPRO) data unpack --from ../shared/datasets

readme: $(REPRO)
	$(VENV)/bin/python -m reproduce.readme README.md

$(PAPERS): $(REPRO)
	$(REPRO) all --paper $@

clean:
	rm -rf data/.cache data/smoke figures/smoke
