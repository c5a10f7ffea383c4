"""The provider contract: what a package hands mindshift to add a kind of model.

A provider owns one spec prefix (`openai:`, `sim:` ...). It states its capabilities once,
checks a `[[models]]` entry completely without loading anything (`validate`), and builds the
backend of a checked entry (`create`). The built-in providers are listed in
`harness.models.registry`; any installed package adds one by naming a `Provider` object under
the entry-point group `mindshift.backends`, e.g. in its pyproject.toml:

    [project.entry-points."mindshift.backends"]
    sim = "mindshift.paradigms.agent.sim_bayes:PROVIDER"

The entry point's name must be the provider's name (the spec prefix).

An entry's keys beyond the common ones (`ModelSection`) are the provider's own: it reads them
with its own pydantic settings model (extra keys forbidden) through `entry_settings`, which
words every problem as one line naming the model and the key. The backend is then built from
the entry's `ModelRef` and those settings: it never sees the config.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from mindshift.harness.config import ModelSection, describe_error_detail
from mindshift.harness.errors import ConfigError
from mindshift.harness.models.base import Capabilities, ModelBackend, ModelRef

ENTRY_POINT_GROUP = "mindshift.backends"
"""The entry-point group other packages register their `Provider` objects under."""

RETRY_KEYS = frozenset({"max_retries", "deadline_s", "retry_backoff_s"})
"""Common keys that matter only to backends whose calls can fail transiently (APIs): an
in-process provider lists them as `unusable_common_keys`."""

SettingsT = TypeVar("SettingsT", bound=BaseModel)


@dataclass(frozen=True)
class Provider:
    """One provider: what it can do, how to check a model entry, how to build its backend."""

    name: str
    """The spec prefix this provider answers to (`openai` for `openai:gpt-4o`)."""
    summary: str
    """One line for `mindshift models`: the spec's shape and how confidence is read."""
    capabilities: Capabilities
    """What its backends can do (a backend may narrow it, e.g. to choice-only)."""
    validate: Callable[[ModelSection], None]
    """Raise `ConfigError` (one line naming the model id and the key) unless the entry can
    run; must load no model and import no SDK, so checking a config stays fast."""
    create: Callable[[ModelSection], ModelBackend]
    """Build the backend of an entry `validate` accepted (this may load a model)."""
    unusable_common_keys: frozenset[str] = frozenset()
    """Common keys of an entry (`ModelSection` fields) its backends have no use for: setting
    one is an error, so a config never asks silently for something not done."""
    free_reply_tokens: Callable[[ModelSection], int | None] | None = None
    """For the dry-run estimate: the most output tokens one call may spend when the entry's
    replies are free text (choice-only mode); None (or no function): one answer token."""


class NoSettings(BaseModel):
    """The settings of a provider that takes no keys beyond the common ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def model_ref(model: ModelSection) -> ModelRef:
    """What a backend is told about its entry: its id and spec."""
    return ModelRef(id=model.id, spec=model.spec)


def entry_settings(model: ModelSection, settings: type[SettingsT]) -> SettingsT:
    """The entry's own keys (`ModelSection.provider_keys`) read with its provider's settings
    model; ConfigError naming the model and every problem in one line."""
    try:
        return settings.model_validate(model.provider_keys)
    except ValidationError as error:
        problems = [_problem(detail, model, settings) for detail in error.errors()]
        raise ConfigError(f"model '{model.id}' ({model.spec}): {'; '.join(problems)}") from None


def _problem(detail: ErrorDetails, model: ModelSection, settings: type[BaseModel]) -> str:
    """One problem of a settings error, in the config's terms."""
    location = detail["loc"]
    if detail["type"] == "extra_forbidden" and len(location) == 1:
        return _unusable_key(str(location[0]), model, settings)
    return describe_error_detail(detail)


def _unusable_key(key: str, model: ModelSection, settings: type[BaseModel]) -> str:
    """Why `key` has no place in this entry: a likely typo of a key it has, or a key of
    other providers."""
    own = list(settings.model_fields)
    close = difflib.get_close_matches(key, [*ModelSection.model_fields, *own], n=1, cutoff=0.8)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    provider = model.spec.partition(":")[0]
    theirs = f" (its own keys: {', '.join(own)})" if own else ""
    return f"'{key}' cannot be used by {provider}: models{theirs}"
