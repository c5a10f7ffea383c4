"""Reading answers and stated confidences out of free-text replies.

Replies are read leniently but never guessed at: a label counts only as a whole word (the
rules of `harness.models.chat_answer.parse_label`), a confidence only as a number the reply
states as one (80, 80%, 0.8, 80/100, "Confidence: 80"). Whatever cannot be read is said so,
with the reason, and the call is a failure; the reply's text is kept in the record either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mindshift.harness.models.chat_answer import parse_label

_CONFIDENCE_LINE = re.compile(
    r"confidence\s*(?:level|score)?\s*(?:is|of)?\s*[:=\-]?\s*\**\s*(\d{1,3}(?:\.\d+)?)\s*(%|/\s*100|percent)?",
    re.I,
)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s*(%|/\s*100|percent)?(?![\w.]|/\s*\d)")
_ANSWER_LINE = re.compile(r"answer\s*(?:is)?\s*[:=\-]?\s*\**\s*\(?([^\s*()\[\].:,;!?]+)", re.I)
_TRUE = re.compile(r"^[\s*_`\"'(\[]*(true|yes)\b", re.I)
_FALSE = re.compile(r"^[\s*_`\"'(\[]*(false|no)\b", re.I)


class UnreadableReply(ValueError):
    """A reply that states no readable answer or confidence (the message says which)."""


def read_answer(text: str, labels: Sequence[str]) -> str | None:
    """The option label a reply gives, or None."""
    answer = _ANSWER_LINE.search(text)
    if answer is not None and answer.group(1) in labels:
        return answer.group(1)
    return parse_label(text, labels)


def _as_probability(number: str, unit: str | None) -> float | None:
    value = float(number)
    if unit is None and "." in number and value <= 1.0:
        return value  # "0.8": already a probability
    if 0.0 <= value <= 100.0:
        return value / 100.0
    return None


def read_confidence(text: str) -> float:
    """The confidence a reply states, as a probability in [0, 1]; UnreadableReply if none.

    A "Confidence: NN" line wins; otherwise the reply must hold exactly one number that can
    be a percentage (two different numbers are ambiguous and refused)."""
    line = _CONFIDENCE_LINE.search(text)
    if line is not None:
        value = _as_probability(line.group(1), line.group(2))
        if value is None:
            raise UnreadableReply(f"the stated confidence {line.group(1)} is not 0-100")
        return value
    found = {
        value
        for match in _NUMBER.finditer(text)
        if (value := _as_probability(match.group(1), match.group(2))) is not None
    }
    if not found:
        raise UnreadableReply("the reply states no confidence between 0 and 100")
    if len(found) > 1:
        raise UnreadableReply("the reply states more than one number; which is the confidence?")
    return found.pop()


def read_true_false(text: str) -> bool | None:
    """True or False as the reply's first word (also Yes / No, or an option A/B that the
    question lists as A) True, B) False); None when it says neither."""
    if _TRUE.search(text) or re.match(r"^[\s*(\[]*A\b", text):
        return True
    if _FALSE.search(text) or re.match(r"^[\s*(\[]*B\b", text):
        return False
    return None


@dataclass(frozen=True)
class StatedAnswer:
    """A one-stage verbal reply: the answer and the confidence it states."""

    label: str
    confidence: float


def read_stated_answer(text: str, labels: Sequence[str]) -> StatedAnswer:
    """The answer and the confidence of a reply to `texts.answer_and_confidence`."""
    label = read_answer(text, labels)
    if label is None:
        raise UnreadableReply(f"the reply names no option ({', '.join(labels)})")
    # The label's own digits (an option "1") must not pass for the confidence.
    rest = _ANSWER_LINE.sub(" ", text, count=1)
    return StatedAnswer(label, read_confidence(rest))
