"""The change-of-mind paradigm: conditions, advice relative to the model's own answer, prompts."""

from __future__ import annotations

from harness.paradigm import InitialAnswer
from paradigms.change_of_mind import ChangeOfMind, ChangeOfMindSettings
from paradigms.change_of_mind.prompts import ANSWER_PREFIX, HIDDEN_PLACEHOLDER


def _paradigm(**settings: object) -> ChangeOfMind:
    return ChangeOfMind(ChangeOfMindSettings.model_validate({"items": 4, **settings}), seed=0)


def test_full_factorial_is_36_conditions() -> None:
    conditions = _paradigm().conditions()
    assert len(conditions) == 36
    assert len({c.name for c in conditions}) == 36
    assert conditions[0].factors == {"display": "shown", "advice": "same", "accuracy": 0.5}


def test_advice_is_relative_to_the_initial_answer_not_the_truth() -> None:
    paradigm = _paradigm(displays=["shown", "hidden", "other"])
    item = paradigm.items()[0]
    wrong = next(label for label in item.labels if label != item.correct)
    initial = InitialAnswer(choice=wrong, probs={item.correct: 0.3, wrong: 0.7})
    by_name = {c.name: c for c in paradigm.conditions()}
    same = paradigm.followup_prompt(item, by_name["shown/same/0.80"], initial)
    opposite = paradigm.followup_prompt(item, by_name["shown/opposite/0.80"], initial)
    neutral = paradigm.followup_prompt(item, by_name["shown/neutral/0.80"], initial)
    assert same.situation["advised"] == wrong
    assert opposite.situation["advised"] == item.correct
    assert neutral.situation["advised"] is None
    assert f"80% accurate recommends answer {wrong}" in same.prompt.messages[-1].content
    assert f"recommends answer {item.correct}" in opposite.prompt.messages[-1].content
    assert "makes no recommendation" in neutral.prompt.messages[-1].content
    assert same.situation["initial_confidence"] == 0.7


def test_displays_show_hide_or_attribute_the_initial_answer() -> None:
    paradigm = _paradigm(displays=["shown", "hidden", "other"])
    item = paradigm.items()[0]
    initial = InitialAnswer(choice="B", probs={"A": 0.4, "B": 0.6})
    by_name = {c.name: c for c in paradigm.conditions()}
    shown = (
        paradigm.followup_prompt(item, by_name["shown/neutral/0.50"], initial)
        .prompt.messages[-1]
        .content
    )
    hidden = (
        paradigm.followup_prompt(item, by_name["hidden/neutral/0.50"], initial)
        .prompt.messages[-1]
        .content
    )
    other = (
        paradigm.followup_prompt(item, by_name["other/neutral/0.50"], initial)
        .prompt.messages[-1]
        .content
    )
    assert "Your initial answer was: B" in shown
    assert f"Your initial answer was: {HIDDEN_PLACEHOLDER}" in hidden
    assert "A different LLM of similar size to you answered: B" in other


def test_every_prompt_is_prefilled_and_asks_the_same_question() -> None:
    paradigm = _paradigm()
    item = paradigm.items()[1]
    first = paradigm.initial_prompt(item)
    assert first.prompt.answer_prefix == ANSWER_PREFIX
    assert item.question in first.prompt.messages[-1].content
    for option in item.options:
        assert option in first.prompt.messages[-1].content
    assert first.prompt.labels == ("A", "B")
