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

from harness.batch_runner import DEFAULT_POLL_S
from harness.config import ExperimentConfig, describe_validation_error
from harness.errors import ConfigError, UserError
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
    prepared: PreparedExperiment,
    run_dir: Path,
    progress: ProgressSink | None = None,
    *,
    retry_failed: bool = True,
    batch: bool = False,
    batch_poll_s: float = DEFAULT_POLL_S,
) -> RunReport:
    """Run (or resume) the experiment into `run_dir` and write trials.parquet.

    `retry_failed`: make the calls whose stored outcome is a failure again (the default);
    off, they stay failed and only calls without any record are made. `batch`: run the
    models whose provider has a batch API as batch waves (`harness.batch_runner`).
    """
    config = prepared.config
    with RunStore(run_dir) as store:
        check_compatible(run_dir, config)  # refuse a foreign run before loading any model
        store.repair()
        backends: dict[str, ModelBackend] = {}
        try:
            for model in config.models:
                backends[model.id] = create_backend(model)
            runner = ExperimentRunner(
                config,
                prepared.paradigm,
                backends,
                store,
                progress,
                retry_failed=retry_failed,
                batch=batch,
                batch_poll_s=batch_poll_s,
            )
            return asyncio.run(_preflight_run_close(runner, run_dir, backends))
        finally:
            write_trials_table(run_dir, build_trials_table(store.records().values()))


async def _preflight_run_close(
    runner: ExperimentRunner, run_dir: Path, backends: dict[str, ModelBackend]
) -> RunReport:
    """Preflight every backend, write the manifest, run; close the backends in any case.

    One event loop for all three: the API clients' connection pools belong to the loop
    that opened them.
    """
    try:
        # Concurrently: starting two vLLM servers, or probing two APIs, need not wait in line.
        outcomes = await asyncio.gather(
            *(backend.preflight() for backend in backends.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        describe = {mid: backend.describe() for mid, backend in backends.items()}
        start_or_resume(run_dir, runner.config, describe)
        try:
            return await runner.run()
        except BaseExceptionGroup as group:
            # The runner's task groups wrap a backend's UserError (a revoked key, a model
            # that vanished): unwrapped, the CLI reports it as one line.
            user_error = _first_user_error(group)
            if user_error is None:
                raise
            raise user_error from None
    finally:
        for backend in backends.values():
            await backend.aclose()


def _first_user_error(group: BaseExceptionGroup[BaseException]) -> UserError | None:
    for error in group.exceptions:
        if isinstance(error, UserError):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _first_user_error(error)
            if found is not None:
                return found
    return None
