"""Framing on the displayed answer (the answer-wrong control), against hand-made rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import compute_results, frame_on_displayed, validate_trials

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def _rows(make_trials: Build) -> pd.DataFrame:
    return validate_trials(
        make_trials(
            [
                # The model chose B (0.8) and was right; A was displayed as its own answer.
                {
                    "display": "answer-wrong",
                    "advice": "same",
                    "correct": "B",
                    "initial_choice": "B",
                    "initial_confidence": 0.8,
                    "initial_correct": True,
                    "displayed_choice": "A",
                    "initial_prob_displayed": 0.2,
                    "final_choice": "B",
                    "final_prob_initial": 0.9,
                    "final_prob_displayed": 0.1,
                    "changed_mind": False,
                },
                # Shown: the displayed answer is the stage-1 answer; nothing moves.
                {
                    "display": "shown",
                    "displayed_choice": "A",
                    "initial_prob_displayed": 0.8,
                    "final_prob_displayed": 0.8,
                },
                # Hidden: no displayed answer.
                {"display": "hidden"},
            ]
        )
    )


def test_answer_wrong_rows_are_framed_on_the_displayed_answer(make_trials: Build) -> None:
    framed = frame_on_displayed(_rows(make_trials))
    first = framed.iloc[0]
    assert first["initial_choice"] == "A" and not first["initial_correct"]
    assert first["initial_confidence"] == 0.2 and first["final_prob_initial"] == 0.1
    # The final answer B leaves the displayed A: a change of mind, relative to the display.
    assert first["changed_mind"] and first["reframed"]
    assert first["stage1_choice"] == "B" and first["stage1_confidence"] == 0.8
    for index in (1, 2):
        row = framed.iloc[index]
        assert not row["reframed"] and row["initial_choice"] == "A"
        assert row["initial_confidence"] == 0.8 and row["final_prob_initial"] == 0.8


def test_accuracy_and_bayes_use_the_right_frames(make_trials: Build) -> None:
    results = compute_results(_rows(make_trials), prior="raw")
    # Initial accuracy is of the stage-1 answers (all right), not of the displayed wrong one.
    assert results.accuracy.loc["m", "accuracy_initial"] == pytest.approx(1.0)
    # The Bayes prior of the answer-wrong trial is the displayed answer's 0.2:
    # same advice at 0.7 -> 0.2*0.7 / (0.2*0.7 + 0.8*0.3) = 0.14 / 0.38.
    post = results.trials.loc[results.trials["display"] == "answer-wrong", "bayes_post"]
    assert float(post.iloc[0]) == pytest.approx(0.14 / 0.38)


def test_framing_twice_changes_nothing(make_trials: Build) -> None:
    once = frame_on_displayed(_rows(make_trials))
    assert once.iloc[0]["stage1_correct"]  # the model's own answer B was right
    twice = frame_on_displayed(once)
    pd.testing.assert_frame_equal(twice, once)


def test_measures_frame_a_hand_made_table_themselves(make_trials: Build) -> None:
    from mindshift.analysis import com_rates, oucs

    rows = _rows(make_trials)
    # The answer-wrong trial's final answer B leaves the displayed A: a change of mind
    # relative to the display, whether the table was prepared first or not.
    table = com_rates(rows, ("display",)).set_index("display")
    assert table.loc["answer-wrong", "mean"] == 1.0
    # OUCS on the displayed answer: 0.1 - 0.14/0.38.
    cells = oucs(rows).set_index("display")
    assert cells.loc["answer-wrong", "mean"] == pytest.approx(0.1 - 0.14 / 0.38)
