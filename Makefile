# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
# The CPU build of torch goes in first, so that no multi-GB CUDA build is ever pulled.
TORCH_PIN ?= torch==2.13.0
# Recipes find the venv's tools first (python, torchrun, tensorboard), as after `source .venv/bin/activate`.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test bench bench-smoke cluster-start cluster-stop

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[test,onnx,wandb]'
	touch $@

demo: install
	$(PY) -m ecgdist.demo

test: install
	$(PY) -m pytest -q -rs --durations=15 tests

bench: install
	$(PY) bench/preprocess.py && $(PY) bench/loader.py && $(PY) bench/models.py && $(PY) bench/train.py && $(PY) bench/leakage.py && $(PY) bench/verify.py && $(PY) bench/shuffle.py && $(PY) bench/probe.py

# Every benchmark at tiny sizes (figures not judged): CI runs it after the tests.
bench-smoke: install
	ECGDIST_PYTHON=$(PY) bash bench/smoke.sh

cluster-start:
	bash slurm/local-cluster.sh start

cluster-stop:
	bash slurm/local-cluster.sh stop
