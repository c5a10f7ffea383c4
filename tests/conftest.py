"""Shared test helpers: small configs and runs of the simulated agent."""

from __future__ import annotations

import os

# Before numpy loads: the tests' matrices are small, and BLAS threads on a busy shared runner
# only contend (a Tobit fit runs ten times slower with them). Subprocesses inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path

import pytest

SIM_PARAMS = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"


def sim_config_text(
    *,
    name: str = "t",
    items: int = 6,
    params: str = SIM_PARAMS,
    extra_paradigm: str = "",
    seed: int = 0,
    concurrency: int = 1,
    batch_size: int | None = None,
) -> str:
    batch = "" if batch_size is None else f"batch_size = {batch_size}\n"
    return (
        f'[experiment]\nname = "{name}"\nparadigm = "change-of-mind"\nseed = {seed}\n\n'
        f"[paradigm]\nitems = {items}\n{extra_paradigm}\n"
        f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {params}\n'
        f"concurrency = {concurrency}\n{batch}"
    )


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
