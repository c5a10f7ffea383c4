"""The experiment config: a TOML file, validated strictly (an unknown key is an error).

The `[paradigm]` table belongs to the paradigm named in `[experiment]`, which validates it
with its own settings model; this module only checks that it is a table.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
    repeats: int = Field(default=1, ge=1)
    """How many independent samples of every trial to take (distinct trial ids)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _SAFE_NAME.match(value):
            raise ValueError(
                "must be letters, digits, '.', '_' or '-' and start with a letter or digit"
            )
        return value


class ModelSection(_Strict):
    """One `[[models]]` entry: a model under test and how to call it."""

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

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not _SAFE_NAME.match(value):
            raise ValueError(
                "must be letters, digits, '.', '_' or '-' and start with a letter or digit"
            )
        return value

    @field_validator("spec")
    @classmethod
    def _spec_shape(cls, value: str) -> str:
        provider, sep, name = value.partition(":")
        if not sep or not provider or not name:
            raise ValueError(f"model spec {value!r} is not of the form provider:name")
        return value


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
        """The config as canonical JSON: equal configs give equal strings (resume check)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every problem and where it is, in the config's own terms."""
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"])
        if detail["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        elif detail["type"] == "missing":
            problems.append(f"missing key '{where}'")
        else:
            message = str(detail["msg"]).removeprefix("Value error, ")
            problems.append(f"'{where}': {message}" if where else message)
    return "; ".join(problems)


def parse_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config already parsed from TOML."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error)}") from None


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate a TOML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    return parse_config(data, str(path))
