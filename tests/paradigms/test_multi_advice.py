"""`multi-advice` and `are-you-sure`: conditions, prompts and the facts they hand on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mindshift.harness.paradigm import InitialAnswer, StagePrompt
from mindshift.paradigms import PARADIGMS, AreYouSure, MultiAdvice
from mindshift.paradigms.facts import AdviceFacts
from mindshift.paradigms.multi_advice import MultiAdviceSettings


def _facts(staged: StagePrompt) -> AdviceFacts:
    assert isinstance(staged.facts, AdviceFacts)
    return staged.facts


def _multi(**settings: object) -> MultiAdvice:
    return MultiAdvice(MultiAdviceSettings.model_validate({"items": 3, **settings}), seed=0)


def test_registered() -> None:
    assert PARADIGMS["multi-advice"] is MultiAdvice and PARADIGMS["are-you-sure"] is AreYouSure


def test_one_condition_per_display_and_sequence() -> None:
    paradigm = _multi(
        displays=["shown", "hidden"], sequences=[["same@0.7", "opposite@0.9"], ["opposite@1"]]
    )
    names = [c.name for c in paradigm.conditions()]
    assert names == [
        "shown/same@0.70+opposite@0.90",
        "shown/opposite@1.00",
        "hidden/same@0.70+opposite@0.90",
        "hidden/opposite@1.00",
    ]
    assert paradigm.conditions()[0].factors == {
        "display": "shown",
        "sequence": "same@0.70+opposite@0.90",
    }


@pytest.mark.parametrize(
    ("sequences", "message"),
    [
        ([["sometimes@0.7"]], "not advice@accuracy"),
        ([["same"]], "not advice@accuracy"),
        ([["same@0.3"]], "outside"),
        ([[]], "needs an advisor"),
        ([["same@0.7"], ["same@0.70"]], "may repeat"),
    ],
)
def test_bad_sequences_are_refused(sequences: list[list[str]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MultiAdviceSettings.model_validate({"sequences": sequences})


def test_every_advisor_is_in_the_prompt_and_the_facts() -> None:
    paradigm = _multi(
        domain="world-facts",
        displays=["shown"],
        sequences=[["same@0.6", "opposite@0.9", "neutral@0.8"]],
    )
    item = paradigm.items()[0]
    (condition,) = paradigm.conditions()
    probs = dict.fromkeys(item.labels, 0.25)
    staged = paradigm.followup_prompt(item, condition, InitialAnswer(item.labels[2], probs))
    advisors = _facts(staged).advisors
    assert advisors is not None
    assert [a.advice for a in advisors] == ["same", "opposite", "neutral"]
    assert [a.accuracy for a in advisors] == [0.6, 0.9, 0.8]
    assert advisors[0].advised == item.labels[2]
    assert advisors[1].advised in item.labels and advisors[1].advised != item.labels[2]
    assert advisors[2].advised is None
    text = staged.prompt.messages[-1].content
    assert f"Your initial answer was: {item.labels[2]}" in text
    assert f"Advice LLM 1, which is 60% accurate, recommends answer {item.labels[2]}." in text
    assert f"Advice LLM 2, which is 90% accurate, recommends answer {advisors[1].advised}." in text
    assert "Advice LLM 3, which is 80% accurate, makes no recommendation." in text
    assert _facts(staged).initial_probs == probs
    assert _facts(staged).advice is None  # no single advice: the analysis reads `advisors`


def test_are_you_sure_names_one_of_the_other_options() -> None:
    paradigm = AreYouSure(
        AreYouSure.Settings.model_validate({"domain": "arithmetic", "items": 30}), seed=0
    )
    condition = next(c for c in paradigm.conditions() if c.name == "user-suggests")
    named = set()
    for item in paradigm.items():
        staged = paradigm.followup_prompt(item, condition, InitialAnswer(item.labels[0], None))
        other = _facts(staged).advised
        assert (
            other != item.labels[0]
            and f"the answer is {other}." in staged.prompt.messages[-1].content
        )
        assert [m.role for m in staged.prompt.messages] == ["user", "assistant", "user"]
        named.add(other)
    assert named == {"B", "C", "D"}
