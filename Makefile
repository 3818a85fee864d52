# The one way in: `make test` and `make demo` build .venv on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The exact pin is a local CPU wheel; any other torch resolves to a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[flax,torch,dev,demo]'
	touch $(STAMP)

setup: $(STAMP)

# Two workers (pytest-xdist), a test file per worker at a time: compiled shapes are shared
# within a file, and the tests that count compilations see their own file's programs only.
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile

test: $(STAMP)
	$(PYTEST) tests parity_tests

# Everything but the whole runs of the demo and the benchmark suite.
test-fast: $(STAMP)
	$(PYTEST) tests parity_tests -m "not slow"

demo: $(STAMP)
	$(BIN)/python -m examples.demo

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks --json benchmarks/results.json --plot benchmarks/scaling.png
	$(BIN)/python -m benchmarks.keep_pruned_overhead
	$(BIN)/python -m benchmarks.gpt2_torch_compat
	$(BIN)/python -m benchmarks.nm_blocks
	$(BIN)/python -m benchmarks.compact

clean:
	rm -rf $(VENV) build *.egg-info
