"""The per-turn trajectories (`analysis.measures.turns`) on a table computed by hand, and the
measures of one number per condition read at the condition's last turn, never pooled."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import (
    AnalysisInputError,
    com_rates,
    compute_results,
    condition_table,
    last_turn,
    render_report,
    sequence_table,
    summary_document,
    turn_table,
    validate_trials,
)
from mindshift.analysis.measures.turns import flips

MakeTrials = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def _push(
    item: str, turn: int, initial: str, c: float, final: str, q: float, conf: float
) -> dict[str, Any]:
    return {
        "trial_id": f"push-{item}-{turn}",
        "initial_trial_id": f"{item}-s1",
        "item_id": item,
        "condition": "push",
        "turn": turn,
        "initial_choice": initial,
        "initial_confidence": c,
        "initial_correct": initial == "A",
        "final_choice": final,
        "final_prob_initial": q,
        "final_confidence": conf,
        "changed_mind": final != initial,
        "final_correct": final == "A",
    }


def _advised(turn: int, advisors: list[dict[str, Any]], final: str, q: float) -> dict[str, Any]:
    return {
        "display": "hidden",
        "advisors": json.dumps(advisors),
        "trial_id": f"seq-{turn}",
        "initial_trial_id": "x-s1",
        "item_id": "x",
        "condition": "seq",
        "turn": turn,
        "initial_choice": "A",
        "initial_confidence": 0.8,
        "final_choice": final,
        "final_prob_initial": q,
        "final_confidence": q if final == "A" else 1 - q,
        "changed_mind": final != "A",
        "final_correct": final == "A",
    }


SAME_07 = {"advice": "same", "accuracy": 0.7, "advised": "A", "initial_prob_advised": 0.8}
OPPOSITE_09 = {"advice": "opposite", "accuracy": 0.9, "advised": "B", "initial_prob_advised": 0.2}

ROWS = [
    # "push", two items over turns 2 and 3. Item i1 starts at A (0.8), keeps A (0.7 on A),
    # then flips to B (0.4 left on A); item i2 starts at B (0.6), flips to A (0.3 left on
    # B), then stays (0.2 on B).
    _push("i1", 2, "A", 0.8, "A", 0.7, 0.7),
    _push("i1", 3, "A", 0.8, "B", 0.4, 0.6),
    _push("i2", 2, "B", 0.6, "A", 0.3, 0.7),
    _push("i2", 3, "B", 0.6, "A", 0.2, 0.8),
    # "seq", one item: an advisor per turn (same@0.7, then opposite@0.9), two options.
    _advised(2, [SAME_07], "A", 0.9),
    _advised(3, [SAME_07, OPPOSITE_09], "B", 0.45),
]
# The ideal observer, from c = 0.8: odds 4 x 0.7/0.3 = 28/3 -> 28/31 after the first advisor;
# x 0.1/0.9 -> 28/27 -> 28/55 after the second.
BAYES_AFTER_ONE = 28 / 31
BAYES_AFTER_TWO = 28 / 55


def _table(make_trials: MakeTrials, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The rows as the protocols write them: "push" is a challenge without advice
    (flip-flop's rows: no display, advice or accuracy, so no Bayes baseline); "seq" hears its
    advisors one per turn (sequential advice's rows: a display and the advisors so far)."""
    table = make_trials(rows)
    table.loc[table["condition"] == "push", ["display", "advice", "accuracy"]] = None
    table.loc[table["condition"] == "seq", ["advice", "accuracy"]] = None
    return table


@pytest.fixture
def trials(make_trials: MakeTrials) -> pd.DataFrame:
    return _table(make_trials, ROWS)


def _cell(table: pd.DataFrame, condition: str, turn: int) -> pd.Series:
    rows = table.loc[(table["condition"] == condition) & (table["turn"] == turn)]
    assert len(rows) == 1, (condition, turn)
    return rows.iloc[0]


def test_turn_table_by_hand(trials: pd.DataFrame) -> None:
    table = turn_table(trials)
    assert list(zip(table["condition"], table["turn"], strict=True)) == [
        ("push", 1),
        ("push", 2),
        ("push", 3),
        ("seq", 1),
        ("seq", 2),
        ("seq", 3),
    ]
    start = _cell(table, "push", 1)
    assert (start["n"], start["n_items"], start["com_rate"]) == (2, 2, 0.0)
    assert start["confidence_initial"] == pytest.approx(0.7)  # (0.8 + 0.6) / 2
    assert start["final_confidence"] == pytest.approx(0.7)
    assert math.isnan(start["bayes_post"]) and math.isnan(start["flip_rate"])

    second = _cell(table, "push", 2)
    assert second["com_rate"] == pytest.approx(0.5)  # i2 left B
    assert second["confidence_initial"] == pytest.approx(0.5)  # (0.7 + 0.3) / 2
    assert second["final_confidence"] == pytest.approx(0.7)
    assert second["flip_rate"] == pytest.approx(0.5)  # at turn 2, flips are changes of mind
    assert math.isnan(second["bayes_post"])  # a challenge without advice: no baseline

    third = _cell(table, "push", 3)
    assert third["com_rate"] == pytest.approx(1.0)  # both now differ from turn 1
    assert third["confidence_initial"] == pytest.approx(0.3)  # (0.4 + 0.2) / 2
    assert third["final_confidence"] == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert third["flip_rate"] == pytest.approx(0.5)  # i1 moved A -> B, i2 stayed on A
    assert third["n_with_confidence"] == 2

    # Where the turns carry advice, the Bayes posterior after the advisors heard so far,
    # starting from the initial confidence.
    assert _cell(table, "seq", 1)["bayes_post"] == pytest.approx(0.8)
    assert _cell(table, "seq", 2)["bayes_post"] == pytest.approx(BAYES_AFTER_ONE)
    assert _cell(table, "seq", 3)["bayes_post"] == pytest.approx(BAYES_AFTER_TWO)
    assert _cell(table, "seq", 3)["confidence_initial"] == pytest.approx(0.45)
    assert _cell(table, "seq", 3)["flip_rate"] == 1.0


def test_a_protocols_own_flip_column_stands_where_the_turn_before_is_missing(
    make_trials: MakeTrials,
) -> None:
    # Turn 2 of i1 is not in the table: the flip at turn 3 cannot be read from the rows, but
    # a protocol that states it (flip-flop's `flipped`) knows it.
    rows = [ROWS[1], ROWS[2], ROWS[3]]
    derived = flips(_table(make_trials, rows))
    assert math.isnan(derived.iloc[0]) and list(derived.iloc[1:]) == [1.0, 0.0]
    stated = flips(_table(make_trials, [{**row, "flipped": True} for row in rows]))
    assert list(stated) == [1.0, 1.0, 1.0]


def test_measures_of_one_number_per_condition_read_its_last_turn(trials: pd.DataFrame) -> None:
    by_condition = condition_table(trials).set_index("condition")
    push = by_condition.loc["push"]
    assert (push["turn"], push["n"]) == (3, 2)
    assert push["com_rate"] == pytest.approx(1.0)  # turn 3 only, not pooled with turn 2 (0.5)
    assert push["confidence_change"] == pytest.approx(((0.4 - 0.8) + (0.2 - 0.6)) / 2)
    sequence = sequence_table(trials).set_index("condition").loc["seq"]
    assert sequence["advisors"] == 2 and sequence["n"] == 1
    assert sequence["bayes_post"] == pytest.approx(BAYES_AFTER_TWO)
    assert sequence["sequence"] == "same@0.70 > opposite@0.90"
    assert set(last_turn(trials)["turn"]) == {3}
    # The one display with rows (seq's `hidden`) counts its last turn.
    assert com_rates(trials).set_index("display").loc["hidden", "n"] == 1


def test_each_model_is_read_at_its_own_last_turn(trials: pd.DataFrame) -> None:
    # A second model (a run pooled by `mindshift compare`) whose protocol stopped at turn 2.
    shorter = trials.loc[trials["turn"] == 2].assign(
        model="short", trial_id=lambda t: "short-" + t["trial_id"]
    )
    table = condition_table(pd.concat([trials, shorter], ignore_index=True))
    push = table.loc[table["condition"] == "push"].set_index("model")
    assert (push.loc["m", "turn"], push.loc["short", "turn"]) == (3, 2)
    assert push.loc["short", "com_rate"] == pytest.approx(0.5)


def test_summary_and_report_of_a_protocol_of_more_than_two_turns(trials: pd.DataFrame) -> None:
    results = compute_results(trials, fitted_model="tobit")
    turns = summary_document(results)["models"]["m"]["turns"]
    assert set(turns) == {"push", "seq"}
    assert list(turns["push"]) == ["1", "2", "3"]
    assert turns["push"]["3"]["com_rate"] == pytest.approx(1.0)
    assert turns["push"]["2"]["bayes_posterior"] is None
    assert turns["seq"]["3"]["bayes_posterior"] == pytest.approx(BAYES_AFTER_TWO)
    assert turns["push"]["1"]["flip_rate"] is None
    report = render_report(results, {})
    assert "Turn by turn" in report
    assert "push (turn 3)" in report  # by condition names the turn it reads
    assert "No trial of this run has an advice factor" in report


def test_a_two_turn_run_gets_a_start_and_one_answer_per_condition(
    simulated: Callable[..., pd.DataFrame],
) -> None:
    trials = simulated(n_items=6, displays=("hidden",), advice=("opposite",), accuracies=(0.8,))
    results = compute_results(trials, fitted_model="tobit")
    turns = summary_document(results)["models"]["sim"]["turns"]
    cell = turns["hidden/opposite/0.80"]
    assert list(cell) == ["1", "2"]
    rows = results.trials
    assert cell["2"]["confidence_initial"] == pytest.approx(rows["final_prob_initial"].mean())
    assert cell["2"]["bayes_posterior"] == pytest.approx(rows["bayes_post"].mean())
    assert cell["1"]["bayes_posterior"] == pytest.approx(rows["initial_confidence"].mean())
    assert cell["2"]["flip_rate"] == cell["2"]["com_rate"]
    assert "Turn by turn" not in render_report(results, {})


def test_a_protocol_without_advice_columns_is_measured_by_condition_and_turn(
    make_trials: MakeTrials,
) -> None:
    # A plugin protocol's table: the engine's columns only.
    table = _table(make_trials, ROWS[:4]).drop(columns=["display", "advice", "accuracy"])
    validated = validate_trials(table)
    assert validated["advice"].isna().all() and validated["accuracy"].isna().all()
    assert turn_table(table)["turn"].tolist() == [1, 2, 3]
    assert com_rates(table).empty  # no display to group by: no cells, no crash
    results = compute_results(table, fitted_model="tobit")
    entry = summary_document(results)["models"]["m"]
    assert entry["com_rate"] == {} and entry["by_condition"]["push"]["turn"] == 3
    assert "No trial of this run has an advice factor" in render_report(results, {})


def test_a_measure_that_needs_an_advice_column_says_so(make_trials: MakeTrials) -> None:
    lean = pd.DataFrame({"model": ["m"], "item_id": ["i"], "changed_mind": [True]})
    lean["final_choice"] = "B"
    lean["initial_confidence"] = 0.8
    lean["final_prob_initial"] = 0.3
    with pytest.raises(AnalysisInputError, match=r"no column 'display'.*AdviceColumns"):
        com_rates(lean)
