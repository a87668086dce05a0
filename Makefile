# `make test` and `make demo` work on a fresh machine: they create/update .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED := $(abspath ../shared)

# Real models come from the offline hub cache beside the checkout, when it is there.
ifneq ($(wildcard $(SHARED)/hf-cache),)
export HF_HUB_OFFLINE := 1
export HF_HUB_CACHE := $(SHARED)/hf-cache
endif
export TOKENIZERS_PARALLELISM := false

.PHONY: test demo lint venv bench-encode bench-search bench-eval bench-train

venv: $(VENV)/.installed

# torch is pinned to the CPU wheel (constraints.txt) so no install can pull the CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

test: venv
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q -x -p no:cacheprovider

demo: venv
	$(PY) -m sparsearch.cli demo

lint: venv
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

bench-encode: venv
	$(PY) benchmarks/encode.py

bench-search: venv
	$(PY) -m pip install -q -c constraints.txt -e ".[test,bench]"
	$(PY) benchmarks/search.py

bench-eval: venv
	$(PY) benchmarks/eval_table.py

bench-train: venv
	$(PY) benchmarks/train_scifact.py
