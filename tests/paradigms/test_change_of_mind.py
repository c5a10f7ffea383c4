"""The change-of-mind paradigm: conditions, advice relative to the model's own answer, prompts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from mindshift.harness.paradigm import InitialAnswer, StagePrompt
from mindshift.harness.types import Item
from mindshift.paradigms.change_of_mind import ChangeOfMind, ChangeOfMindSettings
from mindshift.paradigms.change_of_mind.prompts import ANSWER_PREFIX, HIDDEN_PLACEHOLDER
from mindshift.paradigms.facts import AdviceFacts


def _facts(staged: StagePrompt) -> AdviceFacts:
    assert isinstance(staged.facts, AdviceFacts)
    return staged.facts


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
    assert _facts(same).advised == wrong
    assert _facts(opposite).advised == item.correct
    assert _facts(neutral).advised is None
    assert f"80% accurate recommends answer {wrong}" in same.prompt.messages[-1].content
    assert f"recommends answer {item.correct}" in opposite.prompt.messages[-1].content
    assert "makes no recommendation" in neutral.prompt.messages[-1].content
    assert _facts(same).initial_confidence == 0.7


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


# Beyond latitude: K-option domains, the controls --------------------------------------------


def _k4(paradigm: ChangeOfMind) -> Item:
    item = paradigm.items()[0]
    assert len(item.labels) == 4
    return item


def test_domains_other_than_latitude() -> None:
    for domain in ("world-facts", "arithmetic"):
        items = _paradigm(domain=domain).items()
        assert len(items) == 4 and all(len(item.labels) == 4 for item in items)
    with pytest.raises(ValidationError, match="unknown domain"):
        ChangeOfMindSettings.model_validate({"domain": "astrology"})
    with pytest.raises(ValidationError, match="latitude domain only"):
        ChangeOfMindSettings.model_validate({"domain": "arithmetic", "difficulty": "hard"})


def test_opposite_advice_picks_uniformly_among_the_other_options() -> None:
    paradigm = _paradigm(domain="world-facts", items=400, accuracies=[0.7], displays=["hidden"])
    opposite = next(c for c in paradigm.conditions() if c.factors["advice"] == "opposite")
    picked: Counter[int] = Counter()
    for item in paradigm.items():
        initial = InitialAnswer(choice=item.labels[0], probs=None)
        first = _facts(paradigm.followup_prompt(item, opposite, initial)).advised
        # Deterministic: the same item and condition always name the same option.
        assert _facts(paradigm.followup_prompt(item, opposite, initial)).advised == first
        assert first != item.labels[0]
        picked[item.labels.index(first)] += 1
    assert set(picked) == {1, 2, 3}
    assert all(abs(count / 400 - 1 / 3) < 0.07 for count in picked.values())


def test_the_facts_carry_the_full_initial_distribution() -> None:
    paradigm = _paradigm(domain="arithmetic")
    item = _k4(paradigm)
    probs = {"A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1}
    condition = next(c for c in paradigm.conditions() if c.name == "shown/opposite/0.80")
    facts = _facts(paradigm.followup_prompt(item, condition, InitialAnswer("B", probs)))
    assert facts.initial_probs == probs and facts.initial_confidence == 0.6
    assert facts.advised in ("A", "C", "D") and facts.displayed == "B"
    text = paradigm.followup_prompt(item, condition, InitialAnswer("B", probs)).prompt
    assert f"recommends answer {facts.advised}" in text.messages[-1].content


def test_answer_wrong_always_displays_a_wrong_answer() -> None:
    paradigm = _paradigm(domain="world-facts", items=40, displays=["answer-wrong"])
    same = next(c for c in paradigm.conditions() if c.name == "answer-wrong/same/0.70")
    shown = []
    for item in paradigm.items():
        right = paradigm.followup_prompt(item, same, InitialAnswer(item.correct, None))
        displayed = _facts(right).displayed
        shown.append(displayed)
        assert displayed != item.correct and _facts(right).initial_choice == item.correct
        # Advice is relative to the displayed answer, and the prompt says it is "yours".
        assert _facts(right).advised == displayed
        assert f"Your initial answer was: {displayed}" in right.prompt.messages[-1].content
        # A wrong stage-1 answer is itself displayed.
        wrong = next(label for label in item.labels if label != item.correct)
        assert (
            _facts(paradigm.followup_prompt(item, same, InitialAnswer(wrong, None))).displayed
            == wrong
        )
    assert len(set(shown)) > 1  # the wrong option varies across items (seeded, uniform)


def test_answer_wrong_with_two_options_shows_the_incorrect_option() -> None:
    paradigm = _paradigm(displays=["answer-wrong"])
    item = paradigm.items()[0]
    wrong = next(label for label in item.labels if label != item.correct)
    condition = paradigm.conditions()[0]
    facts = _facts(paradigm.followup_prompt(item, condition, InitialAnswer(item.correct, None)))
    assert facts.displayed == wrong


def test_in_context_replays_the_conversation() -> None:
    paradigm = _paradigm(displays=["in-context"])
    item = paradigm.items()[0]
    condition = next(c for c in paradigm.conditions() if c.name == "in-context/opposite/0.90")
    staged = paradigm.followup_prompt(item, condition, InitialAnswer("A", {"A": 0.7, "B": 0.3}))
    roles = [message.role for message in staged.prompt.messages]
    assert roles == ["user", "assistant", "user"]
    first = paradigm.initial_prompt(item).prompt.messages[0].content
    assert staged.prompt.messages[0].content == first
    assert staged.prompt.messages[1].content == f"{ANSWER_PREFIX} A"
    assert "90% accurate recommends answer B" in staged.prompt.messages[2].content
    assert staged.prompt.answer_prefix == ANSWER_PREFIX
    assert _facts(staged).display == "in-context" and _facts(staged).displayed == "A"


def test_calibration_items_for_generated_domains_and_files(tmp_path: Path) -> None:
    for domain in ("world-facts", "arithmetic"):
        plain = _paradigm(domain=domain, items=8)
        split = _paradigm(domain=domain, items=8, calibration_items=12)
        assert split.items() == plain.items()  # a split leaves the main items as they were
        held_out = split.calibration_items()
        assert len(held_out) == 12
        assert not {i.item_id for i in held_out} & {i.item_id for i in plain.items()}
        assert all(item.meta["split"] == "calibration" for item in held_out)
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": f"q{i}", "question": f"{i}?", "options": ["x", "y"], "answer": "A"} for i in range(5)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    paradigm = _paradigm(domain=f"file:{path}", items=3, calibration_items=2)
    assert [i.item_id for i in paradigm.calibration_items()] == ["file-q3", "file-q4"]
    with pytest.raises(ValueError, match="has 5 questions"):
        _paradigm(domain=f"file:{path}", items=3, calibration_items=3).items()
