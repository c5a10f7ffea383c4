"""Calibration: temperature scaling, ECE, Brier, AUROC against hand-computed cases, and the
recovery of the simulated agent's readout distortion tau."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis import (
    apply_calibration,
    auroc,
    brier_score,
    calibration_metrics,
    chosen_temperatures,
    compute_results,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    scale_binary,
    scale_probs,
    stage1_matrix,
    temperatures,
)
from mindshift.analysis.data.temperature import SOURCE_MAIN, SOURCE_SPLIT
from mindshift.paradigms.agent.sim_bayes import SimBayesBackend, SimBayesParams


def _stage1(rows: list[tuple[tuple[float, ...], int, int]], split: str = "main") -> pd.DataFrame:
    """A stage-1 table from (probs, correct_index, choice_index) rows of one model."""
    return pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(len(rows))],
            "model": "m",
            "item_id": [f"i{i}" for i in range(len(rows))],
            "correct": ["AB"[c] for _, c, _ in rows],
            "choice": ["AB"[k] for _, _, k in rows],
            "split": split,
            "probs": [p for p, _, _ in rows],
            "correct_index": [c for _, c, _ in rows],
            "choice_index": [k for _, _, k in rows],
        }
    )


def test_temperature_mle_hand_case() -> None:
    # Every item reads (0.8, 0.2); option 0 is correct in 3 of 4: the scaled probability of
    # option 0 must be 0.75, so logit(0.8) / T = logit(0.75), T = ln 4 / ln 3 = 1.26186.
    rows = [((0.8, 0.2), 0, 0)] * 3 + [((0.8, 0.2), 1, 0)]
    fit = fit_temperature(stage1_matrix(_stage1(rows * 10)))
    assert fit.temperature == pytest.approx(math.log(4) / math.log(3), rel=1e-5)
    assert fit.ci_low < fit.temperature < fit.ci_high
    assert fit.nll_calibrated < fit.nll_raw
    # NLL at T = 1: -(3 ln 0.8 + ln 0.2) / 4
    assert fit.nll_raw == pytest.approx(-(3 * math.log(0.8) + math.log(0.2)) / 4)


def test_scaling_hand_cases() -> None:
    # logit(0.8) = ln 4; halved: ln 2, i.e. odds 2, probability 2/3.
    assert scale_binary(0.8, 2.0) == pytest.approx(2 / 3)
    assert scale_binary(0.2, 2.0) == pytest.approx(1 / 3)
    assert np.isnan(scale_binary(np.nan, 2.0))
    # Softmax of log p / T: (0.5, 0.25, 0.25) at T = 0.5 -> squares renormalised (4, 1, 1)/6.
    assert scale_probs([0.5, 0.25, 0.25], 0.5) == pytest.approx([4 / 6, 1 / 6, 1 / 6])
    # Two options: softmax agrees with the logit form.
    assert scale_probs([0.8, 0.2], 2.0)[0] == pytest.approx(2 / 3)


def test_ece_brier_auroc_hand_case() -> None:
    confidence = np.array([0.95, 0.92, 0.65, 0.61, 0.62, 0.15])
    correct = np.array([1, 0, 1, 1, 0, 0])
    # Bins of width 0.1: [0.9, 1.0]: conf 0.935, acc 0.5, n 2 -> gap 0.435
    #                    [0.6, 0.7): conf 0.626667, acc 2/3, n 3 -> gap 0.04
    #                    [0.1, 0.2): conf 0.15, acc 0, n 1 -> gap 0.15
    expected = (2 * 0.435 + 3 * abs(2 / 3 - 1.88 / 3) + 1 * 0.15) / 6
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    bins = reliability_bins(confidence, correct)
    assert list(bins["n"]) == [1, 3, 2] and list(bins["bin"]) == [1, 6, 9]
    assert brier_score(confidence, correct) == pytest.approx(np.mean((confidence - correct) ** 2))
    # Pairs (correct, wrong): (0.95, .92) (0.95, .62) (0.95, .15) (0.65, .92) (0.65, .62)
    # (0.65, .15) (0.61, .92) (0.61, .62) (0.61, .15): 6 of 9 ranked right.
    assert auroc(confidence, correct) == pytest.approx(6 / 9)
    assert auroc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)  # a tie counts one half
    assert math.isnan(auroc([0.9, 0.8], [1, 1]))


def test_split_is_preferred_and_main_items_are_the_documented_fallback() -> None:
    split = _stage1([((0.8, 0.2), 0, 0)] * 30 + [((0.8, 0.2), 1, 0)] * 10, "calibration")
    main = _stage1([((0.7, 0.3), 0, 0)] * 20 + [((0.7, 0.3), 1, 1)] * 10, "main")
    table = temperatures(pd.concat([split, main], ignore_index=True))
    assert table.loc[0, "source"] == SOURCE_SPLIT and table.loc[0, "n"] == 40
    assert table.loc[0, "temperature"] == pytest.approx(math.log(4) / math.log(3), rel=1e-5)
    fallback = temperatures(main)
    assert fallback.loc[0, "source"] == SOURCE_MAIN and bool(fallback.loc[0, "usable"])
    # auto: the split only; calibrated: the fallback too; raw: nothing.
    assert chosen_temperatures(table, "auto") == {"m": pytest.approx(1.26186, rel=1e-4)}
    assert chosen_temperatures(fallback, "auto") == {}
    assert set(chosen_temperatures(fallback, "calibrated")) == {"m"}
    assert chosen_temperatures(table, "raw") == {}


def test_too_few_or_separable_answers_give_no_usable_temperature() -> None:
    few = temperatures(_stage1([((0.8, 0.2), 0, 0)] * 5 + [((0.8, 0.2), 1, 0)]))
    assert not bool(few.loc[0, "usable"])
    # Every correct option has the higher probability: T runs to its lower bound.
    always = temperatures(_stage1([((0.8, 0.2), 0, 0)] * 40))
    assert not bool(always.loc[0, "usable"])


def test_metrics_out_of_sample_on_main_items() -> None:
    split = _stage1([((0.8, 0.2), 0, 0)] * 30 + [((0.8, 0.2), 1, 0)] * 10, "calibration")
    main = _stage1([((0.8, 0.2), 0, 0)] * 3 + [((0.8, 0.2), 1, 0)], "main")
    stage1 = pd.concat([split, main], ignore_index=True)
    metrics = calibration_metrics(stage1, temperatures(stage1)).set_index(["data", "scale"])
    calibrated = metrics.loc[("main items", "calibrated")]
    assert calibrated["mean_confidence"] == pytest.approx(0.75, rel=1e-4)
    assert calibrated["ece"] == pytest.approx(0.0, abs=1e-4)
    assert metrics.loc[("main items", "raw"), "ece"] == pytest.approx(0.05)


def test_apply_calibration_scales_both_turns_of_two_option_trials(make_trials) -> None:  # type: ignore[no-untyped-def]
    trials = make_trials(
        [
            {"initial_confidence": 0.8, "final_prob_initial": 0.2},
            {"initial_confidence": 0.8, "final_prob_initial": 0.2, "n_options": 4},
        ]
    )
    out = apply_calibration(trials, {"m": 2.0})
    assert out["initial_confidence"].tolist() == pytest.approx([2 / 3, 0.8])
    assert out["final_prob_initial"].tolist() == pytest.approx([1 / 3, 0.2])
    assert out["initial_confidence_raw"].tolist() == pytest.approx([0.8, 0.8])


def _agent_stage1(params: SimBayesParams, n: int, seed: int) -> pd.DataFrame:
    """Stage-1 answers of the simulated agent as the loader would read them (counterbalanced)."""
    agent = SimBayesBackend(params)
    block = agent.simulate(
        n, displays=[], advice=[], accuracies=[], rng=np.random.default_rng(seed)
    )
    correct_index = np.arange(n) % 2  # the correct option alternates between A and B
    p_correct = np.where(
        block.initial_correct, block.initial_confidence, 1 - block.initial_confidence
    )
    probs = [
        (float(p), float(1 - p)) if c == 0 else (float(1 - p), float(p))
        for p, c in zip(p_correct, correct_index, strict=True)
    ]
    choice_index = np.where(block.initial_correct, correct_index, 1 - correct_index)
    return _stage1(
        list(zip(probs, correct_index.tolist(), choice_index.tolist(), strict=True)), "calibration"
    )


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.5])
def test_tau_recovered_within_ten_percent(tau: float) -> None:
    # A population with sigma^2 = 2 mu: the agent's true confidences are calibrated, so the
    # fitted temperature equals its readout distortion tau.
    params = SimBayesParams(mu=1.0, sigma=math.sqrt(2.0), tau=tau)
    fit = temperatures(_agent_stage1(params, 4000, seed=7))
    assert fit.loc[0, "temperature"] == pytest.approx(tau, rel=0.10)
    assert fit.loc[0, "ci_low"] < tau < fit.loc[0, "ci_high"]


def test_fitted_temperature_follows_the_population_formula() -> None:
    # In general T = tau * sigma^2 / (2 mu): a population with mu = sigma = 1 is underconfident.
    params = SimBayesParams(mu=1.0, sigma=1.0, tau=2.0)
    fit = temperatures(_agent_stage1(params, 8000, seed=3))
    assert fit.loc[0, "temperature"] == pytest.approx(2.0 * 1.0 / 2.0, rel=0.10)


def test_calibrated_prior_is_the_default_only_with_a_split(simulated) -> None:  # type: ignore[no-untyped-def]
    trials = simulated(n_items=30)
    results = compute_results(trials, fitted_model="tobit")
    assert results.chosen == {}  # no split: raw
    calibrated = compute_results(trials, prior="calibrated", fitted_model="tobit")
    assert set(calibrated.chosen) == {"sim"}
    assert not np.allclose(
        calibrated.trials["initial_confidence"], calibrated.trials["initial_confidence_raw"]
    )
