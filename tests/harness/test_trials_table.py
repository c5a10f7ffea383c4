"""trials.parquet carries what the K-option Bayes update, the controls and multi-advice need."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mindshift.cli import main
from tests.conftest import SIM_PARAMS


def _run(tmp_path: Path, write: Callable[[str, str], Path], paradigm: str, settings: str) -> Path:
    text = (
        f'[experiment]\nname = "tt"\nparadigm = "{paradigm}"\n\n[paradigm]\n{settings}\n\n'
        f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {SIM_PARAMS}\n'
    )
    run_dir = tmp_path / paradigm
    assert main(["run", str(write(text, f"{paradigm}.toml")), "--out", str(run_dir)]) == 0
    return run_dir


def _stage1_probs(run_dir: Path) -> dict[str, dict[str, float]]:
    records = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    return {r["trial_id"]: r["readout"]["probs"] for r in records if r["stage"] == 1}


def test_k_option_and_control_columns(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    run_dir = _run(
        tmp_path,
        write_config,
        "change-of-mind",
        'domain = "world-facts"\nitems = 8\naccuracies = [0.8]\n'
        'displays = ["hidden", "answer-wrong"]',
    )
    trials = pd.read_parquet(run_dir / "trials.parquet")
    probs = _stage1_probs(run_dir)
    assert set(trials["n_options"]) == {4}
    for row in trials.itertuples():
        initial = probs[row.initial_trial_id]
        if row.advice == "neutral":
            assert pd.isna(row.advised) and math.isnan(row.initial_prob_advised)
        else:
            assert row.initial_prob_advised == initial[row.advised]
        if row.display == "hidden":
            assert pd.isna(row.displayed_choice)
        else:
            assert row.displayed_choice != row.correct
            assert row.initial_prob_displayed == initial[row.displayed_choice]
            assert 0.0 <= row.final_prob_displayed <= 1.0
        assert pd.isna(row.advisors)
    # The stage-1 answer itself is recorded as it was, never the displayed one.
    assert (trials["initial_confidence"] > 0).all()


def test_a_sequence_of_advisors_is_recorded_as_json(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    run_dir = _run(
        tmp_path,
        write_config,
        "multi-advice",
        'domain = "arithmetic"\nitems = 3\nsequences = [["same@0.7", "opposite@0.9"]]',
    )
    trials = pd.read_parquet(run_dir / "trials.parquet")
    probs = _stage1_probs(run_dir)
    assert len(trials) == 3
    for row in trials.itertuples():
        advisors = json.loads(row.advisors)
        assert [a["advice"] for a in advisors] == ["same", "opposite"]
        for advisor in advisors:
            assert (
                advisor["initial_prob_advised"] == probs[row.initial_trial_id][advisor["advised"]]
            )
        assert pd.isna(row.advice) and row.display == "hidden"
