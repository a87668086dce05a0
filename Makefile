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

.PHONY: test test-nojit demo lint typecheck venv bench-encode bench-search bench-eval bench-train bench-server

venv: $(VENV)/.installed

# torch is pinned to the CPU wheel (constraints.txt) so no install can pull the CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

# The gates: lint, format, types; then every test, the docstring examples and the docs' Python
# blocks (tests/test_docs.py); then the engine again with numba off (the numpy specification).
test: lint typecheck
	$(PY) -m pytest -q -x -p no:cacheprovider --durations=15 --doctest-modules src tests
	$(MAKE) --no-print-directory test-nojit

# The engine's kernels run as plain Python/numpy: they are the executable specification.
test-nojit: venv
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -x -p no:cacheprovider -m "not numba_only" tests/index tests/test_sparse.py

typecheck: venv
	$(PY) -m mypy

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

bench-server: venv
	$(PY) benchmarks/server.py
