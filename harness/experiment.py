"""From a validated config to a finished run directory.

`prepare` checks everything that can be checked without spending anything — the paradigm's
settings, every model spec and its parameters — so that bad input never touches a run
directory. `execute` then opens the run directory, loads the models and runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness.config import ExperimentConfig, describe_validation_error
from harness.errors import ConfigError
from harness.manifest import check_compatible, start_or_resume
from harness.models.base import ModelBackend
from harness.models.registry import create_backend, validate_model
from harness.paradigm import Paradigm
from harness.run_store import RunStore
from harness.runner import ExperimentRunner, ProgressSink, RunReport
from harness.trials_table import build_trials_table, write_trials_table


@dataclass(frozen=True)
class PreparedExperiment:
    """A config that passed every check, with its paradigm built."""

    config: ExperimentConfig
    paradigm: Paradigm


def prepare(
    config: ExperimentConfig, paradigms: Mapping[str, type[Paradigm]]
) -> PreparedExperiment:
    """Validate the paradigm settings and every model entry; loads no model."""
    name = config.experiment.paradigm
    if name not in paradigms:
        known = ", ".join(sorted(paradigms))
        raise ConfigError(f"unknown paradigm {name!r} (known: {known})")
    paradigm_class = paradigms[name]
    try:
        settings = paradigm_class.Settings.model_validate(config.paradigm)
    except ValidationError as error:
        raise ConfigError(f"[paradigm]: {describe_validation_error(error)}") from None
    for model in config.models:
        validate_model(model)
    paradigm = paradigm_class(settings, config.experiment.seed)
    try:
        paradigm.items()  # generating the items can fail on settings (e.g. too many asked)
    except ValueError as error:
        raise ConfigError(f"[paradigm]: {error}") from None
    return PreparedExperiment(config, paradigm)


def execute(
    prepared: PreparedExperiment, run_dir: Path, progress: ProgressSink | None = None
) -> RunReport:
    """Run (or resume) the experiment into `run_dir` and write trials.parquet."""
    config = prepared.config
    with RunStore(run_dir) as store:
        check_compatible(run_dir, config)  # refuse a foreign run before loading any model
        store.repair()
        backends: dict[str, ModelBackend] = {}
        try:
            for model in config.models:
                backends[model.id] = create_backend(model)
            start_or_resume(run_dir, config, {mid: b.describe() for mid, b in backends.items()})
            runner = ExperimentRunner(config, prepared.paradigm, backends, store, progress)
            return asyncio.run(_run_then_close(runner, backends))
        finally:
            write_trials_table(run_dir, build_trials_table(store.load().values()))


async def _run_then_close(runner: ExperimentRunner, backends: dict[str, ModelBackend]) -> RunReport:
    try:
        return await runner.run()
    finally:
        for backend in backends.values():
            await backend.aclose()
