"""The keys of a `gemini:` model entry, and what the provider can do.

Kept apart from the backend (`harness.models.gemini`) so that checking a config imports no
SDK: the registry validates an entry's keys with `GeminiSettings` and hands the backend the
result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mindshift.harness.errors import ConfigError
from mindshift.harness.models.base import Capabilities
from mindshift.harness.models.chat_answer import REPLY_TOKENS

MAX_TOP_LOGPROBS = 20
"""The most candidates per position the Gemini API returns."""
KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
"""Where the key is looked for when `api_key_env` is unset (the SDK's own order)."""
ANSWER_TOKENS = 8
"""Default output budget with logprobs and thinking off: the label comes first."""
THINKING_TOKENS = 2048
"""Default output budget when the model may think (thoughts count against it)."""
MAX_CANDIDATES = 8
"""The most candidates (sampled replies) one generateContent request returns."""

CAPABILITIES = Capabilities(
    logprobs=True,
    top_k_limit=MAX_TOP_LOGPROBS,
    prefill=False,
    prompt_logprobs=False,
    batch=True,
    replies=True,
    reply_n=True,
)
"""A backend reading first-token logprobs (only some models return them: the preflight
request finds out); `batch`: Gemini's batch mode (`--batch`); free-text replies, up to
`max_candidates` of them per request (`candidateCount`)."""
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
"""A backend in choice-only mode (models that return no logprobs)."""
OFFERED = replace(CAPABILITIES, choice_only=True)
"""The provider's row in `mindshift models`: logprobs, and choice-only mode on offer."""


class GeminiSettings(BaseModel):
    """The keys of a `gemini:` entry beyond the common ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key_env: str | None = None
    """Name of the environment variable holding the API key (default: GEMINI_API_KEY, then
    GOOGLE_API_KEY); keys are read from the environment only."""
    choice_only: bool = False
    """Run without confidences (models that return no logprobs): the choice is parsed from
    the reply and the readout is empty."""
    top_logprobs: int | None = Field(default=None, ge=1)
    """Candidates requested per token position (default and most: 20)."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Most tokens generated per call, thoughts included (default: 8 with thinking off and
    logprobs, else 2048)."""
    timeout_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    """Timeout of one HTTP attempt, in seconds."""
    thinking_budget: int | None = Field(default=None, ge=-1)
    """Thinking tokens allowed (0 turns thinking off where the model allows it, so the first
    output token is the answer; -1: the model decides; unset: the model's default)."""
    max_candidates: int = Field(default=MAX_CANDIDATES, ge=1, le=MAX_CANDIDATES)
    """Sampled replies asked of one request (`candidateCount`) by readouts that sample; more
    go out as further requests, seeded from the call's seed. 1 for models that take no
    `candidateCount` above 1 (found out at the first refusal otherwise)."""

    @field_validator("top_logprobs")
    @classmethod
    def _within_the_api(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_TOP_LOGPROBS:
            raise ValueError(f"is at most {MAX_TOP_LOGPROBS} for gemini:")
        return value

    @model_validator(mode="after")
    def _choice_only_takes_no_top_logprobs(self) -> GeminiSettings:
        if self.choice_only and self.top_logprobs is not None:
            raise ValueError("top_logprobs has no use with choice_only = true")
        return self

    @property
    def top_k(self) -> int:
        """The `logprobs` sent (with logprobs)."""
        return self.top_logprobs or MAX_TOP_LOGPROBS

    @property
    def output_tokens(self) -> int:
        """The `max_output_tokens` sent."""
        if self.max_tokens is not None:
            return self.max_tokens
        thinking_off = self.thinking_budget == 0
        return ANSWER_TOKENS if thinking_off and not self.choice_only else THINKING_TOKENS

    @property
    def answer_tokens(self) -> int:
        """The `max_output_tokens` of a request that reads logprobs (the preflight's probe
        included), whatever the mode."""
        if self.max_tokens is not None:
            return self.max_tokens
        return ANSWER_TOKENS if self.thinking_budget == 0 else THINKING_TOKENS

    def reply_tokens(self, asked: int | None) -> int:
        """The `max_output_tokens` of a free-text reply: what the readout asks for (or a
        short reply's), at least the entry's `max_tokens`, and, unless thinking is off, at
        least the thinking budget's default, since thoughts count against it."""
        wanted = asked or REPLY_TOKENS
        if self.max_tokens is not None:
            return max(wanted, self.max_tokens)
        return wanted if self.thinking_budget == 0 else max(wanted, THINKING_TOKENS)


def api_key(
    settings: GeminiSettings, model_id: str, environ: Mapping[str, str] | None = None
) -> str:
    """The key from the environment; ConfigError naming the variable(s) when unset."""
    env = os.environ if environ is None else environ
    names = (settings.api_key_env,) if settings.api_key_env else KEY_ENVS
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    raise ConfigError(
        f"model '{model_id}': set the environment variable {' or '.join(names)} (Gemini API key)"
    )
