"""`flip-flop`: settings, the replayed conversation of each round, the facts the simulated
agent reads, and whole runs through the CLI (planned calls, resume, one trials row per round)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from mindshift.cli import main
from mindshift.harness.paradigm import StagePrompt, TurnAnswer
from mindshift.harness.types import Message
from mindshift.paradigms import PARADIGMS, AreYouSure
from mindshift.paradigms.facts import AdviceFacts
from mindshift.paradigms.flip_flop import BARE_CHALLENGES, FlipFlop, FlipFlopSettings
from mindshift.paradigms.registry import paradigm_class


def _flip_flop(**settings: object) -> FlipFlop:
    return FlipFlop(FlipFlopSettings.model_validate({"items": 3, **settings}), seed=0)


def _facts(staged: StagePrompt) -> AdviceFacts:
    assert isinstance(staged.facts, AdviceFacts)
    return staged.facts


def test_registered_by_name_and_entry_point() -> None:
    assert PARADIGMS["flip-flop"] is FlipFlop
    assert paradigm_class("flip-flop") is FlipFlop


def test_one_condition_per_challenge_each_of_rounds_plus_one_turns() -> None:
    paradigm = _flip_flop(challenges=["i-disagree", "are-you-sure"], rounds=5)
    conditions = paradigm.conditions()
    assert [c.name for c in conditions] == ["i-disagree", "are-you-sure"]
    assert conditions[0].factors == {"challenge": "i-disagree"}
    assert [paradigm.turns(c) for c in conditions] == [6, 6]
    assert _flip_flop().settings.rounds == 3
    assert [c.name for c in _flip_flop().conditions()] == list(BARE_CHALLENGES)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"challenges": ["are-you-sur"]}, "unknown challenges"),
        ({"challenges": ["user-suggests"]}, "names no option"),
        ({"challenges": ["are-you-sure", "are-you-sure"]}, "only once"),
        ({"challenges": []}, "at least 1"),
        ({"rounds": 0}, "greater than or equal to 1"),
        ({"rounds": 11}, "less than or equal to 10"),
        ({"round": 3}, "Extra inputs"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FlipFlopSettings.model_validate(settings)


def test_each_round_replays_the_conversation_with_every_earlier_answer() -> None:
    paradigm = _flip_flop(domain="world-facts", challenges=["i-disagree"], rounds=4)
    item = paradigm.items()[0]
    (condition,) = paradigm.conditions()
    challenge = BARE_CHALLENGES["i-disagree"]
    first = paradigm.initial_prompt(item)
    answers = [
        TurnAnswer("A", {"A": 0.5, "B": 0.2, "C": 0.2, "D": 0.1}, turn=1),
        TurnAnswer("C", {"A": 0.3, "B": 0.1, "C": 0.4, "D": 0.2}, turn=2),
        TurnAnswer("C", {"A": 0.1, "B": 0.1, "C": 0.7, "D": 0.1}, turn=3),
        TurnAnswer("B", {"A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1}, turn=4),
    ]
    previous = first
    for turn in range(2, 6):
        staged = paradigm.turn_prompt(item, condition, turn, answers[: turn - 1])
        said = answers[turn - 2]
        assert staged.prompt.messages == (
            *previous.prompt.messages,
            Message("assistant", f"My answer is: {said.choice}"),
            Message("user", challenge),
        )
        assert staged.prompt.messages[0] == first.prompt.messages[0]
        assert staged.prompt.answer_prefix == "My answer is:"
        assert staged.prompt.labels == item.labels
        facts = _facts(staged)
        # The agent updates from its latest belief: the turn before's answer and probabilities.
        assert facts.stage == turn
        assert (facts.initial_choice, facts.initial_probs) == (said.choice, said.probs)
        assert facts.initial_confidence == said.confidence
        assert (facts.display, facts.displayed, facts.advice) == ("shown", said.choice, "neutral")
        assert facts.advised is None and facts.advisors is None
        previous = staged
    assert len(previous.prompt.messages) == 1 + 2 * 4


def test_round_one_is_the_are_you_sure_prompt_of_its_challenge() -> None:
    paradigm = _flip_flop(challenges=["are-you-sure", "think-again"])
    are_you_sure = AreYouSure(AreYouSure.Settings.model_validate({"items": 3}), seed=0)
    item = paradigm.items()[1]
    answer = TurnAnswer("B", {"A": 0.3, "B": 0.7})
    for condition in paradigm.conditions():
        theirs = are_you_sure.followup_prompt(item, condition, answer)
        assert paradigm.turn_prompt(item, condition, 2, [answer]).prompt == theirs.prompt


def test_a_turn_needs_exactly_the_answers_before_it() -> None:
    paradigm = _flip_flop(rounds=2)
    item = paradigm.items()[0]
    condition = paradigm.conditions()[0]
    answer = TurnAnswer("A", {"A": 0.6, "B": 0.4})
    with pytest.raises(ValueError, match="turn 3 of 3"):
        paradigm.turn_prompt(item, condition, 3, [answer])
    with pytest.raises(ValueError, match="turn 4 of 3"):
        paradigm.turn_prompt(item, condition, 4, [answer] * 3)


def test_trial_columns_say_what_the_round_did_to_the_answer_it_challenged() -> None:
    paradigm = _flip_flop(rounds=3)
    item = paradigm.items()[0]
    condition = paradigm.conditions()[0]
    first = TurnAnswer("A", {"A": 0.8, "B": 0.2})
    second = TurnAnswer("B", {"A": 0.45, "B": 0.55}, turn=2)
    final = TurnAnswer("A", {"A": 0.7, "B": 0.3}, turn=3)
    stored = _facts(paradigm.turn_prompt(item, condition, 3, [first, second])).to_json()
    columns = FlipFlop.trial_columns(stored, first, final)
    assert (columns.round, columns.previous_choice, columns.flipped) == (2, "B", True)
    assert columns.previous_confidence == 0.55
    assert columns.final_prob_previous == 0.3
    # Framed on the turn-1 answer, as the engine's columns are (no reframing downstream).
    assert columns.displayed_choice == "A"
    assert (columns.initial_prob_displayed, columns.final_prob_displayed) == (0.8, 0.7)
    assert (columns.display, columns.advice, columns.accuracy, columns.advisors) == (None,) * 4
    assert math.isnan(columns.initial_prob_advised)
    unread = FlipFlop.trial_columns(
        _facts(paradigm.turn_prompt(item, condition, 2, [TurnAnswer("B", None)])).to_json(),
        TurnAnswer("B", None),
        TurnAnswer("B", None, turn=2),
    )
    assert math.isnan(unread.previous_confidence) and math.isnan(unread.final_prob_previous)
    assert not unread.flipped


# Whole runs --------------------------------------------------------------------------------

ITEMS = 5
CHALLENGES = ("are-you-sure", "think-again")
ROUNDS = 3


def _config(tmp_path: Path, params: str) -> Path:
    path = tmp_path / "flip-flop.toml"
    path.write_text(
        '[experiment]\nname = "ff"\nparadigm = "flip-flop"\nseed = 3\n\n'
        f'[paradigm]\ndomain = "latitude"\nitems = {ITEMS}\n'
        f"challenges = {json.dumps(list(CHALLENGES))}\nrounds = {ROUNDS}\n\n"
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
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("flip-flop")
    config = _config(tmp_path, "{ choice_support = 0.8, noise = 0.0 }")
    _run(config, tmp_path / "run")
    return config, tmp_path / "run"


def test_a_run_makes_every_planned_call_once_and_replays_stored_answers(
    finished_run: tuple[Path, Path],
) -> None:
    _, run_dir = finished_run
    records = _records(run_dir)
    assert len(records) == ITEMS * (1 + len(CHALLENGES) * ROUNDS)
    assert all(record["error"] is None for record in records)
    assert len({record["trial_id"] for record in records}) == len(records)  # one id per turn
    by_key = {(r["item"]["id"], r["condition"], r["stage"]): r for r in records}
    for (item, condition, turn), record in by_key.items():
        if turn == 1:
            continue
        before = by_key[(item, "initial" if turn == 2 else condition, turn - 1)]
        assert record["initial_trial_id"] == by_key[(item, "initial", 1)]["trial_id"]
        assert record.get("previous_trial_id") == (None if turn == 2 else before["trial_id"])
        # The stored prompt is the turn before's, its stored answer, and the challenge again.
        messages = record["request"]["messages"]
        assert messages[:-2] == before["request"]["messages"]
        assert messages[-2] == {"role": "assistant", "content": f"My answer is: {before['choice']}"}
        assert messages[-1] == {"role": "user", "content": BARE_CHALLENGES[condition]}
        assert record["request"]["situation"]["initial_choice"] == before["choice"]


def test_resuming_a_finished_run_makes_no_call(finished_run: tuple[Path, Path]) -> None:
    config, run_dir = finished_run
    calls = (run_dir / "calls.jsonl").read_bytes()
    _run(config, run_dir)
    assert (run_dir / "calls.jsonl").read_bytes() == calls


def test_a_cut_run_resumes_to_the_very_same_answers(
    finished_run: tuple[Path, Path], tmp_path: Path
) -> None:
    config, run_dir = finished_run
    full = _records(run_dir)
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    # Keep turns 1 and 2, and turn 3 under one challenge: every later turn is rebuilt from
    # the stored answers of the turns before it.
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [
        line
        for line, r in zip(lines, full, strict=True)
        if r["stage"] <= 2 or (r["stage"] == 3 and r["condition"] == CHALLENGES[0])
    ]
    (cut / "calls.jsonl").write_text("".join(kept), encoding="utf-8")
    (cut / "trials.parquet").unlink()
    _run(config, cut)
    resumed = _records(cut)
    assert len(resumed) == len(full)

    def answers(records: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[str, Any]]:
        return {(r["trial_id"], r["stage"]): (r["choice"], r["readout"]["probs"]) for r in records}

    assert answers(resumed) == answers(full)


def test_trials_table_has_one_row_per_round(finished_run: tuple[Path, Path]) -> None:
    _, run_dir = finished_run
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == ITEMS * len(CHALLENGES) * ROUNDS
    assert sorted(trials["turn"].unique()) == list(range(2, ROUNDS + 2))
    assert (trials["round"] == trials["turn"] - 1).all()
    assert trials.groupby(["item_id", "condition"]).size().eq(ROUNDS).all()
    for _, rows in trials.groupby(["item_id", "condition"]):
        rows = rows.sort_values("turn")
        before = [rows["initial_choice"].iloc[0], *rows["final_choice"].iloc[:-1]]
        assert rows["previous_choice"].tolist() == before
        assert rows["flipped"].tolist() == [
            final != prior for final, prior in zip(rows["final_choice"], before, strict=True)
        ]


def test_the_agent_updates_from_its_latest_belief_each_round(
    finished_run: tuple[Path, Path],
) -> None:
    # choice_support 0.8 and no noise: a bare challenge adds exactly 0.8 to the log-odds of
    # the answer it challenged, from that answer's probability at the turn before.
    _, run_dir = finished_run
    trials = pd.read_parquet(run_dir / "trials.parquet")
    inside = trials["previous_confidence"].between(0.01, 0.99)  # the agent clips before logit
    assert inside.sum() > len(trials) // 2
    rows = trials.loc[inside]
    prior = rows["previous_confidence"]
    shift = (
        rows["final_prob_previous"].map(lambda p: math.log(p / (1 - p)))
        - prior.map(lambda p: math.log(p / (1 - p)))
    ).to_numpy()
    assert shift == pytest.approx([0.8] * len(rows), abs=1e-9)
