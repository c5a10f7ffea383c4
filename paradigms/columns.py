"""The columns the advice protocols add to trials.parquet (`AdviceColumns`).

One row of trials.parquet is one later turn joined with its turn-1 answer. The engine fills
the columns every protocol has (ids, choices, confidences); `advice_columns` computes these
from the row's stored `AdviceFacts` and the two answers' option probabilities. A probability
that is not known (no readout, a censored one, no option to ask about) is NaN, never a
made-up 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from mindshift.harness.paradigm import TrialColumns, TurnAnswer
from mindshift.harness.types import JsonValue
from mindshift.paradigms.facts import AdviceFacts, AdviceKind, Display


class AdviceColumns(TrialColumns):
    """What the analysis of advice reads from each trial, beyond the common columns."""

    display: Display | None
    """The display factor of the trial's condition (None when its design has none)."""
    advice: AdviceKind | None
    """The advice factor of the condition: same / opposite / neutral (None: not one advisor
    of the display x advice x accuracy design)."""
    accuracy: float | None
    """The stated advice accuracy of the condition (None as for `advice`)."""
    advised: str | None
    """The label the one advisor recommended; None for neutral advice or a sequence."""
    initial_prob_advised: float
    """The turn-1 probability of the advised option (the K-option Bayes update needs it)."""
    displayed_choice: str | None
    """The answer the prompt displayed as the initial one; None when hidden (under
    `answer-wrong` it differs from the turn-1 answer)."""
    initial_prob_displayed: float
    """The turn-1 probability of the displayed answer."""
    final_prob_displayed: float
    """The final probability of the displayed answer."""
    advisors: str | None
    """A sequence of advisors (`multi-advice`) as compact JSON text: advice, accuracy, advised
    and initial_prob_advised (null when unknown) of each; None without a sequence."""


def probability(answer: TurnAnswer, label: str | None) -> float:
    """The probability `answer`'s readout gave `label`; NaN when unknown."""
    if label is None or answer.probs is None:
        return math.nan
    value = answer.probs.get(label)
    return math.nan if value is None else float(value)


def advice_columns(
    stored: Mapping[str, JsonValue],
    initial: TurnAnswer,
    final: TurnAnswer,
    *,
    design_factors: bool = True,
) -> AdviceColumns:
    """The advice columns of one trial, from its stored facts and its two answers.

    `design_factors`: whether the facts' display, advice and accuracy are the factors of the
    trial's condition (change-of-mind's display x advice x accuracy design, multi-advice's
    display). A protocol whose conditions are something else (are-you-sure's challenges,
    which the facts only translate for the simulated agent) leaves those three columns None,
    so the measures of that design do not count its trials.
    """
    facts = AdviceFacts.model_validate(stored)
    displayed = facts.displayed
    return AdviceColumns(
        display=facts.display if design_factors else None,
        advice=facts.advice if design_factors else None,
        accuracy=facts.accuracy if design_factors else None,
        advised=facts.advised,
        initial_prob_advised=probability(initial, facts.advised),
        displayed_choice=displayed,
        initial_prob_displayed=probability(initial, displayed),
        final_prob_displayed=probability(final, displayed),
        advisors=_advisors_text(facts, initial),
    )


def _advisors_text(facts: AdviceFacts, initial: TurnAnswer) -> str | None:
    """The sequence as JSON text, each advisor with its advised option's turn-1 probability."""
    if facts.advisors is None:
        return None
    advisors = []
    for advisor in facts.advisors:
        prob = probability(initial, advisor.advised)
        known = None if math.isnan(prob) else prob  # NaN is not JSON: unknown is null
        advisors.append({**advisor.model_dump(mode="json"), "initial_prob_advised": known})
    return json.dumps(advisors, separators=(",", ":"))
