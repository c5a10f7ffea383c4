"""The Bayesian beta regression (models A-D): likelihood, coding, fit, LOO, transfer, recovery.

Tests that need PyMC skip cleanly without the `bayes` extra; the coding tests and the
"extra missing" tests run everywhere. The recovery study (issue 4's "Must show") is slow.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from mindshift.analysis.beta.models import (
    VARIANTS,
    BayesExtraMissing,
    BetaModelSpec,
    SamplerSettings,
    code_trials,
    identifiable_terms,
    require_bayes,
)

Simulate = Callable[..., pd.DataFrame]
TRUE = {"choice_support": 0.8, "w_same": 1.0, "w_opposite": 2.5}


def _needs_pymc() -> None:
    pytest.importorskip("pymc")
    pytest.importorskip("arviz")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# --- coding (no PyMC needed) ------------------------------------------------------------


def test_variants_are_nested_as_the_paper_labels_them() -> None:
    terms = {name: set(spec.terms) for name, spec in VARIANTS.items()}
    assert terms["A"] == {"intercept", "prior_weight"}
    assert terms["B"] == terms["A"] | {"w_same", "w_opposite"}  # no display flag
    assert terms["C"] == terms["A"] | {"choice_support", "w_advice"}  # one advice weight
    assert terms["D"] == terms["A"] | {"choice_support", "w_same", "w_opposite"}
    assert terms["A"] < terms["B"] < terms["D"] and terms["A"] < terms["C"]
    # C's pooled weight is D's two weights constrained equal: C is nested in D.
    pooled = BetaModelSpec("x", "pooled", shown=False)
    assert pooled.terms == ("intercept", "prior_weight", "w_advice")


def test_design_codes_a_hand_made_table(make_trials: Callable[..., pd.DataFrame]) -> None:
    trials = make_trials(
        [
            {"display": "shown", "advice": "same", "accuracy": 0.8, "initial_confidence": 0.7},
            {"display": "hidden", "advice": "opposite", "accuracy": 1.0, "initial_confidence": 0.6},
            {"display": "other", "advice": "neutral", "accuracy": float("nan")},
            {"display": "shown", "advice": "opposite", "accuracy": 0.5, "final_prob_initial": 1.0},
            {"display": "shown", "advice": "same", "initial_confidence": float("nan")},
            {"display": "shown", "advice": "sarcastic"},
        ]
    )
    data = code_trials(trials)
    assert len(data) == 4  # unknown confidence and unknown advice type are left out
    design = data.design
    assert list(design["intercept"]) == [1.0] * 4
    assert design["prior_weight"].tolist() == pytest.approx(
        [_logit(0.7), _logit(0.6), _logit(0.8), _logit(0.8)]
    )
    assert design["choice_support"].tolist() == [1.0, 0.0, 0.0, 1.0]  # other is not shown
    # Accuracy 1.0 is clipped to 0.99 before the logit; opposite is coded -logit(a).
    assert design["w_same"].tolist() == pytest.approx([_logit(0.8), 0.0, 0.0, 0.0])
    assert design["w_opposite"].tolist() == pytest.approx([0.0, -_logit(0.99), 0.0, 0.0])
    assert design["w_advice"].tolist() == pytest.approx([_logit(0.8), -_logit(0.99), 0.0, 0.0])
    assert data.q.tolist() == [0.8, 0.8, 0.8, 1.0]  # unclipped here; the likelihood clips
    assert list(data.source_index) == [0, 1, 2, 3]


def test_a_term_the_data_cannot_inform_is_not_identifiable(
    make_trials: Callable[..., pd.DataFrame],
) -> None:
    rows = [
        {"display": "hidden", "advice": advice, "accuracy": a, "initial_confidence": c}
        for advice in ("same", "opposite", "neutral")
        for a in (0.6, 0.9)
        for c in (0.6, 0.8)
    ]
    design = code_trials(make_trials(rows), VARIANTS["D"].terms).design
    assert identifiable_terms(design) == ("intercept", "prior_weight", "w_same", "w_opposite")


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pymc" else real(name, *a)
    )
    # The message names the command that installs the extra into this very installation.
    from mindshift.analysis.beta.install import bayes_install_command

    with pytest.raises(BayesExtraMissing, match=re.escape(bayes_install_command())):
        require_bayes()
    from mindshift.analysis.beta.regression import fit_beta_model

    with pytest.raises(ImportError, match="pymc"):
        fit_beta_model(pd.DataFrame())


def test_analysis_imports_without_pymc() -> None:
    # A fresh interpreter in which pymc, arviz and numba cannot be imported.
    code = (
        "import sys\n"
        "for name in ('pymc', 'arviz', 'numba', 'pytensor'): sys.modules[name] = None\n"
        "import mindshift.analysis.beta.regression as br\n"
        "try:\n"
        "    br.fit_beta_model(None)\n"
        "except br.BayesExtraMissing as error:\n"
        "    print('missing:', error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "missing: the Bayesian beta regression needs pymc and arviz" in done.stdout


# --- the likelihood ---------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [0.5, 5.0, 80.0, 2000.0])
def test_log_betainc_matches_scipy_with_its_derivatives(kappa: float) -> None:
    _needs_pymc()
    from mindshift.analysis.beta.likelihood import _log_betainc

    rng = np.random.default_rng(0)
    eta = rng.uniform(-10.0, 10.0, 300)
    p, q = special.expit(eta) * kappa, special.expit(-eta) * kappa
    got = np.array([_log_betainc(0.01, pi, qi, True) for pi, qi in zip(p, q, strict=True)])
    h = 1e-6
    with np.errstate(divide="ignore", invalid="ignore"):  # scipy underflows to 0 far out
        ref = np.log(special.betainc(p, q, 0.01))
        ok = ref > -200.0  # where scipy's own value, and its differences, are accurate
        assert np.allclose(got[ok, 0], ref[ok], rtol=1e-10, atol=1e-10)
        for column, dp, dq in ((1, h, 0.0), (2, 0.0, h)):
            step_p, step_q = p * dp, q * dq
            upper = np.log(special.betainc(p + step_p, q + step_q, 0.01))
            lower = np.log(special.betainc(p - step_p, q - step_q, 0.01))
            numeric = (upper - lower) / (2.0 * (step_p + step_q))
            assert np.allclose(got[ok, column], numeric[ok], rtol=1e-4, atol=1e-6)


def test_likelihood_is_the_censored_beta_and_its_gradient_is_exact() -> None:
    _needs_pymc()
    from mindshift.analysis.beta.likelihood import (
        HIGH,
        LOW,
        OBSERVED,
        beta_response,
        loglik_and_grad,
        loglik_pointwise,
    )

    q = np.array([0.005, 0.01, 0.3, 0.5, 0.97, 0.99, 0.999])
    response = beta_response(q)
    assert response.censoring.tolist() == [LOW, LOW, OBSERVED, OBSERVED, OBSERVED, HIGH, HIGH]
    eta = np.array([-3.0, -2.0, -0.5, 0.2, 2.5, 4.0, 6.0])
    kappa = 30.0
    a, b = special.expit(eta) * kappa, special.expit(-eta) * kappa
    expected = np.where(
        response.censoring == LOW,
        stats.beta.logcdf(0.01, a, b),
        np.where(
            response.censoring == HIGH,
            stats.beta.logsf(0.99, a, b),
            stats.beta.logpdf(np.clip(q, 0.01, 0.99), a, b),
        ),
    )
    assert loglik_pointwise(eta, kappa, response) == pytest.approx(expected, rel=1e-10)
    total, d_eta, d_kappa = loglik_and_grad(eta, kappa, response)
    assert total == pytest.approx(expected.sum(), rel=1e-12)
    h = 1e-6
    for i in range(eta.size):
        shift = np.zeros_like(eta)
        shift[i] = h
        numeric = (
            loglik_pointwise(eta + shift, kappa, response).sum()
            - loglik_pointwise(eta - shift, kappa, response).sum()
        ) / (2 * h)
        assert d_eta[i] == pytest.approx(numeric, rel=1e-5, abs=1e-7)
    numeric_kappa = (
        loglik_pointwise(eta, kappa + h, response).sum()
        - loglik_pointwise(eta, kappa - h, response).sum()
    ) / (2 * h)
    assert d_kappa == pytest.approx(numeric_kappa, rel=1e-5)
    # Draws x trials at once, as LOO uses it.
    many = loglik_pointwise(np.vstack([eta, eta + 0.1]), np.array([kappa, 2 * kappa]), response)
    assert many.shape == (2, eta.size)
    assert many[0] == pytest.approx(expected, rel=1e-10)


# --- a small fit: the whole pipeline ------------------------------------------------------


def _beta_noise(trials: pd.DataFrame, kappa: float, seed: int) -> pd.DataFrame:
    """The trials with final_prob_initial redrawn from Beta(q kappa, (1 - q) kappa).

    Given a noiseless agent (q = expit of its exact update), this is the beta regression's
    own generative model: the recovery then tests the fit, not a mismatch of noise models.
    """
    q = trials["final_prob_initial"].to_numpy(np.float64)
    rng = np.random.default_rng(seed)
    return trials.assign(final_prob_initial=rng.beta(q * kappa, (1.0 - q) * kappa))


SMALL = SamplerSettings(draws=300, tune=200, chains=2, seed=1)


@pytest.fixture(scope="module")
def small_fits(simulated: Simulate) -> dict[str, Any]:
    _needs_pymc()
    from mindshift.analysis.beta.regression import fit_beta_model

    exact = simulated(choice_support=0.8, w_same=1.0, w_opposite=2.5, noise=0.0, n_items=30)
    trials = _beta_noise(exact, kappa=40.0, seed=3)
    fits = {name: fit_beta_model(trials, name, settings=SMALL) for name in ("A", "D")}
    return {"trials": trials, "exact": exact, **fits}


def test_small_fit_gives_a_converged_summary(small_fits: dict[str, Any]) -> None:
    fit = small_fits["D"]
    assert fit.terms == VARIANTS["D"].terms and fit.dropped == ()
    assert fit.coef.shape == (2, 300, 5) and fit.kappa.shape == (2, 300)
    assert list(fit.summary.index) == [*fit.terms, "kappa"]
    assert list(fit.summary.columns) == [
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "r_hat",
        "ess_bulk",
        "ess_tail",
    ]
    assert fit.n == 30 * 36 and fit.n_censored_high > 0 and fit.n_censored_low > 0
    assert fit.max_r_hat < 1.05 and fit.divergences == 0
    low, high = fit.interval("w_opposite")
    assert low < fit.mean("w_opposite") < high
    assert math.isnan(fit.mean("w_advice"))
    for name, value in TRUE.items():  # loose: one small data set
        assert fit.mean(name) == pytest.approx(value, abs=0.25)


def test_loo_ranks_the_true_model_first(small_fits: dict[str, Any]) -> None:
    from mindshift.analysis.beta.regression import COMPARE_COLUMNS, compare_fits, loo

    result = loo(small_fits["D"])
    assert result.n == 30 * 36 and result.n_draws == 600
    assert 3.0 < result.p_loo < 12.0  # about the six parameters
    table = compare_fits({"A": small_fits["A"], "D": small_fits["D"]})
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert list(table.index) == ["D", "A"]
    assert table.loc["D", "elpd_loo"] == pytest.approx(result.elpd)
    diff, dse = table.loc["A", ["elpd_diff", "dse"]].to_numpy(np.float64)
    assert diff > 5 * dse


def test_loo_agrees_with_arviz_loo(small_fits: dict[str, Any]) -> None:
    import arviz as az
    import xarray as xr

    from mindshift.analysis.beta.likelihood import beta_response, loglik_pointwise
    from mindshift.analysis.beta.regression import loo

    fit = small_fits["D"]
    coef, kappa = fit.draws()
    eta = coef @ fit.data.design.to_numpy().T
    loglik = loglik_pointwise(eta, kappa, beta_response(fit.data.q))
    idata = fit.idata.copy()
    idata.add_groups(
        log_likelihood={"q": xr.DataArray(loglik.reshape(2, 300, -1), dims=["chain", "draw", "i"])}
    )
    reference = az.loo(idata, pointwise=True)  # type: ignore[no-untyped-call]
    ours = loo(fit)
    assert ours.elpd == pytest.approx(float(reference["elpd_loo"]), rel=1e-9)
    assert ours.se == pytest.approx(float(reference["se"]), rel=1e-9)
    assert ours.p_loo == pytest.approx(float(reference["p_loo"]), rel=1e-6)
    assert ours.pareto_k == pytest.approx(np.asarray(reference["pareto_k"]), abs=1e-9)


def test_transfer_scores_new_data(small_fits: dict[str, Any], simulated: Simulate) -> None:
    from mindshift.analysis.beta.regression import predicted_mean, transfer

    other = _beta_noise(
        simulated(noise=0.0, n_items=20, seed=9, displays=("shown", "hidden", "other")),
        kappa=40.0,
        seed=4,
    )
    good = transfer(small_fits["D"], other)
    bad = transfer(small_fits["A"], other)
    assert good.n == 20 * 54 and good.n_cells == 54
    assert good.elpd > bad.elpd + 100
    assert good.r2 > 0.85 and good.r2_cells > 0.97
    assert good.elpd_per_trial == pytest.approx(good.elpd / good.n)
    predicted = predicted_mean(small_fits["D"], other)
    assert predicted.index.equals(other.index)
    error = predicted - np.clip(other["final_prob_initial"], 0.01, 0.99)
    assert float(np.sqrt(np.mean(error**2))) == pytest.approx(good.rmse)


def test_fit_is_reproducible_from_its_seed(small_fits: dict[str, Any]) -> None:
    from mindshift.analysis.beta.regression import fit_beta_model

    again = fit_beta_model(small_fits["trials"], "A", settings=SMALL)
    np.testing.assert_array_equal(again.coef, small_fits["A"].coef)


def test_report_tables_per_model(small_fits: dict[str, Any]) -> None:
    from mindshift.analysis.beta.regression import report_tables

    trials = pd.concat(
        [small_fits["trials"], small_fits["trials"].assign(model="twin")], ignore_index=True
    )
    comparison, posterior = report_tables(trials, variants=("A", "D"), settings=SMALL)
    assert comparison.table.index.names == ["model", "variant"]
    assert list(comparison.table.index) == [
        ("sim", "D"),
        ("sim", "A"),
        ("twin", "D"),
        ("twin", "A"),
    ]
    assert comparison.table.loc[("sim", "D"), "description"] == VARIANTS["D"].description
    assert posterior.table.index.names == ["model", "parameter"]
    assert posterior.table.loc[("sim", "w_opposite"), "mean"] == pytest.approx(
        small_fits["D"].mean("w_opposite")
    )
    assert "model D" in posterior.title and "sim: 1,080 trials" in posterior.note


# --- recovery (issue 4's Must show) -----------------------------------------------------


def _agent_runs(
    root: Path, *, noise: float, items: int, seeds: range, beta_kappa: float | None = None
) -> Iterator[pd.DataFrame]:
    """Trials of the real `sim:bayes` agent, run through the harness CLI, one run per seed
    (as `load_run` prepares them: framed, and on the scale the report uses)."""
    from mindshift.analysis import load_run
    from mindshift.cli import main

    for seed in seeds:
        params = (
            f"{{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = {noise}, "
            f"seed = {seed}" + ("" if beta_kappa is None else f", beta_kappa = {beta_kappa}") + " }"
        )
        config = root / f"agent-{noise}-{seed}.toml"
        config.write_text(
            f'[experiment]\nname = "recovery{seed}"\nparadigm = "change-of-mind"\nseed = {seed}\n\n'
            f"[paradigm]\nitems = {items}\n\n"
            f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {params}\n',
            encoding="utf-8",
        )
        out = root / config.stem
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["run", str(config), "--out", str(out)]) == 0
        yield load_run(out).trials


@pytest.mark.slow
def test_model_d_intervals_cover_the_agent_in_nine_of_ten(tmp_path: Path) -> None:
    """10 seeded runs of the agent (100 items x 36 conditions each) with beta noise on its
    final confidence (`beta_kappa = 40`, about the log-odds noise 0.3 near 0.5: the noise the
    beta regression assumes). Model D's 95 % intervals must cover each true parameter 9+
    times."""
    _needs_pymc()
    from mindshift.analysis.beta.regression import fit_beta_model

    covered = dict.fromkeys(TRUE, 0)
    runs = _agent_runs(tmp_path, noise=0.0, items=100, seeds=range(10), beta_kappa=40.0)
    for trials in runs:
        fit = fit_beta_model(trials, "D")
        assert fit.max_r_hat < 1.01 and fit.divergences == 0
        for name, value in TRUE.items():
            low, high = fit.interval(name)
            covered[name] += low <= value <= high
    assert all(count >= 9 for count in covered.values()), covered


@pytest.mark.slow
def test_gaussian_log_odds_noise_attenuates_the_weights_slightly(tmp_path: Path) -> None:
    """The agent's own noise is Gaussian on the log-odds, not beta: the beta regression then
    estimates the weights of the mean confidence, a few per cent below the agent's
    (E[expit(x + e)] is pulled towards 1/2). Documented, and pinned here."""
    _needs_pymc()
    from mindshift.analysis.beta.regression import fit_beta_model

    (trials,) = _agent_runs(tmp_path, noise=0.3, items=200, seeds=range(1))
    fit = fit_beta_model(trials, "D", settings=SamplerSettings(draws=500, tune=300))
    for name, value in TRUE.items():
        ratio = fit.mean(name) / value
        assert 0.93 < ratio < 1.0, (name, ratio)
