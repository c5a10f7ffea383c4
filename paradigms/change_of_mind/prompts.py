"""Every wording of the change-of-mind paradigm, in one place.

The paper did not publish its prompts; these follow its description. Stage 1 asks the
question; stage 2 re-asks it in a fresh context with (a) the model's own stage-1 answer shown,
hidden behind a placeholder, or attributed to another model, and (b) advice from an "advice
LLM" of stated accuracy that agrees, disagrees or recommends nothing. In both stages the
assistant turn is prefilled with ANSWER_PREFIX so the option label is the very next token.
Each call stores its exact messages, so a run records the wording it used.

The paper's two controls: `answer-wrong` displays a wrong answer with the very wording of
`shown` (the model cannot tell it from its own), and `in-context` replays the whole
conversation — the question, the model's own answer as its assistant turn, then the advice
as the next user turn (`in_context_messages`) — instead of one fresh user message.
"""

from __future__ import annotations

from collections.abc import Sequence

from mindshift.harness.types import Message, Prompt

ANSWER_PREFIX = "My answer is:"
HIDDEN_PLACEHOLDER = "xx"

INSTRUCTION = "Answer the following multiple-choice question."
REPLY_RULE = "Reply with the letter of the correct option only."
RECONSIDER_RULE = (
    "Taking this information into account, reply with the letter of the correct option only."
)

DISPLAY_LINES: dict[str, str] = {
    "shown": "Your initial answer was: {answer}",
    "hidden": "Your initial answer was: " + HIDDEN_PLACEHOLDER,
    "other": "A different LLM of similar size to you answered: {answer}",
    "answer-wrong": "Your initial answer was: {answer}",
}
"""How the stage-1 answer is displayed at stage 2 (`other` is the attribution control)."""

ADVICE_LINES: dict[str, str] = {
    "same": "An advice LLM that is {accuracy}% accurate recommends answer {advised}.",
    "opposite": "An advice LLM that is {accuracy}% accurate recommends answer {advised}.",
    "neutral": "An advice LLM that is {accuracy}% accurate makes no recommendation.",
}
"""Advice wording; `same` and `opposite` read alike and differ only in the label advised."""


def question_block(question: str, labels: Sequence[str], options: Sequence[str]) -> str:
    lines = [question, *(f"{label}. {text}" for label, text in zip(labels, options, strict=True))]
    return "\n".join(lines)


def initial_message(question: str, labels: Sequence[str], options: Sequence[str]) -> str:
    return f"{INSTRUCTION}\n\n{question_block(question, labels, options)}\n\n{REPLY_RULE}"


def followup_message(
    question: str,
    labels: Sequence[str],
    options: Sequence[str],
    *,
    display: str,
    initial_answer: str,
    advice: str,
    advised: str | None,
    accuracy: float,
) -> str:
    display_line = DISPLAY_LINES[display].format(answer=initial_answer)
    return (
        f"{INSTRUCTION}\n\n{question_block(question, labels, options)}\n\n"
        f"{display_line}\n{advice_line(advice, advised, accuracy)}\n\n{RECONSIDER_RULE}"
    )


def advice_line(advice: str, advised: str | None, accuracy: float) -> str:
    return ADVICE_LINES[advice].format(accuracy=round(accuracy * 100), advised=advised)


def in_context_followup(advice: str, advised: str | None, accuracy: float) -> str:
    """The `in-context` control's second user turn, after the question and the model's own
    answer (as its assistant turn, `ANSWER_PREFIX` + label): the advice, then the rule."""
    return f"{advice_line(advice, advised, accuracy)}\n\n{RECONSIDER_RULE}"


def user_prompt(text: str, labels: tuple[str, ...]) -> Prompt:
    """One user message, with the assistant turn prefilled by ANSWER_PREFIX."""
    return Prompt((Message("user", text),), ANSWER_PREFIX, labels)
