"""Transfer: fit the update model on one domain, predict another (hand cases and sim runs)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import integrate, special, stats

from mindshift.analysis import UpdateFit, predicted_confidence, transfer_runs, validate_trials
from mindshift.cli import main
from tests.conftest import sim_config_text

Build = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]


def _fit(noise: float) -> UpdateFit:
    return UpdateFit(
        choice_support=0.5,
        w_same=1.0,
        w_opposite=2.0,
        intercept=0.0,
        prior_weight=1.0,
        noise=noise,
        n=100,
        n_censored_low=0,
        n_censored_high=0,
        loglik=0.0,
        converged=True,
    )


def test_predicted_confidence_is_the_mean_of_the_censored_model(make_trials: Build) -> None:
    trials = validate_trials(
        make_trials([{"display": "shown", "advice": "opposite", "accuracy": 0.7}])
    )
    # eta = logit(0.8) + 0.5 - 2 logit(0.7).
    eta = math.log(4) + 0.5 - 2 * math.log(7 / 3)
    assert float(predicted_confidence(_fit(0.0), trials).iloc[0]) == pytest.approx(
        special.expit(eta)
    )
    low, high = math.log(1 / 99), math.log(99)

    def integrand(z: float) -> float:
        return float(special.expit(min(max(eta + 1.5 * z, low), high)) * stats.norm.pdf(z))

    expected = integrate.quad(integrand, -12, 12, limit=200)[0]
    assert float(predicted_confidence(_fit(1.5), trials).iloc[0]) == pytest.approx(expected, 1e-6)


def _run(
    tmp_path: Path, write: Callable[[str, str], Path], name: str, extra: str, params: str
) -> Path:
    config = write(sim_config_text(items=80, params=params, extra_paradigm=extra), f"{name}.toml")
    assert main(["run", str(config), "--out", str(tmp_path / name)]) == 0
    return tmp_path / name


def test_a_fit_on_latitude_predicts_arithmetic(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    biased = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"
    latitude = _run(tmp_path, write_config, "latitude", "", biased)
    arithmetic = _run(tmp_path, write_config, "arithmetic", 'domain = "arithmetic"', biased)
    other = _run(
        tmp_path,
        write_config,
        "bayesian",
        'domain = "arithmetic"',
        "{ choice_support = 0.0, w_same = 1.0, w_opposite = 1.0, noise = 0.3 }",
    )
    same_agent = transfer_runs(latitude, arithmetic, kind="tobit").iloc[0]
    assert same_agent["kind"] == "tobit" and same_agent["n_test"] == 80 * 36
    assert same_agent["train_w_opposite"] == pytest.approx(2.5, rel=0.1)
    # The same agent on a four-option domain: predicted as well as its own fit predicts it.
    assert same_agent["r2"] > 0.95 and same_agent["r2_cells"] > 0.99
    assert same_agent["score_per_trial"] == pytest.approx(
        same_agent["own_score_per_trial"], abs=0.05
    )
    # Another agent is predicted worse than by its own fit.
    different = transfer_runs(latitude, other, kind="tobit").iloc[0]
    assert different["score_per_trial"] < different["own_score_per_trial"] - 0.5
    assert different["rmse"] > same_agent["rmse"]
