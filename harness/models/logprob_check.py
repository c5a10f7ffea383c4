"""Whether a model's token log-probabilities can give a confidence, judged before a run spends
anything, and the error that says they cannot.

The logprob readout needs the option labels' probabilities at the answer position. Several
providers return something that looks like logprobs and is not usable: the parameter is
refused (Gemini's "Logprobs is not enabled", OpenAI's reasoning models), the reply comes back
without them, the values are coarse placeholders (DeepSeek returns 0 or -9999), or the answer
position's top tokens hold no option label (a reasoning model's first token is its thinking).
Each backend that reads logprobs (`openai:`, `gemini:`, `vllm:`) sends one probe question
whose answer is a label among `PROBE_LABELS` in its `check_logprobs()`, and stops with
`LogprobsUnusable` naming the fix. Its preflight runs that check unless the entry is
choice-only; the `auto` readout calls `check_logprobs()` itself and, on `LogprobsUnusable`,
switches to a readout that needs no logprobs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mindshift.harness.errors import ConfigError
from mindshift.harness.models.chat_answer import TokenLogprob
from mindshift.harness.readout import label_of_token

PROBE_QUESTION = "Which letter comes first in the alphabet: A or B?"
"""The probe's question: its answer is one of `PROBE_LABELS`, so the labels belong among the
answer position's top tokens of any model that follows the answer format."""
PROBE_LABELS = ("A", "B")
SENTINEL_LOGPROB = -9000.0
"""At or below this, a logprob is a placeholder for "not computed" (DeepSeek's -9999, vLLM's
stand-in for minus infinity), not a measured probability."""

FIX_OTHER_READOUT = 'readout = "sampling" (or "verbal"; choice_only = true for choices only)'
"""The fix when a model gives no usable logprobs: a readout that needs none."""
FIX_REASONING_NONE = 'reasoning_effort = "none" (or readout = "sampling")'
"""The fix when a reasoning model gives logprobs only without reasoning (OpenAI's gpt-5
family)."""


class LogprobsUnusable(ConfigError):
    """A model's logprobs cannot give a confidence; the message is one line with the fix.

    `auto` readouts catch it to switch to a readout without logprobs (and record `reason`);
    any other readout stops the run with it before anything is spent.
    """

    def __init__(self, model_id: str, reason: str, fix: str) -> None:
        self.model_id = model_id
        self.reason = one_line(reason)
        self.fix = fix
        super().__init__(
            f"model '{model_id}': logprobs unusable: {self.reason}; set {fix} in its entry"
        )


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of spaces collapsed (API messages span lines)."""
    return " ".join(text.split())


def answer_position(tokens: Sequence[TokenLogprob], labels: Sequence[str]) -> int:
    """Where the answer is read: the first generated token that spells a label, else the
    first token (whose top list then shows what the model put there instead)."""
    for position, token in enumerate(tokens):
        if label_of_token(token.token, labels) is not None:
            return position
    return 0


def unusable_reason(
    tokens: Sequence[TokenLogprob], labels: Sequence[str] = PROBE_LABELS
) -> str | None:
    """Why the logprobs of a probe reply cannot give a confidence; None when they can.

    Checked at the answer position: some top logprobs returned; real numbers, not all 0 or
    placeholders at or below `SENTINEL_LOGPROB`; at least two distinct values when three or
    more tokens came back (a long list of equal values carries no ranking, while two equal
    values may be a true tie); and some option label among the top tokens.
    """
    if not tokens:
        return "the reply carries no logprobs"
    top = tokens[answer_position(tokens, labels)].top
    if not top:
        return "the reply carries no top logprobs at the answer position"
    values = [logprob for _, logprob in top]
    shown = ", ".join(f"{token!r}: {logprob:g}" for token, logprob in top[:5])
    if any(math.isnan(value) or value > 0.0 for value in values):
        return f"the top logprobs are not log-probabilities ({shown})"
    if all(value == 0.0 or value <= SENTINEL_LOGPROB for value in values):
        return f"the top logprobs are placeholders, only 0 and <= {SENTINEL_LOGPROB:g} ({shown})"
    if len(values) >= 3 and len(set(values)) < 2:
        return f"the top logprobs are all equal ({shown})"
    if not any(label_of_token(token, labels) is not None for token, _ in top):
        listed = " nor ".join(labels)
        return f"neither {listed} is among the top tokens at the answer position ({shown})"
    return None
