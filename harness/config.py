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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError

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


class VllmServeSection(_Strict):
    """`serve` of a `vllm:` model: mindshift starts vLLM's server itself and stops it at the end.

    The spec's name (`vllm:<name>`) becomes the served model name. Each replica is one
    `vllm serve` process on its own port and its own GPUs; calls are spread across them.
    """

    model: str | None = None
    """Weights to serve: a Hugging Face repo id or a local folder (default: the spec's name)."""
    python: str | None = None
    """Python interpreter that has vLLM installed (default: the one running mindshift)."""
    host: str = "127.0.0.1"
    """Address the server listens on (loopback by default: nothing outside can reach it)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port of the first replica; replica i listens on port + i."""
    replicas: int = Field(default=1, ge=1, le=64)
    """How many independent servers to start (data parallel, one per GPU group)."""
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs each replica shards every layer over (`--tensor-parallel-size`)."""
    pipeline_parallel_size: int = Field(default=1, ge=1, le=64)
    """Pipeline stages of each replica (`--pipeline-parallel-size`)."""
    gpus: list[int] | None = None
    """CUDA device indices to use, split in order among the replicas (CUDA_VISIBLE_DEVICES);
    its length must be replicas x tensor_parallel_size x pipeline_parallel_size. Unset: every
    replica sees all devices."""
    dtype: str | None = None
    """`--dtype` (auto, bfloat16, float16, float32); unset: vLLM's default."""
    max_model_len: int | None = Field(default=None, ge=16)
    """`--max-model-len`: shorter contexts leave more memory for the KV cache."""
    gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    """`--gpu-memory-utilization`: share of each GPU's memory vLLM may take."""
    logprobs_mode: Literal["raw_logprobs", "processed_logprobs"] = "raw_logprobs"
    """`--logprobs-mode`: raw (before temperature, top-k/top-p and other processors; the
    same quantity the local backend reads) or processed (after them)."""
    max_logprobs: int = Field(default=20, ge=1, le=1000)
    """`--max-logprobs`: the most top_logprobs the server returns per position."""
    extra_args: list[str] = Field(default_factory=list)
    """More `vllm serve` arguments, passed as given (e.g. ["--enforce-eager"])."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the server (recorded in the manifest: no secrets)."""
    startup_timeout_s: float = Field(default=1800.0, gt=0.0)
    """How long to wait for /health before giving up (large models load for minutes)."""
    log_dir: str | None = None
    """Where the servers' output goes, one file per replica (default: the system temp dir)."""


class ModelSection(_Strict):
    """One `[[models]]` entry: a model under test and how to call it.

    Keys past `batch_size` belong to some providers only; a provider refuses a key it cannot
    use (`reject_unusable_keys`), so a config never asks silently for something not done.
    """

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
    base_url: str | list[str] | None = None
    """OpenAI-compatible endpoint (`openai:`, `vllm:`), e.g. "http://127.0.0.1:8000/v1"; for
    `vllm:` a list of replicas, across which calls are spread."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (default: OPENAI_API_KEY,
    GEMINI_API_KEY, VLLM_API_KEY by provider). Keys are read from the environment only."""
    choice_only: bool = False
    """Run without confidences (models that return no logprobs, e.g. OpenAI reasoning
    models): the choice is parsed from the reply and the readout is empty."""
    top_logprobs: int | None = Field(default=None, ge=1, le=1000)
    """Alternatives requested per token position (default 20, the most OpenAI and Gemini
    return; for vLLM at most the server's --max-logprobs)."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Most tokens generated per call (default: just enough for the answer; reasoning
    models need room to think)."""
    timeout_s: float | None = Field(default=None, gt=0.0, le=3600.0)
    """Timeout of one HTTP attempt, in seconds (default 120)."""
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
    reasoning_effort: str | None = None
    """`openai:` reasoning models only: the `reasoning_effort` sent (e.g. "low", "high")."""
    thinking_budget: int | None = Field(default=None, ge=-1)
    """`gemini:` only: thinking tokens allowed (0 turns thinking off where the model allows
    it, so the first output token is the answer; -1: the model decides)."""
    serve: VllmServeSection | None = None
    """`vllm:` only: start the server(s) here instead of using `base_url`."""

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

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        urls = [value] if isinstance(value, str) else (value or [])
        if isinstance(value, list) and not value:
            raise ValueError("the list of base URLs is empty")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return value

    @field_validator("spec")
    @classmethod
    def _spec_shape(cls, value: str) -> str:
        provider, sep, name = value.partition(":")
        if not sep or not provider or not name:
            raise ValueError(f"model spec {value!r} is not of the form provider:name")
        return value


COMMON_MODEL_KEYS = frozenset({"id", "spec", "params", "concurrency", "temperature"})
"""Keys every provider uses; any other key of a model entry is some providers' only."""


def reject_unusable_keys(model: ModelSection, usable: Iterable[str]) -> None:
    """Raise ConfigError naming each key set in this entry that its provider cannot use."""
    allowed = COMMON_MODEL_KEYS | set(usable)
    unusable = sorted(key for key in model.model_fields_set if key not in allowed)
    if unusable:
        provider = model.spec.partition(":")[0]
        keys = ", ".join(f"'{key}'" for key in unusable)
        raise ConfigError(f"model '{model.id}': {keys} cannot be used by {provider}: models")


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
