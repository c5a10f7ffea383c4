"""summary.json: the contract keys, present cells only, and valid JSON (NaN -> null)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import json_ready, summarise

Simulate = Callable[..., pd.DataFrame]

CONTRACT_KEYS = {
    "n_trials",
    "accuracy_initial",
    "com_rate",
    "com_rate_by_advice",
    "confidence_change",
    "oucs",
    "overweighting",
    "overweighting_hidden",
    "overweighting_logodds",
    "n_with_confidence",
    "fit",
}


@pytest.fixture(scope="module")
def summary(simulated: Simulate) -> dict[str, Any]:
    simulate = simulated
    trials = pd.concat(
        [
            simulate(model="sim", n_items=30, seed=4),
            # A choice-only model: no confidences at all.
            simulate(model="choices", n_items=10, seed=5, displays=("hidden",)).assign(
                initial_confidence=float("nan"), final_prob_initial=float("nan")
            ),
        ],
        ignore_index=True,
    )
    return summarise(trials)


def test_contract_keys_for_every_model(summary: dict[str, Any]) -> None:
    assert set(summary["models"]) == {"sim", "choices"}
    for entry in summary["models"].values():
        assert set(entry) >= CONTRACT_KEYS
        for version in ("overweighting", "overweighting_hidden", "overweighting_logodds"):
            assert set(entry[version]) == {"same", "opposite"}
        assert {"choice_support", "w_same", "w_opposite"} <= set(entry["fit"])


def test_values_and_present_cells_only(summary: dict[str, Any]) -> None:
    sim = summary["models"]["sim"]
    assert sim["n_trials"] == 30 * 2 * 3 * 6
    assert set(sim["com_rate"]) == {"shown", "hidden"}
    assert list(sim["com_rate_by_advice"]["shown"]) == ["same", "opposite", "neutral"]
    assert 0.0 <= sim["accuracy_initial"] <= 1.0
    assert sim["fit"]["w_opposite"] > 1.5
    assert set(sim["com_rate_by_accuracy"]["hidden"]["opposite"]) == {
        "0.50",
        "0.60",
        "0.70",
        "0.80",
        "0.90",
        "1.00",
    }
    choices = summary["models"]["choices"]
    assert set(choices["com_rate"]) == {"hidden"}
    assert choices["oucs"] == {} and choices["confidence_change"] == {}


def test_nan_becomes_null_and_json_is_strict(summary: dict[str, Any]) -> None:
    choices = summary["models"]["choices"]
    assert choices["overweighting"] == {"same": None, "opposite": None}
    assert choices["fit"]["w_same"] is None
    text = json.dumps(summary, allow_nan=False)  # raises on any NaN left
    assert json.loads(text) == summary


def test_json_ready() -> None:
    import numpy as np

    value = {"a": float("nan"), "b": [np.float64(1.5), math.inf], 3: np.int64(2), "c": True}
    assert json_ready(value) == {"a": None, "b": [1.5, None], "3": 2, "c": True}


def test_accuracy_initial_counts_stage1_calls(simulated: Simulate) -> None:
    trials = simulated(n_items=4, displays=("hidden",), advice=("neutral",), accuracies=(0.7,))
    stage1 = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c", "d", "e"],
            "model": ["sim"] * 5,
            "item_id": ["x"] * 5,
            "correct": ["A", "A", "B", "B", "A"],
            "choice": ["A", "B", "B", "B", "B"],
        }
    )
    # 3 of 5 stage-1 choices are correct.
    result = summarise(trials, stage1)
    assert result["models"]["sim"]["accuracy_initial"] == pytest.approx(0.6)
    assert result["models"]["sim"]["accuracy_initial_source"] == "calls.jsonl"
    # Without stage-1 calls (for this model): the stage-1 answers recorded in the trials.
    expected = trials.drop_duplicates("initial_trial_id")["initial_correct"].mean()
    for fallback in (summarise(trials), summarise(trials, stage1.assign(model="other"))):
        entry = fallback["models"]["sim"]
        assert entry["accuracy_initial"] == pytest.approx(expected)
        assert entry["accuracy_initial_source"] == "trials.parquet"


def test_the_bayes_clip_is_stated(summary: dict[str, Any], simulated: Simulate) -> None:
    assert summary["analysis"]["bayes_clip"] == 0.01
    assert summary["analysis"]["clip"] == [0.01, 0.99]
    exact = summarise(simulated(model="sim", n_items=10, seed=4), bayes_clip=0.0)
    assert exact["analysis"]["bayes_clip"] == 0.0
    # a = 1.0 cells under both bounds: the compared one is 0.01 when the analysis is exact.
    cell = exact["models"]["sim"]["clip_sensitivity"]["hidden"]["opposite"]["1"]
    assert set(cell) == {"0", "0.01"}
    assert cell["0"]["oucs"] != cell["0.01"]["oucs"]
