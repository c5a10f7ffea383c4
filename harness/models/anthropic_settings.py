"""The keys of an `anthropic:` model entry, and what the provider can do.

Kept apart from the backend (`harness.models.anthropic_messages`) so that checking a config
imports no SDK: the registry validates an entry's keys with `AnthropicSettings` and hands the
backend the result. The `anthropic` SDK is an optional extra (`pip install
'mindshift[anthropic]'`); a config naming an `anthropic:` model is refused in one line when
it is missing, before anything runs.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mindshift.harness.errors import ConfigError
from mindshift.harness.models.base import Capabilities
from mindshift.harness.models.chat_answer import REPLY_TOKENS

DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
MIN_THINKING_TOKENS = 1024
"""The smallest `budget_tokens` the Messages API accepts for extended thinking."""
MAX_TEMPERATURE = 1.0
"""The Messages API takes temperatures from 0 to 1."""

CAPABILITIES = Capabilities(
    logprobs=False,
    top_k_limit=0,
    prefill=True,
    prompt_logprobs=False,
    batch=True,
    choice_only=True,
    replies=True,
    reply_n=False,
)
"""No token logprobs at all (top-k 0): confidence comes from the readouts without them
(sampling, verbal, ptrue), or the model runs for its choices only. A trailing assistant
message is sent as a prefill; `batch`: the Message Batches API (`--batch`); no `n`: N replies
are N requests."""


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class AnthropicSettings(BaseModel):
    """The keys of an `anthropic:` entry beyond the common ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key_env: str = DEFAULT_KEY_ENV
    """Name of the environment variable holding the API key; keys are read from the
    environment only."""
    base_url: str | None = None
    """Another endpoint speaking the Messages API (default: Anthropic's, or the SDK's
    ANTHROPIC_BASE_URL)."""
    choice_only: bool = False
    """Run for choices only (no confidence): with the default `readout = "logprobs"`, which
    Anthropic cannot give, the choice is parsed from the reply and the readout is empty."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Least room for one visible reply: the readouts' own short budgets (64 tokens when they
    name none) are raised to it, for models that say more. With thinking on,
    `thinking_budget` is added. Output is billed as generated: a budget is only a cap."""
    timeout_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    """Timeout of one HTTP attempt, in seconds."""
    thinking_budget: int | None = Field(default=None, ge=MIN_THINKING_TOKENS)
    """Extended thinking: the tokens the model may think for before it replies (at least
    1024; unset: no thinking). The API then takes only temperature 1."""
    cache_prefix: bool = True
    """Prompt caching of the shared question prefix: the system prompt and the first user
    message are marked `cache_control` when they may be long enough to be cached (the API
    caches prefixes of at least 1024 tokens, more on some models; a shorter mark is
    ignored at no cost). A cache write costs 1.25 times the input price and a read 0.1
    times, so it lowers the cost only of long prompts read again within five minutes: the
    later turns of an item under every condition, and repeats."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @property
    def thinking(self) -> bool:
        return self.thinking_budget is not None

    def reply_tokens(self, requested: int | None) -> int:
        """The visible reply's budget: what the caller asked for (or a short reply's), at
        least the entry's `max_tokens`."""
        wanted = requested or REPLY_TOKENS
        return wanted if self.max_tokens is None else max(wanted, self.max_tokens)

    def request_tokens(self, requested: int | None) -> int:
        """The `max_tokens` sent: the reply's budget plus the thinking budget (thinking
        counts against `max_tokens`, which must exceed `budget_tokens`)."""
        return self.reply_tokens(requested) + (self.thinking_budget or 0)


def entry_problem(settings: AnthropicSettings, *, temperature: float, readout: str) -> str | None:
    """Why an entry with these settings, this temperature and this readout cannot run (in
    one line, with the fix); None when it can."""
    if settings.thinking and temperature != 1.0:
        return (
            f"extended thinking (thinking_budget) runs only at temperature 1, not {temperature:g};"
            " set temperature = 1.0 or remove thinking_budget"
        )
    if temperature > MAX_TEMPERATURE:
        return f"temperature {temperature:g} is above 1, the most the Messages API takes"
    if readout == "logprobs" and not settings.choice_only:
        return (
            'Anthropic returns no token logprobs; set readout = "sampling" or "verbal" '
            "(confidence without logprobs), or choice_only = true (choices only)"
        )
    if readout != "logprobs" and settings.choice_only:
        return f"choice_only = true reads no confidence; remove it to use readout = {readout!r}"
    return None


def missing_sdk() -> str | None:
    """Why `anthropic:` models cannot run here (the SDK is not installed); None when they can."""
    if importlib.util.find_spec("anthropic") is None:
        return "the anthropic SDK is not installed: pip install 'mindshift[anthropic]'"
    return None


def api_key(env_name: str, model_id: str, environ: Mapping[str, str] | None = None) -> str:
    """The key from the environment; ConfigError naming the variable when it is unset."""
    value = (os.environ if environ is None else environ).get(env_name, "")
    if not value.strip():
        raise ConfigError(
            f"model '{model_id}': set the environment variable {env_name} (Anthropic API key)"
        )
    return value.strip()
