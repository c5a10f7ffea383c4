"""From a validated config to a finished run directory.

`prepare` checks everything that can be checked without spending anything — the paradigm's
settings, every model spec and its parameters — so that bad input never touches a run
directory. `execute` then opens the run directory, loads the models and runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mindshift.harness.batch_runner import DEFAULT_POLL_S
from mindshift.harness.config import ExperimentConfig, ModelSection, describe_validation_error
from mindshift.harness.errors import ConfigError, RunDirError, UserError
from mindshift.harness.interrupts import run_interruptibly
from mindshift.harness.manifest import check_compatible, start_or_resume, stimuli_digest
from mindshift.harness.models.base import ModelBackend
from mindshift.harness.models.registry import (
    check_installed,
    create_backend,
    provider_of,
    validate_model,
)
from mindshift.harness.paradigm import Paradigm
from mindshift.harness.readouts import (
    AutoReadoutBackend,
    ReadoutBackend,
    check_readout,
    make_readout,
    resolve_auto,
)
from mindshift.harness.run_dir import RunDirState, inspect_run_dir, load_logs
from mindshift.harness.run_format import CALLS_FILE, LOCK_FILE, TRIALS_FILE
from mindshift.harness.run_store import RunStore
from mindshift.harness.runner import ExperimentRunner, ProgressSink, RunReport, RunScope
from mindshift.harness.trials_table import build_trials_table, write_trials_table

MAX_PLANNED_CALLS = 20_000_000
"""More calls than any experiment needs (the paper's largest design is some hundred thousand
per model), and more records than a run holds in memory: a config asking for more is a typo
(repeats = 1e9), refused before anything is written."""


@dataclass(frozen=True)
class PreparedExperiment:
    """A config that passed every check, with its paradigm built."""

    config: ExperimentConfig
    paradigm: Paradigm
    stimuli_sha256: str = ""
    """Digest of the paradigm's items (main, then calibration): the manifest keeps it, so a
    resume on edited questions is refused (`harness.manifest.check_compatible`)."""
    planned_calls: int = 0
    """Every call of the run, all models together."""


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
        offered = provider_of(model).capabilities
        readout = resolve_auto(offered) if model.readout == "auto" else model.readout
        check_readout(model.id, model.spec, readout, offered)
    paradigm = paradigm_class(settings, config.experiment.seed)
    try:
        # Generating the items can fail on settings (e.g. too many asked).
        items = list(paradigm.items())
        calibration = list(paradigm.calibration_items())
        # Turn 1, then every later turn of every condition.
        per_item = 1 + sum(paradigm.turns(condition) - 1 for condition in paradigm.conditions())
    except ValueError as error:
        raise ConfigError(f"[paradigm]: {error}") from None
    per_model = len(items) * config.experiment.repeats * per_item + len(calibration)
    planned = per_model * len(config.models)
    if planned > MAX_PLANNED_CALLS:
        raise ConfigError(
            f"this config plans {planned:,} calls ({len(items):,} items x "
            f"{config.experiment.repeats:,} repeats x {per_item} calls per item x "
            f"{len(config.models)} models), more than the {MAX_PLANNED_CALLS:,} a run may hold"
        )
    digest = stimuli_digest(item.to_json() for item in [*items, *calibration])
    return PreparedExperiment(config, paradigm, digest, planned)


def check_run_dir(prepared: PreparedExperiment, run_dir: Path) -> RunDirState:
    """Everything `execute` checks before it writes: the directory, its manifest against
    this config and its items, every line of its logs. Reads only (`--dry-run` uses it to
    say when the run would be refused)."""
    state = inspect_run_dir(run_dir, for_run=True)
    check_compatible(run_dir, state.manifest, prepared.config, prepared.stimuli_sha256)
    load_logs(state)
    return state


def execute(
    prepared: PreparedExperiment,
    run_dir: Path,
    progress: ProgressSink | None = None,
    *,
    retry_failed: bool = True,
    batch: bool = False,
    batch_poll_s: float = DEFAULT_POLL_S,
    on_start: Callable[[], None] | None = None,
    scope: RunScope | None = None,
    on_load: Callable[[ModelSection], None] | None = None,
) -> RunReport:
    """Run (or resume) the experiment into `run_dir` and write trials.parquet.

    `retry_failed`: make the calls whose stored outcome is a failure again (the default);
    off, they stay failed and only calls without any record are made. `batch`: run the
    models whose provider has a batch API as batch waves (`harness.batch_runner`).
    `on_start`: called once the run has begun (the manifest is written), before any call.
    `scope`: the models and items this run makes (default: all of them); only its models'
    backends are built. `on_load`: called with each of those model entries just before its
    backend is built (which may load a model for seconds or minutes).

    Nothing is written to `run_dir` until every check passed and every backend's preflight
    succeeded: a refused run (a foreign or damaged directory, a different config, a missing
    API key) leaves an existing directory byte for byte as it was. Interrupts: a first
    SIGINT cancels the run cleanly, a second one cuts the clean-up short
    (`harness.interrupts`); either way KeyboardInterrupt comes out and the run resumes.
    """
    config = prepared.config
    scope = scope or RunScope()
    for model in scope.selected(config.models):
        check_installed(model)  # a missing optional extra: one line, nothing written
    # Before the lock (which creates .lock): a foreign directory is refused untouched.
    state = inspect_run_dir(run_dir, for_run=True)
    check_compatible(run_dir, state.manifest, config, prepared.stimuli_sha256)
    created = not state.exists
    started = False
    try:
        with RunStore(run_dir) as store:
            # Again under the lock: another run may have changed it in between.
            state = inspect_run_dir(run_dir, for_run=True)
            check_compatible(run_dir, state.manifest, config, prepared.stimuli_sha256)
            store.adopt(load_logs(state))
            backends: dict[str, ModelBackend] = {}
            try:
                for model in scope.selected(config.models):
                    if on_load is not None:
                        on_load(model)
                    backends[model.id] = _with_readout(model, create_backend(model))
                if batch:
                    _check_batchable(backends)
                runner = ExperimentRunner(
                    config,
                    prepared.paradigm,
                    backends,
                    store,
                    progress,
                    retry_failed=retry_failed,
                    batch=batch,
                    batch_poll_s=batch_poll_s,
                    scope=scope,
                )

                def begin(describe: dict[str, dict[str, str]]) -> None:
                    nonlocal started
                    start_or_resume(
                        run_dir, state.manifest, config, describe, prepared.stimuli_sha256
                    )
                    started = True
                    store.repair()  # only now: a refused run leaves even a torn line as it was
                    if on_start is not None:
                        on_start()

                report = run_interruptibly(lambda: _preflight_run_close(runner, begin, backends))
            except BaseException:
                if started:  # what was stored stays analysable; the first error is the news
                    with contextlib.suppress(RunDirError):
                        _write_trials(run_dir, store, prepared.paradigm)
                raise
            if started:
                _write_trials(run_dir, store, prepared.paradigm)
            return report
    finally:
        if created and not started:
            _remove_new_directory(run_dir)


def _with_readout(model: ModelSection, backend: ModelBackend) -> ModelBackend:
    """The backend answering through the readout its entry asks for (`harness.readouts`)."""
    if model.readout == "auto":
        return AutoReadoutBackend(backend, model.samples)
    readout = make_readout(model.readout, model.samples, backend.capabilities)
    return backend if readout is None else ReadoutBackend(backend, readout)


def _check_batchable(backends: Mapping[str, ModelBackend]) -> None:
    """UserError for a readout the batch API cannot carry (one that asks twice per call,
    or samples one request at a time): said before any preflight request is sent or the
    manifest is written. `auto` chooses its readout at the preflight and is checked then."""
    for backend in backends.values():
        if isinstance(backend, ReadoutBackend):
            backend.batch_api()


def _write_trials(run_dir: Path, store: RunStore, paradigm: Paradigm) -> None:
    """trials.parquet from the stored calls (derived data: `analyse` rebuilds it from
    calls.jsonl when it is missing or older than the calls)."""
    path = run_dir / TRIALS_FILE
    try:
        table = build_trials_table(store.records().values(), type(paradigm))
        write_trials_table(run_dir, table)
    except OSError as error:
        raise RunDirError(
            f"cannot write {path}: {error.strerror or error}; every call is stored in "
            f"{run_dir / CALLS_FILE}: fix that, then run the same command again"
        ) from None


def _remove_new_directory(run_dir: Path) -> None:
    """Take back the directory a refused run created (it holds only the lock file)."""
    with contextlib.suppress(OSError):
        (run_dir / LOCK_FILE).unlink()
        run_dir.rmdir()


async def _preflight_run_close(
    runner: ExperimentRunner,
    begin: Callable[[dict[str, dict[str, str]]], None],
    backends: dict[str, ModelBackend],
) -> RunReport:
    """Preflight every backend, begin the run (manifest), run; close the backends in any case.

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
        begin({mid: backend.describe() for mid, backend in backends.items()})
        try:
            return await runner.run()
        except BaseExceptionGroup as group:
            # The runner's task groups wrap a backend's UserError (a revoked key, a model
            # that vanished, a full disk): unwrapped, the CLI reports it as one line.
            user_error = _first_user_error(group)
            if user_error is None:
                raise
            raise user_error from None
    finally:
        # All at once: a second Ctrl-C cancels every close together, so none is left
        # unclosed (a server it started) because an earlier one was still closing.
        closed = await asyncio.gather(
            *(backend.aclose() for backend in backends.values()), return_exceptions=True
        )
        for outcome in closed:
            if isinstance(outcome, BaseException):
                raise outcome


def _first_user_error(group: BaseExceptionGroup[BaseException]) -> UserError | None:
    for error in group.exceptions:
        if isinstance(error, UserError):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _first_user_error(error)
            if found is not None:
                return found
    return None
