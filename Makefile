# Every target calls `repro`; no logic lives here. `make help` lists them.
VENV   ?= .venv
PYTHON ?= python3
REPRO  := $(VENV)/bin/repro
PAPERS := random-walk-bridge norm-preservation skip-resnet-gd gradient-confusion transition-to-linearity

.PHONY: help setup all smoke paper test test-fast lint smoke-diff gpu-check verify report bench ladder data readme clean $(PAPERS)

help:
	@echo "make all | smoke | paper | test | test-fast | lint | smoke-diff BASE=rev | gpu-check | verify | report | bench | ladder | data | readme | clean | <paper name>"

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

# scale ladders (`repro ladder`): does a claim that fails at the default scale close its gap toward the paper's
# settings? Confusion Figs 5/6: one tanh panel at lr 0.01 (the lr the deepest / narrowest points select) with the
# paper's 10 runs, where 3 runs left the sign of the trend to noise (Fig 5 tanh/LeCun, the issue's example; Fig 6
# tanh/Glorot, a reversed panel); linearity Fig 1: the stop loss toward the paper's 1e-4. Each is sized to about
# 1-2 CPU-hours on the 2-core machine (`repro ladder ... --dry-run` prints the plan); finished points stay in the
# cache, so a ladder resumes across sessions. Ray is installed by `make setup`; EXEC=local runs the points here.
EXEC ?= ray
LADDER_C = --set acts=tanh --set runs=10 --set lrs=0.01 --executor $(EXEC)
ladder: $(REPRO)
	$(REPRO) ladder confusion fig5 $(LADDER_C) --set inits=lecun --set depths=10,30,100 --set steps=2000,4000,8000
	$(REPRO) ladder confusion fig6 $(LADDER_C) --set inits=glorot --set steps=2000,4000,8000
	$(REPRO) ladder confusion fig6 $(LADDER_C) --set inits=glorot --set depths=50/100/200
	$(REPRO) ladder linearity fig1 --set widths=30,100,1000 --set right_width=1000 --set max_steps=100000 \
		--set stop_loss=0.01,0.001,0.0001 --executor $(EXEC)

data: $(REPRO)
	$(REPRO) data unpack --from ../shared/datasets

readme: $(REPRO)
	$(VENV)/bin/python -m reproduce.readme README.md

$(PAPERS): $(REPRO)
	$(REPRO) all --paper $@

clean:
	rm -rf data/.cache data/smoke figures/smoke
