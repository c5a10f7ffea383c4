"""The provider contract: what a package hands mindshift to add a kind of model.

A provider owns one spec prefix (`openai:`, `sim:` ...). It states its capabilities once,
checks a `[[models]]` entry completely without loading anything (`validate`), and builds the
backend of a checked entry (`create`). The built-in providers are listed in
`harness.models.registry`; any installed package adds one by naming a `Provider` object under
the entry-point group `mindshift.backends`, e.g. in its pyproject.toml:

    [project.entry-points."mindshift.backends"]
    sim = "paradigms.agent.sim_bayes:PROVIDER"

The entry point's name must be the provider's name (the spec prefix).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.models.base import Capabilities, ModelBackend

if TYPE_CHECKING:
    # Only a type: the registry hands each provider its entry, so this contract (which
    # backends may import) does not load the config module.
    from harness.config import ModelSection

ENTRY_POINT_GROUP = "mindshift.backends"
"""The entry-point group other packages register their `Provider` objects under."""


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
