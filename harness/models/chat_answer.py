"""The answer of a chat model whose assistant turn cannot be prefilled (`openai:`, `gemini:`).

Chat APIs cannot start the assistant turn with the prompt's answer prefix ("My answer is:"),
so one line, `ANSWER_FORMAT`, is appended to the last user message, asking for the option
label alone, so that the label is the reply's first token. Confidence is read from the top
log-probabilities at the answer position: the first generated token that spells an option
label (a reply that starts "**" or "The answer is" is read at its label token, conditional on
what came before; the position is stored). The readout is the one every backend shares
(`harness.readout`). In choice-only mode (models that return no logprobs) the label is
parsed from the reply's text and no readout is made.

Free-text replies (`ModelBackend.reply`, the readouts without logprobs) are sent as the
readout wrote them, with no answer-format line; `replies_of` turns a provider's sampled
texts into a reply's texts, one per sample, in order.

This module knows no provider's wire format: each provider turns its replies into the text
and the `TokenLogprob`s read here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mindshift.harness.readout import ReadoutError, label_of_token, readout_from_top_logprobs
from mindshift.harness.types import ChoiceResponse, JsonValue, OptionReadout, Prompt, Usage

ANSWER_FORMAT = "Reply with only the label of your answer: {labels}."
"""Appended to the last user message so that the label is the reply's first token."""
REPLY_TOKENS = 64
"""Default budget of one free-text reply when the readout names none: a label and a stated
confidence, with room for a short sentence around them."""


class ReplyError(ValueError):
    """A response that cannot be read as an answer; the message goes into the call's record."""


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the alternatives returned for it."""

    token: str
    logprob: float
    top: list[tuple[str, float]]


def check_single_character_labels(labels: Sequence[str]) -> None:
    """Chat APIs read one token: a longer label cannot be scored without prompt logprobs."""
    long = [label for label in labels if len(label) != 1]
    if long:
        raise ReplyError(
            f"labels {long} are longer than one character: without prompt log-probabilities "
            "only single-character labels can be read from the first token"
        )


def answer_format_line(labels: Sequence[str]) -> str:
    """The line that asks for the bare label, e.g. 'Reply with only ...: A or B.'."""
    listed = ", ".join(labels[:-1]) + f" or {labels[-1]}" if len(labels) > 1 else labels[0]
    return ANSWER_FORMAT.format(labels=listed)


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """The prompt's messages with the answer-format line appended to the last user message."""
    messages = [message.to_json() for message in prompt.messages]
    for message in reversed(messages):
        if message["role"] == "user":
            message["content"] = f"{message['content']}\n\n{answer_format_line(prompt.labels)}"
            break
    return messages


_LEADING_LABEL = re.compile(r"^[\s*_`\"'(\[]*([^\s*_`\"'()\[\].:,;!?]+)")
_ANSWER_IS = re.compile(r"answer(?:\s+is)?\s*[:\-]?\s*[*_`\"'(\[]*([^\s*_`\"'()\[\].:,;!?]+)", re.I)


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a reply gives: the word it starts with, else the word after 'answer (is):'.

    Only whole words count ("A." and "**B**" do; "Apple" does not), so an article "A" that
    opens a sentence is not read as option A unless the sentence is that word alone.
    """
    for pattern in (_LEADING_LABEL, _ANSWER_IS):
        for match in pattern.finditer(text):
            if match.group(1) in labels:
                return match.group(1)
    return None


def read_answer_token(
    tokens: Sequence[TokenLogprob], labels: Sequence[str]
) -> tuple[OptionReadout, str, int]:
    """The readout at the answer position, the label generated there, and the position.

    The answer position is the first generated token that spells an option label: the
    first token when the model follows the answer format, a later one after a stray
    "**" or "The answer is". The readout is conditional on the tokens before it.
    """
    for position, token in enumerate(tokens):
        label = label_of_token(token.token, labels)
        if label is not None:
            try:
                readout = readout_from_top_logprobs(token.top, labels)
            except ReadoutError as error:
                raise ReplyError(str(error)) from None
            return readout, label, position
    text = "".join(token.token for token in tokens)
    raise ReplyError(f"no generated token is an option label: {text!r}")


def read_reply(
    text: str,
    tokens: Callable[[], Sequence[TokenLogprob]],
    labels: Sequence[str],
    *,
    choice_only: bool,
    finish_reason: object,
    raw: dict[str, JsonValue],
) -> tuple[str, OptionReadout | None]:
    """The answer of a chat reply (shared by `openai:` and `gemini:`): in choice-only mode
    the label parsed from its text and no readout; otherwise the readout at the answer
    token, whose position is noted in `raw`. `tokens` is called only when it is needed."""
    if not text.strip():
        raise ReplyError(f"empty reply (finish_reason {finish_reason!r})")
    if choice_only:
        label = parse_label(text, labels)
        if label is None:
            raise ReplyError(f"no option label in the reply {text!r}")
        return label, None
    readout, label, position = read_answer_token(tokens(), labels)
    raw["answer_position"] = position
    return label, readout


def reply_response(
    read: Callable[[], tuple[str, OptionReadout | None]],
    raw: dict[str, JsonValue],
    usage: Usage,
    latency: float,
) -> ChoiceResponse:
    """The ChoiceResponse of a reply that arrived: its answer, or a failed record with the
    reason `read` gave (a reply without a usable answer is a result, not a crash)."""
    try:
        choice, readout = read()
    except ReplyError as error:
        return ChoiceResponse(
            choice=None, readout=None, raw=raw, usage=usage, latency_s=latency, error=str(error)
        )
    return ChoiceResponse(choice=choice, readout=readout, raw=raw, usage=usage, latency_s=latency)


def replies_of(texts: Sequence[str], n: int, finish_reasons: Sequence[object]) -> tuple[str, ...]:
    """The `n` texts of a free-text reply, in order; raises ReplyError when all are empty.

    A sample that came back without text (blocked by a safety filter, cut off before any
    text, or missing from the response) is an empty string: the readout counts it as an
    unreadable sample. Only a reply with no text at all fails, with its finish reasons.
    """
    padded = (tuple(texts) + ("",) * n)[:n]
    if not any(text.strip() for text in padded):
        reasons = ", ".join(sorted({repr(reason) for reason in finish_reasons})) or "none given"
        raise ReplyError(f"every reply was empty (finish_reason {reasons})")
    return padded
