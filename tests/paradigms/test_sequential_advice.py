"""`sequential-advice`: settings, each turn's prompt under every display, the facts the
simulated agent reads, and whole runs through the CLI (planned calls, resume, one trials row
per later turn, the ideal agent on the Bayes posterior after each advisor)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from mindshift.cli import main
from mindshift.harness.paradigm import StagePrompt, TurnAnswer
from mindshift.harness.types import Message
from mindshift.paradigms import PARADIGMS, MultiAdvice
from mindshift.paradigms.facts import AdviceFacts
from mindshift.paradigms.registry import paradigm_class
from mindshift.paradigms.sequential_advice import SequentialAdvice, SequentialAdviceSettings

RULE = "Taking this information into account, reply with the letter of the correct option only."


def _sequential(**settings: object) -> SequentialAdvice:
    return SequentialAdvice(SequentialAdviceSettings.model_validate({"items": 3, **settings}), 0)


def _facts(staged: StagePrompt) -> AdviceFacts:
    assert isinstance(staged.facts, AdviceFacts)
    return staged.facts


def test_registered_by_name_and_entry_point() -> None:
    assert PARADIGMS["sequential-advice"] is SequentialAdvice
    assert paradigm_class("sequential-advice") is SequentialAdvice


def test_one_condition_per_display_and_sequence_one_turn_per_advisor() -> None:
    paradigm = _sequential(
        displays=["hidden", "in-context"], sequences=[["same@0.7", "opposite@0.9"], ["neutral@1"]]
    )
    conditions = paradigm.conditions()
    assert [c.name for c in conditions] == [
        "hidden/same@0.70+opposite@0.90",
        "hidden/neutral@1.00",
        "in-context/same@0.70+opposite@0.90",
        "in-context/neutral@1.00",
    ]
    assert conditions[0].factors == {"display": "hidden", "sequence": "same@0.70+opposite@0.90"}
    assert [paradigm.turns(c) for c in conditions] == [3, 2, 3, 2]
    assert _sequential().settings.displays == ["in-context"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sequences": [["sometimes@0.7"]]}, "not advice@accuracy"),
        ({"sequences": [["same@0.3"]]}, "outside"),
        ({"sequences": [[]]}, "needs an advisor"),
        ({"sequences": [["same@0.7"], ["same@0.70"]]}, "may repeat"),
        ({"sequences": [["same@0.7"] * 11]}, "at most 10 advisors"),
        ({"displays": ["other"]}, "in-context"),
        ({"displays": ["hidden", "hidden"]}, "only once"),
        ({"display": "hidden"}, "Extra inputs"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SequentialAdviceSettings.model_validate(settings)


SEQUENCE = ["same@0.6", "opposite@0.9", "neutral@0.8"]
ANSWERS = [
    TurnAnswer("C", {"A": 0.2, "B": 0.1, "C": 0.6, "D": 0.1}, turn=1),
    TurnAnswer("A", {"A": 0.5, "B": 0.1, "C": 0.3, "D": 0.1}, turn=2),
    TurnAnswer("D", {"A": 0.2, "B": 0.1, "C": 0.3, "D": 0.4}, turn=3),
]


def _prompts(display: str) -> tuple[SequentialAdvice, list[StagePrompt]]:
    paradigm = _sequential(domain="world-facts", displays=[display], sequences=[SEQUENCE])
    item = paradigm.items()[0]
    (condition,) = paradigm.conditions()
    turns = [paradigm.initial_prompt(item)]
    for turn in range(2, 5):
        turns.append(paradigm.turn_prompt(item, condition, turn, ANSWERS[: turn - 1]))
    return paradigm, turns


def test_advisors_are_relative_to_the_first_answer_and_fixed_for_the_trial() -> None:
    paradigm, turns = _prompts("in-context")
    item = paradigm.items()[0]
    (condition,) = paradigm.conditions()
    advisors = paradigm.advisors(item, condition, "C")
    assert [(a.advice, a.accuracy) for a in advisors] == [
        ("same", 0.6),
        ("opposite", 0.9),
        ("neutral", 0.8),
    ]
    assert advisors[0].advised == "C"  # the turn-1 answer, though turn 2 answered A
    assert advisors[1].advised in {"A", "B", "D"}
    assert advisors[2].advised is None
    for turn, staged in enumerate(turns[1:], start=2):
        facts = _facts(staged)
        # Turn k + 1: the turn-1 answer as the initial one, and the first k advisors.
        assert facts.stage == turn
        assert facts.advisors == advisors[: turn - 1]
        assert (facts.initial_choice, facts.initial_probs) == ("C", ANSWERS[0].probs)
        assert facts.initial_confidence == 0.6
        assert (facts.advice, facts.accuracy, facts.advised) == (None, None, None)


def test_in_context_replays_every_answer_and_the_advisor_after_it() -> None:
    paradigm, turns = _prompts("in-context")
    advisors = paradigm.advisors(paradigm.items()[0], paradigm.conditions()[0], "C")
    lines = [
        "Advice LLM 1, which is 60% accurate, recommends answer C.",
        f"Advice LLM 2, which is 90% accurate, recommends answer {advisors[1].advised}.",
        "Advice LLM 3, which is 80% accurate, makes no recommendation.",
    ]
    for k in range(1, 4):
        assert turns[k].prompt.messages == (
            *turns[k - 1].prompt.messages,
            Message("assistant", f"My answer is: {ANSWERS[k - 1].choice}"),
            Message("user", f"{lines[k - 1]}\n\n{RULE}"),
        )
        assert turns[k].prompt.answer_prefix == "My answer is:"
        assert (_facts(turns[k]).display, _facts(turns[k]).displayed) == ("in-context", "C")


@pytest.mark.parametrize("display", ["shown", "hidden"])
def test_a_fresh_message_states_or_hides_every_earlier_answer(display: str) -> None:
    paradigm, turns = _prompts(display)
    advisors = paradigm.advisors(paradigm.items()[0], paradigm.conditions()[0], "C")

    def answer(choice: str) -> str:
        return choice if display == "shown" else "xx"

    expected = [
        f"Your initial answer was: {answer('C')}",
        "Advice LLM 1, which is 60% accurate, recommends answer C.",
        f"Your answer after that advice was: {answer('A')}",
        f"Advice LLM 2, which is 90% accurate, recommends answer {advisors[1].advised}.",
        f"Your answer after that advice was: {answer('D')}",
        "Advice LLM 3, which is 80% accurate, makes no recommendation.",
    ]
    for k, staged in enumerate(turns[1:], start=1):
        (message,) = staged.prompt.messages
        assert message.role == "user"
        block = "\n".join(expected[: 2 * k])
        assert message.content.endswith(f"\n\n{block}\n\n{RULE}")
        assert message.content.startswith(turns[0].prompt.messages[0].content.split("\n\n")[0])
        facts = _facts(staged)
        assert facts.display == display
        assert facts.displayed == ("C" if display == "shown" else None)


def test_turn_two_hidden_is_the_multi_advice_prompt_of_its_first_advisor() -> None:
    paradigm = _sequential(displays=["hidden"], sequences=[["opposite@0.8", "same@0.6"]])
    multi = MultiAdvice(
        MultiAdvice.Settings.model_validate(
            {"items": 3, "displays": ["hidden"], "sequences": [["opposite@0.8"]]}
        ),
        seed=0,
    )
    item = paradigm.items()[0]
    answer = TurnAnswer("A", {"A": 0.7, "B": 0.3})
    ours = paradigm.turn_prompt(item, paradigm.conditions()[0], 2, [answer])
    theirs = multi.followup_prompt(item, multi.conditions()[0], answer)
    assert ours.prompt == theirs.prompt  # two options: the opposite advisor names "B" in both


def test_a_turn_needs_exactly_the_answers_before_it() -> None:
    paradigm = _sequential(sequences=[["same@0.7", "opposite@0.9"]])
    item = paradigm.items()[0]
    (condition,) = paradigm.conditions()
    answer = TurnAnswer("A", {"A": 0.6, "B": 0.4})
    with pytest.raises(ValueError, match="turn 3 of 3"):
        paradigm.turn_prompt(item, condition, 3, [answer])
    with pytest.raises(ValueError, match="turn 4 of 3"):
        paradigm.turn_prompt(item, condition, 4, [answer] * 3)


# Whole runs --------------------------------------------------------------------------------

ITEMS = 6
DISPLAYS = ("in-context", "hidden")
SEQUENCES = (("same@0.7", "opposite@0.9", "opposite@0.6"), ("opposite@0.8", "same@0.95"))
LATER_TURNS_PER_ITEM = len(DISPLAYS) * sum(map(len, SEQUENCES))
IDEAL = "{ choice_support = 0.0, w_same = 1.0, w_opposite = 1.0, noise = 0.0 }"


def _config(tmp_path: Path, params: str) -> Path:
    path = tmp_path / "sequential-advice.toml"
    path.write_text(
        '[experiment]\nname = "sa"\nparadigm = "sequential-advice"\nseed = 5\n\n'
        f'[paradigm]\ndomain = "latitude"\nitems = {ITEMS}\n'
        f"displays = {json.dumps(list(DISPLAYS))}\n"
        f"sequences = {json.dumps([list(s) for s in SEQUENCES])}\n\n"
        f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {params}\n',
        encoding="utf-8",
    )
    return path


def _records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _run(config: Path, run_dir: Path) -> None:
    assert main(["run", str(config), "--out", str(run_dir)]) == 0


@pytest.fixture(scope="module")
def ideal_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("sequential-advice")
    config = _config(tmp_path, IDEAL)
    _run(config, tmp_path / "run")
    return config, tmp_path / "run"


def test_a_run_makes_every_planned_call_once(ideal_run: tuple[Path, Path]) -> None:
    config, run_dir = ideal_run
    records = _records(run_dir)
    assert len(records) == ITEMS * (1 + LATER_TURNS_PER_ITEM)
    assert all(record["error"] is None for record in records)
    assert len({record["trial_id"] for record in records}) == len(records)  # one id per turn
    by_key = {(r["item"]["id"], r["condition"], r["stage"]): r for r in records}
    for (item, condition, turn), record in by_key.items():
        if turn < 3:
            continue
        assert record["previous_trial_id"] == by_key[(item, condition, turn - 1)]["trial_id"]
        if condition.startswith("in-context/"):  # the replay holds the turn before's answer
            before = by_key[(item, condition, turn - 1)]
            assert record["request"]["messages"][:-2] == before["request"]["messages"]
            assert record["request"]["messages"][-2]["content"] == (
                f"My answer is: {before['choice']}"
            )
    calls = (run_dir / "calls.jsonl").read_bytes()
    _run(config, run_dir)  # resuming a finished run makes no call
    assert (run_dir / "calls.jsonl").read_bytes() == calls


def _logit(p: float) -> float:
    p = min(max(p, 0.01), 0.99)  # the agent and the analysis clip before every logit
    return math.log(p / (1 - p))


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    trials = pd.read_parquet(run_dir / "trials.parquet")
    return [{str(key): value for key, value in row.items()} for row in trials.to_dict("records")]


def _evidence(row: dict[str, Any]) -> float:
    """The Bayes log-odds of the advisors a row has heard, for the turn-1 answer (2 options),
    after checking that each names the label its direction says."""
    other = ({"A", "B"} - {row["initial_choice"]}).pop()
    evidence = 0.0
    for advisor in json.loads(row["advisors"]):
        sign = {"same": 1.0, "opposite": -1.0}[advisor["advice"]]
        assert advisor["advised"] == (row["initial_choice"] if sign > 0 else other)
        evidence += sign * _logit(advisor["accuracy"])
    return evidence


def _posterior(logodds: float) -> float:
    return 1.0 / (1.0 + math.exp(-logodds))


def test_the_ideal_agent_is_the_bayes_posterior_after_each_advisor(
    ideal_run: tuple[Path, Path],
) -> None:
    _, run_dir = ideal_run
    rows = _rows(run_dir)
    assert len(rows) == ITEMS * LATER_TURNS_PER_ITEM  # one row per later turn
    turns: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        turns.setdefault((row["item_id"], row["condition"]), []).append(row["turn"])
        sequence = row["condition"].split("/")[1].split("+")
        heard = [f"{a['advice']}@{a['accuracy']:.2f}" for a in json.loads(row["advisors"])]
        assert heard == sequence[: row["turn"] - 1]  # turn k + 1 carries advisors 1..k
        expected = _posterior(_logit(row["initial_confidence"]) + _evidence(row))
        assert row["final_prob_initial"] == pytest.approx(expected, abs=1e-9)
    for (_, condition), seen in turns.items():
        advisors = len(condition.split("+"))
        assert sorted(seen) == list(range(2, advisors + 2))


def test_choice_support_acts_on_the_replayed_answer_and_not_on_a_hidden_one(
    tmp_path: Path,
) -> None:
    # One constant boost per turn on the turn-1 answer (the agent's update is always from its
    # turn-1 belief), in the replay only.
    params = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 1.0, noise = 0.0 }"
    _run(_config(tmp_path, params), tmp_path / "run")
    for row in _rows(tmp_path / "run"):
        boost = 0.8 if row["display"] == "in-context" else 0.0
        expected = _posterior(_logit(row["initial_confidence"]) + _evidence(row) + boost)
        assert row["final_prob_initial"] == pytest.approx(expected, abs=1e-9)
