"""The words the readouts without logprobs add to a trial's prompt.

Each readout asks for what it reads in plain words appended to the prompt's last user message
(the question and the trial's context stay exactly as the paradigm wrote them), or in a
follow-up user turn. Kept in one place so the dry-run estimate, the simulated agent's tests
and the docs quote the same text.
"""

from __future__ import annotations

from collections.abc import Sequence

from mindshift.harness.types import Message


def _listed(labels: Sequence[str]) -> str:
    return ", ".join(labels[:-1]) + f" or {labels[-1]}" if len(labels) > 1 else labels[0]


def answer_only(labels: Sequence[str]) -> str:
    return f"Reply with only the letter of your answer: {_listed(labels)}."


def answer_and_confidence(labels: Sequence[str]) -> str:
    return (
        f"Reply with the letter of your answer ({_listed(labels)}) and how confident you are "
        "that it is correct, as a number from 0 to 100, in exactly this form:\n"
        "Answer: <letter>\nConfidence: <number>"
    )


CONFIDENCE_QUESTION = (
    "How likely is it that your answer is correct? Reply with only a number from 0 to 100."
)


TRUE_FALSE_LABELS = ("A", "B")
"""The options of the P(True) question: A) True, B) False (Kadavath et al. 2022)."""


def true_or_false(proposed: str) -> str:
    return (
        f"Proposed answer: {proposed}\n"
        "Is the proposed answer true or false?\nA) True\nB) False\n"
        "Reply with only the letter: A or B."
    )


def with_instruction(messages: Sequence[Message], instruction: str) -> tuple[Message, ...]:
    """The messages with `instruction` appended to the last user message."""
    out = list(messages)
    for index in range(len(out) - 1, -1, -1):
        if out[index].role == "user":
            out[index] = Message("user", f"{out[index].content}\n\n{instruction}")
            return tuple(out)
    return (*out, Message("user", instruction))
