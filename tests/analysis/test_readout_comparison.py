"""One model under several readouts (issue 12, Deliver 4): the comparison against a case
computed by hand, and a run of the simulated agent under logprobs, sampling (N = 20) and
verbal readouts analysed end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindshift.analysis import analyse_run
from mindshift.analysis.measures.readouts import COLUMNS, readout_comparison
from mindshift.cli import main

AGENT = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"
VERBAL_AGENT = (
    "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3, verbal_rounding = 10 }"
)


def _entry(model: str, readout: str, choices: list[str], confidences: list[float]) -> pd.DataFrame:
    # Two items x one condition; item 2 appears on two turns (its initial answer counted once
    # for calibration, twice for agreement).
    return pd.DataFrame(
        {
            "model": model,
            "readout": readout,
            "item_id": ["a", "b", "b"],
            "condition": "hidden/opposite/70",
            "repeat": 0,
            "turn": [2, 2, 3],
            "initial_choice": choices,
            "initial_confidence": confidences,
            "initial_correct": [True, False, False],
        }
    )


def test_comparison_by_hand() -> None:
    trials = pd.concat(
        [
            _entry("lp", "logprobs", ["A", "B", "B"], [0.9, 0.6, 0.6]),
            _entry("vb", "verbal", ["A", "A", "A"], [1.0, 0.8, 0.8]),
            _entry("sp", "sampling", ["A", "B", "B"], [0.8, 0.5, 0.5]),
        ],
        ignore_index=True,
    )
    computed = readout_comparison(trials)
    assert list(computed.columns) == list(COLUMNS)
    table = computed.set_index("model")
    assert set(table["reference"]) == {"lp"}  # the logprobs entry, whatever its id's order
    assert set(table["group"]) == {"run"}  # no spec column: the run is one model
    # Calibration over the two items: verbal says 1.0 (right) and 0.8 (wrong).
    assert table.loc["vb", "n_initial"] == 2
    assert table.loc["vb", "brier"] == pytest.approx((0.0**2 + 0.8**2) / 2)
    assert table.loc["vb", "auroc"] == 1.0
    assert table.loc["lp", "brier"] == pytest.approx((0.1**2 + 0.6**2) / 2)
    # ECE (10 bins): bin 9 holds 0.9 (right): gap 0.1; bin 6 holds 0.6 (wrong): gap 0.6.
    assert table.loc["lp", "ece"] == pytest.approx((0.1 + 0.6) / 2)
    # Agreement on three matched rows: verbal agrees on 1 of 3 choices; MAD of confidences
    # |1.0 - 0.9|, |0.8 - 0.6| twice; correlation of (1, .8, .8) with (.9, .6, .6) is 1.
    assert table.loc["vb", "n_matched"] == 3
    assert table.loc["vb", "same_initial_choice"] == pytest.approx(1 / 3)
    assert table.loc["vb", "confidence_mad"] == pytest.approx((0.1 + 0.2 + 0.2) / 3)
    assert table.loc["vb", "confidence_corr"] == pytest.approx(1.0)
    assert table.loc["sp", "same_initial_choice"] == 1.0
    assert table["same_initial_choice"].isna().to_dict() == {"lp": True, "vb": False, "sp": False}


def test_one_readout_or_separate_models_are_not_compared() -> None:
    one = _entry("lp", "logprobs", ["A", "B", "B"], [0.9, 0.6, 0.6])
    assert readout_comparison(one).empty
    # With a spec column, entries of different models are never compared.
    two = pd.concat(
        [
            one.assign(spec="openai:x"),
            _entry("vb", "verbal", ["A", "A", "A"], [1.0, 0.8, 0.8]).assign(spec="anthropic:y"),
        ]
    )
    assert readout_comparison(two).empty


def test_three_readouts_of_the_simulated_agent(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    text = (
        '[experiment]\nname = "three"\nparadigm = "change-of-mind"\nseed = 0\n\n'
        "[paradigm]\nitems = 20\n\n"
        f'[[models]]\nid = "sim-logprobs"\nspec = "sim:bayes"\nparams = {AGENT}\n\n'
        f'[[models]]\nid = "sim-sampling"\nspec = "sim:bayes"\nparams = {AGENT}\n'
        'readout = "sampling"\nsamples = 20\n\n'
        f'[[models]]\nid = "sim-verbal"\nspec = "sim:bayes"\nparams = {VERBAL_AGENT}\n'
        'readout = "verbal"\n'
    )
    run_dir = tmp_path / "three"
    assert main(["run", str(write_config(text, "three.toml")), "--out", str(run_dir)]) == 0
    summary = analyse_run(run_dir, fitted_model="tobit")
    models = summary["models"]
    assert {model: models[model]["readout"] for model in models} == {
        "sim-logprobs": "logprobs",
        "sim-sampling": "sampling",
        "sim-verbal": "verbal",
    }
    assert [models[m]["fit"]["estimator"] for m in sorted(models)] == [
        "tobit",
        "binomial-logit-normal",
        "interval-tobit",
    ]
    table = pd.read_csv(run_dir / "analysis" / "tables" / "readouts.csv")
    assert sorted(table["model"]) == sorted(models)
    assert set(table["reference"]) == {"sim-logprobs"}
    for model in ("sim-sampling", "sim-verbal"):
        entry = models[model]["readouts"]
        assert entry["reference"] == "sim-logprobs"
        # Every later-turn trial of one entry has its twin in the reference's.
        assert entry["agreement"]["n_matched"] == models[model]["n_trials"] == 20 * 36
        # The same agent, read three ways: the choices are its own samples, so they agree
        # often but not always; the confidences follow the same belief.
        assert 0.5 < entry["agreement"]["same_initial_choice"] <= 1.0
        assert entry["agreement"]["confidence_mad"] < 0.3
        for cells in entry["minus_reference"]["oucs"].values():
            assert all(abs(value) < 0.1 for value in cells.values())
        fit = entry["minus_reference"]["fit"]
        assert set(fit) == {"choice_support", "w_same", "w_opposite"}
        # The readout's own estimator keeps the weights close to the logprobs entry's.
        assert abs(fit["w_opposite"]) < 0.75
        calibration = entry["calibration"]
        assert 0.0 <= calibration["ece"] <= 1.0 and 0.0 <= calibration["brier"] <= 1.0
    assert "agreement" not in models["sim-logprobs"]["readouts"]
