"""The keys of an `openai:` model entry, and what the provider can do.

Kept apart from the backend (`harness.models.openai_chat`) so that checking a config imports
no SDK: the registry validates an entry's keys with `OpenAISettings` and hands the backend
the result.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mindshift.harness.errors import ConfigError
from mindshift.harness.models.base import Capabilities
from mindshift.harness.models.chat_answer import REPLY_TOKENS

MAX_TOP_LOGPROBS = 20
"""The most alternatives per position OpenAI returns."""
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
ANSWER_TOKENS = 8
"""Default output budget with logprobs: the label comes first; a few more tokens let a reply
like "**A**" still be read."""
CHOICE_ONLY_TOKENS = 4096
"""Default budget in choice-only mode and of a reasoning model's free-text replies: its hidden
reasoning counts against it."""
REASONING_MODELS = re.compile(r"^(o\d+(-|$)|gpt-5(?!-chat)|codex)", re.IGNORECASE)
"""OpenAI model names that reason before answering and so return no logprobs."""
NO_REASONING = "none"
"""The `reasoning_effort` that turns a gpt-5.1-or-later model's reasoning off: the only one
with which the gpt-5 family may return logprobs."""

CAPABILITIES = Capabilities(
    logprobs=True,
    top_k_limit=MAX_TOP_LOGPROBS,
    prefill=False,
    prompt_logprobs=False,
    batch=True,
    replies=True,
    reply_n=True,
)
"""A backend reading first-token logprobs; `batch`: the provider's batch API (`--batch`);
free-text replies, `n` of them in one request."""
CHOICE_ONLY_CAPABILITIES = Capabilities(
    logprobs=False,
    top_k_limit=None,
    prefill=False,
    prompt_logprobs=False,
    batch=True,
    choice_only=True,
    replies=True,
    reply_n=True,
)
"""A backend in choice-only mode (reasoning models: no logprobs)."""
OFFERED = replace(CAPABILITIES, choice_only=True)
"""The provider's row in `mindshift models`: logprobs, and choice-only mode on offer."""


def http_url(value: str) -> str:
    """`value` when it is an http(s) URL; ValueError (worded for a config) otherwise."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class OpenAISettings(BaseModel):
    """The keys of an `openai:` entry beyond the common ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    """Any OpenAI-compatible endpoint, e.g. "http://127.0.0.1:8000/v1" (default: OpenAI's,
    or the SDK's OPENAI_BASE_URL)."""
    api_key_env: str = DEFAULT_KEY_ENV
    """Name of the environment variable holding the API key; keys are read from the
    environment only."""
    choice_only: bool = False
    """Run without confidences (models that return no logprobs, e.g. reasoning models): the
    choice is parsed from the reply and the readout is empty."""
    top_logprobs: int | None = Field(default=None, ge=1)
    """Alternatives requested per token position (default and most: 20)."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Most tokens generated per call (default: just enough for the answer, or 4096 in
    choice-only mode, since reasoning models need room to think)."""
    timeout_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    """Timeout of one HTTP attempt, in seconds."""
    reasoning_effort: str | None = None
    """Reasoning models only: the `reasoning_effort` sent (e.g. "low", "high"; "none" turns
    a gpt-5.1-or-later model's reasoning off, which its logprobs need)."""

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_url(cls, value: object) -> object:
        if isinstance(value, list):
            raise ValueError("must be one URL for openai: (a list of replicas is for vllm:)")
        return http_url(value) if isinstance(value, str) else value

    @field_validator("top_logprobs")
    @classmethod
    def _within_the_api(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_TOP_LOGPROBS:
            raise ValueError(f"is at most {MAX_TOP_LOGPROBS} for openai:")
        return value

    @model_validator(mode="after")
    def _choice_only_takes_no_top_logprobs(self) -> OpenAISettings:
        if self.choice_only and self.top_logprobs is not None:
            raise ValueError("top_logprobs has no use with choice_only = true")
        return self

    @property
    def top_k(self) -> int:
        """The `top_logprobs` sent (with logprobs)."""
        return self.top_logprobs or MAX_TOP_LOGPROBS

    @property
    def completion_tokens(self) -> int:
        """The `max_completion_tokens` sent."""
        if self.max_tokens is not None:
            return self.max_tokens
        return CHOICE_ONLY_TOKENS if self.choice_only else ANSWER_TOKENS

    @property
    def answer_tokens(self) -> int:
        """The `max_completion_tokens` of a request that reads logprobs (the preflight's
        probe included), whatever the mode."""
        return self.max_tokens if self.max_tokens is not None else ANSWER_TOKENS

    def reply_tokens(self, asked: int | None, *, reasoning: bool) -> int:
        """The `max_completion_tokens` of a free-text reply: what the readout asks for (or a
        short reply's), at least the entry's `max_tokens`, and for a model that reasons (or
        runs choice-only) at least the choice-only budget, since its thinking counts too."""
        wanted = asked or REPLY_TOKENS
        if self.max_tokens is not None:
            return max(wanted, self.max_tokens)
        return max(wanted, CHOICE_ONLY_TOKENS) if reasoning or self.choice_only else wanted


def reasons(name: str, settings: OpenAISettings) -> bool:
    """Whether calls to `name` spend hidden reasoning tokens (a reasoning model whose
    reasoning is not turned off)."""
    return bool(REASONING_MODELS.match(name)) and settings.reasoning_effort != NO_REASONING


def takes_no_reasoning(name: str) -> bool:
    """Whether `name` is of the gpt-5 family from 5.1 on, whose reasoning can be turned off
    (`reasoning_effort = "none"`), with logprobs then possible."""
    return re.match(r"^gpt-5\.\d", name, re.IGNORECASE) is not None


def check_model_name(name: str, settings: OpenAISettings, *, logprobs: bool = True) -> str | None:
    """Why this model cannot run with these settings (a reasoning model asked for logprobs);
    None when it can. `logprobs`: whether the entry's readout reads them."""
    if not logprobs or settings.choice_only or not reasons(name, settings):
        return None
    hint = ', or reasoning_effort = "none" if it takes it' if takes_no_reasoning(name) else ""
    return (
        'reasoning models return no logprobs; set readout = "sampling" (or "verbal")'
        f"{hint}, or choice_only = true to run it for choices only (only measures of "
        "choices can then use it)"
    )


def api_key(env_name: str, model_id: str, environ: Mapping[str, str] | None = None) -> str:
    """The key from the environment; ConfigError naming the variable when it is unset."""
    value = (os.environ if environ is None else environ).get(env_name, "")
    if not value.strip():
        raise ConfigError(f"model '{model_id}': set the environment variable {env_name} (API key)")
    return value.strip()
