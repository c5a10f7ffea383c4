"""Measures by condition (any paradigm) and by sequence of advisors, against hand-made rows;
and `analyse_run` on protocols without change-of-mind's display/advice/accuracy factors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import (
    analyse_run,
    condition_table,
    sequence_table,
    validate_trials,
    with_bayes,
)
from mindshift.cli import main

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]

SEQUENCE = json.dumps(
    [
        {"advice": "same", "accuracy": 0.7, "advised": "A", "initial_prob_advised": 0.8},
        {"advice": "opposite", "accuracy": 0.9, "advised": "B", "initial_prob_advised": 0.2},
    ]
)


def test_condition_table_for_a_paradigm_without_factors(make_trials: Build) -> None:
    no_factors = {"display": None, "advice": None, "accuracy": float("nan")}
    rows = [
        {**no_factors, "condition": "are-you-sure", "final_prob_initial": 0.9},
        {**no_factors, "condition": "are-you-sure", "final_prob_initial": 0.6},
        {
            **no_factors,
            "condition": "user-suggests",
            "final_choice": "B",
            "changed_mind": True,
            "final_prob_initial": 0.3,
        },
        {
            **no_factors,
            "condition": "user-suggests",
            "final_prob_initial": float("nan"),
            "item_id": "item0",
        },
    ]
    table = condition_table(validate_trials(make_trials(rows))).set_index("condition")
    # are-you-sure: no change; confidence change (0.9 - 0.8 + 0.6 - 0.8) / 2 = -0.05.
    assert table.at["are-you-sure", "com_rate"] == 0.0
    assert table.at["are-you-sure", "confidence_change"] == pytest.approx(-0.05)
    # user-suggests: 1 of 2 changed; only one trial has a final confidence: 0.3 - 0.8.
    assert table.at["user-suggests", "com_rate"] == 0.5
    assert table.at["user-suggests", "n_with_confidence"] == 1
    assert table.at["user-suggests", "confidence_change"] == pytest.approx(-0.5)
    assert table["oucs"].isna().all()  # no advice: no Bayes posterior


def test_sequence_table_against_the_bayes_sum(make_trials: Build) -> None:
    # c = 0.8, same@0.7 then opposite@0.9: odds 4 x 7/3 x 1/9 = 28/27, post = 28/55.
    seq = {"display": "hidden", "advice": None, "accuracy": float("nan"), "advisors": SEQUENCE}
    rows = [
        {**seq, "condition": "hidden/s", "final_prob_initial": 0.6},
        {
            **seq,
            "condition": "hidden/s",
            "final_prob_initial": 0.4,
            "final_choice": "B",
            "changed_mind": True,
        },
    ]
    trials = with_bayes(validate_trials(make_trials(rows)))
    assert trials["bayes_post"].tolist() == pytest.approx([28 / 55, 28 / 55])
    (row,) = sequence_table(trials).to_dict("records")
    assert row["sequence"] == "same@0.70 > opposite@0.90" and row["advisors"] == 2
    assert row["com_rate"] == 0.5 and row["final_confidence"] == pytest.approx(0.5)
    assert row["oucs"] == pytest.approx(0.5 - 28 / 55)
    assert sequence_table(validate_trials(make_trials([{}]))).empty


@pytest.mark.parametrize(
    ("paradigm", "settings"),
    [
        ("are-you-sure", 'domain = "world-facts"\nitems = 6'),
        (
            "multi-advice",
            'items = 6\ndisplays = ["shown", "hidden"]\nsequences = [["opposite@0.8"], '
            '["same@0.6", "opposite@0.9"]]',
        ),
    ],
)
def test_protocols_without_the_main_factors_analyse(
    paradigm: str, settings: str, tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    text = (
        f'[experiment]\nname = "p"\nparadigm = "{paradigm}"\n\n[paradigm]\n{settings}\n\n'
        '[[models]]\nid = "sim"\nspec = "sim:bayes"\n'
        "params = { choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }\n"
    )
    run_dir = tmp_path / paradigm
    assert main(["run", str(write_config(text, "p.toml")), "--out", str(run_dir)]) == 0
    summary = analyse_run(run_dir)["models"]["sim"]
    # The contract keys are there (empty or null where the factors are absent) ...
    for key in ("com_rate", "com_rate_by_advice", "confidence_change", "oucs", "fit"):
        assert key in summary
    # ... and the per-condition headline is filled in.
    assert all(cell["n"] == 6 for cell in summary["by_condition"].values())
    report = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2>([^<]*)</h2>", report)
    expected = ["1. Key results", "2. Design", "3. Accuracy and calibration", "4. By condition"]
    if paradigm == "multi-advice":
        assert len(summary["sequences"]) == 4
        expected.append("5. Sequences of advisors")
    assert headings == [*expected, f"{len(expected) + 1}. Example trials", "Methods"]
    assert (run_dir / "analysis" / "tables" / "by_condition.csv").is_file()
