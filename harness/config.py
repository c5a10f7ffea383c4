"""The experiment config: a TOML file, validated strictly (an unknown key is an error).

The `[paradigm]` table belongs to the paradigm named in `[experiment]`, which validates it
with its own settings model; this module only checks that it is a table.
"""

from __future__ import annotations

import json
import math
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from mindshift.harness.errors import ConfigError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_NAME_LENGTH = 200
"""Names become file names (the default run directory) and parts of trial ids: most file
systems allow 255 bytes per name."""
MAX_REPEATS = 1000
"""More independent samples of every trial than any design needs; a larger number is a typo
that would plan calls beyond any run's memory (see also `harness.experiment`)."""
MAX_CONFIG_BYTES = 4 << 20
"""A config is some kilobytes: a larger file (or one that never ends, like /dev/zero) is not
read into memory."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExperimentSection(_Strict):
    """`[experiment]`: what this experiment is called and how it is seeded."""

    name: str
    """Names the experiment; part of every trial id, and the default run directory."""
    paradigm: str
    """Which paradigm runs (see `mindshift models` / the README for the list)."""
    seed: int = 0
    """Seeds item sampling, option order and every model call."""
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    """How many independent samples of every trial to take (distinct trial ids)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _SAFE_NAME.match(value):
            raise ValueError(
                "must be letters, digits, '.', '_' or '-' and start with a letter or digit"
            )
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
        return value


ReadoutChoice = Literal["logprobs", "sampling", "verbal", "verbal-2stage", "ptrue", "auto"]
"""A model entry's `readout`: a `harness.types.ReadoutName`, or `auto`."""


class ModelSection(BaseModel):
    """One `[[models]]` entry: a model under test and how the engine calls it.

    The fields here are the keys the engine reads for every model. Any other key of the
    entry belongs to its provider and is kept as written (`provider_keys`): the provider
    checks it with its own settings model (`harness.models.registry.validate_model`, before
    any run starts), so a key that provider cannot use is an error there, and the entry stays
    flat, in TOML as in the manifest's copy of the config.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    """The name the run and the analysis use for this model; unique in the config."""
    spec: str
    """`provider:name`, e.g. `local:smollm2`, `sim:bayes`, `hf:/path/to/checkpoint`."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Provider-specific parameters (for `sim:bayes`: the agent's parameters)."""
    concurrency: int = Field(default=1, ge=1, le=4096)
    """How many calls (or batches) may be in flight at once."""
    temperature: float = Field(default=1.0, ge=0.0, le=5.0)
    """Sampling temperature of the answer (the paper used 1.0)."""
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    """Requests per backend call; the backend's own default when unset."""
    max_retries: int | None = Field(default=None, ge=0, le=20)
    """Retries of a call whose attempt failed transiently (default 5): 429, 408, 409 and
    5xx answers, network errors, timeouts and bodies that are no JSON; capped exponential
    backoff with jitter, or the server's Retry-After (see `harness.retry`)."""
    deadline_s: float | None = Field(default=None, gt=0.0, le=86400.0)
    """Limit on one call from its first attempt to its last, waits included (default
    900 s): past it the call is recorded as failed, and a later run retries it."""
    retry_backoff_s: float | None = Field(default=None, gt=0.0, le=600.0)
    """Wait before the first retry when the server names none (default 1 s); it doubles
    with each retry, up to 60 s, jittered over the upper half of each step."""
    readout: ReadoutChoice = "logprobs"
    """How confidence is read (`harness.readouts`): `logprobs` (token probabilities),
    `sampling` (the frequency of `samples` sampled answers), `verbal` (a confidence stated in
    the answer's reply), `verbal-2stage` (stated in a follow-up turn), `ptrue` (the probability
    of "true" for its own answer), or `auto` (logprobs when the preflight finds them usable,
    else sampling)."""
    samples: int = Field(default=20, ge=2, le=1000)
    """Sampled answers per call under `readout = "sampling"` (and `ptrue` without logprobs)."""
    items: int | None = Field(default=None, ge=1)
    """Run this model on the first `items` items of the design only (and on the first
    `items` calibration items), so that one config can give its models different sample
    sizes (the paper: 2,000, 500 and 150 items). Unset: every item. Trial ids do not depend
    on it (`harness.runner.RunScope`)."""

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not _SAFE_NAME.match(value):
            raise ValueError(
                "must be letters, digits, '.', '_' or '-' and start with a letter or digit"
            )
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
        return value

    @field_validator("spec")
    @classmethod
    def _spec_shape(cls, value: str) -> str:
        provider, sep, name = value.partition(":")
        if not sep or not provider or not name:
            raise ValueError(f"model spec {value!r} is not of the form provider:name")
        return value

    @property
    def provider_keys(self) -> dict[str, Any]:
        """The entry's keys beyond the fields above, as written: its provider's settings."""
        return dict(self.model_extra or {})


class ExperimentConfig(_Strict):
    """A whole experiment config file."""

    experiment: ExperimentSection
    paradigm: dict[str, Any] = Field(default_factory=dict)
    """Paradigm settings; validated by the paradigm itself."""
    models: list[ModelSection] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_model_ids(self) -> ExperimentConfig:
        seen: set[str] = set()
        for model in self.models:
            if model.id in seen:
                raise ValueError(f"model id {model.id!r} appears twice")
            seen.add(model.id)
        return self

    def canonical_json(self) -> str:
        """The config as the user wrote it, as canonical JSON: the resume check compares it.

        Keys left at their defaults are omitted, so a later mindshift that adds a key with a
        default still resumes a run made before it (each call's record holds its exact request
        settings, so nothing that was sent is forgotten).
        """
        dumped = self.model_dump(mode="json", exclude_unset=True)
        return json.dumps(dumped, sort_keys=True, separators=(",", ":"))


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every problem and where it is, in the config's own terms."""
    return "; ".join(describe_error_detail(detail) for detail in error.errors())


def describe_error_detail(detail: ErrorDetails) -> str:
    """One problem of a validation error and where it is, in the config's own terms."""
    where = ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    if detail["type"] == "missing":
        return f"missing key '{where}'"
    message = str(detail["msg"]).removeprefix("Value error, ")
    return f"'{where}': {message}" if where else message


def _non_finite(value: object, where: str) -> str | None:
    """The dotted key of the first NaN or infinity in a parsed TOML value, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        for key, inner in value.items():
            found = _non_finite(inner, f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            found = _non_finite(inner, f"{where}.{index}")
            if found is not None:
                return found
    return None


def parse_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config already parsed from TOML.

    TOML can write nan and inf; no setting means them, and a call's record cannot hold them
    (JSON has neither): they are refused here, before anything runs.
    """
    where = _non_finite(data, "")
    if where is not None:
        raise ConfigError(f"{source}: '{where}' is not a finite number")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error)}") from None


def read_bounded_text(
    path: Path, limit: int, what: str, *, error: Callable[[str], Exception] = ConfigError
) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, or `error(reason)`.

    Checked before it is opened: a FIFO would block the open forever, a device such as
    /dev/zero would never end; and only `limit` + 1 bytes are ever read. `what` names the
    file in the one-line reason ("config file", "question file").
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{what.split()[0]} path is a directory, not a file: {path}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {path} is not a regular file (a pipe or a device?)")
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {path} is larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise error(
            f"{what} {path} is not UTF-8 text (byte {problem.start} cannot be decoded)"
        ) from None


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate a TOML config file."""
    text = read_bounded_text(path, MAX_CONFIG_BYTES, "config file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    return parse_config(data, str(path))
