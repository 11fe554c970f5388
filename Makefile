# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   bootstrap .venv, then run the kit's main job on the embedded simulator
#   make test   bootstrap .venv, then the whole test suite (unit tests, then notebooks)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test unit notebooks site lab lint bench bench-peer-env clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || (command -v $(PYTHON) >/dev/null && $(PYTHON) -m venv $(VENV)) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mcrl_kit demo $(DEMO_ARGS)

# unit tests without nbmake's plugin (it costs ~4 s per start), notebooks separately
# -rs: each skip's reason; --durations=25: the slowest tests, where CI time goes
test: $(STAMP)
	$(PY) -m pytest -p no:nbmake -q -rs --durations=25 tests
	MCRL_HEADLESS=1 $(PY) -m pytest -q -rs --durations=25 --nbmake notebooks

unit: $(STAMP)
	$(PY) -m pytest -p no:nbmake -q tests -m "not slow and not browser"

# the notebook series through papermill (CI profile) into build/notebooks/
notebooks: $(STAMP)
	$(PY) -m mcrl_kit notebooks

# the series executed (CI profile) and rendered to static HTML under build/site/ (readable without running)
site: $(STAMP)
	$(PY) -m mcrl_kit notebooks --site

# JupyterLab on copies under build/lab/ (running and autosave never write into notebooks/)
lab: $(STAMP)
	$(PY) -m mcrl_kit lab $(LAB_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# throughput, memory and FLOP efficiency (build/bench/, README's Performance tables):
# benchmarks/bench.py under tcmalloc when libtcmalloc-minimal4 is installed (its workers
# get it too; `make bench TCMALLOC=` or MCRL_TCMALLOC=0: glibc malloc)
TCMALLOC ?= $(if $(filter 0,$(MCRL_TCMALLOC)),,$(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
	/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4 \
	/usr/lib/libtcmalloc_minimal.so.4 /usr/local/lib/libtcmalloc_minimal.so.4)))
BENCH_ARGS ?= --wait-quiet 120 --readme
bench: $(STAMP)
	$(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC)$${LD_PRELOAD:+:$$LD_PRELOAD}) $(PY) benchmarks/bench.py $(BENCH_ARGS)

# RecBole 1.2.1 in .venv-peer: benchmarks/bench.py runs the peer side by side when this env exists
bench-peer-env:
	bash benchmarks/make_peer_env.sh

clean:
	rm -rf build runs data/cache .pytest_cache
