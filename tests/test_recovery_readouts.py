"""End to end: the simulated agent read through text (issue 12's "Must show"): runs under
`sampling` (N = 20) and `verbal` (rounded to 10) through the real runner, analysed from the
run directory: summary.json's `fit`, which picks its estimator by the readout
(`analysis.measures.fit.estimator_for`), gives back choice_support, w_same and w_opposite
within 10 %, and the bias each readout puts into the logprobs estimator is measured.

The estimators (recovered on this agent: choice_support 0.8, w_same 1, w_opposite 2.5, noise
0.3; 300 items x 36 conditions; seed 0):
- sampling, N = 20: the binomial logit-normal regression of the counts k of N (its own
  likelihood), c clipped to [1/(2N), 1 - 1/(2N)]: 0.780, 0.991, 2.502 (-2 %, -1 %, +0 %);
  the simpler Tobit censored at the readout's resolution, 1/(2N) and 1 - 1/(2N) (a frequency
  of 20/20 only says q is beyond about 1 - 1/40): 0.793, 0.920, 2.575 (-1 %, -8 %, +3 %).
- verbal, rounded to 10: the interval-censored Tobit (a stated s says q is in s +- 0.05),
  c clipped to [0.05, 0.95]: 0.762, 1.015, 2.457 (-5 %, +2 %, -2 %).

The bias of the logprobs estimator (the Tobit censored at 0.01 / 0.99, as a logprobs model's
fit is), kept here as the documented figure of what reading a text readout as probabilities
costs:
- sampling, N = 20: a frequency of 0 or 1 is read as beyond logit(0.01) or logit(0.99),
  though it only says q is beyond about 1/20; the fit pulls the slopes up to reach the
  bounds: every weight overshoots: 0.913, 1.098, 2.867 (+14 %, +10 %, +15 %).
- verbal, rounded to 10: a stated 100 % stands for any q above 0.95 and is read as beyond
  0.99, and 0 % likewise: 0.995, 1.365, 3.004 (+24 %, +37 %, +20 %).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mindshift.analysis import analyse_run, load_run
from mindshift.analysis.data.prepare import at_bayes_clip
from mindshift.analysis.engines.logodds import BAYES_CLIP, CLIP_HIGH, CLIP_LOW, logit
from mindshift.analysis.engines.tobit import tobit_fit
from mindshift.analysis.measures.fit import (
    TERMS,
    at_resolution,
    design_matrix,
    estimator_for,
    fit_update_model,
)
from mindshift.cli import main
from tests.conftest import sim_config_text

TRUE = {"choice_support": 0.8, "w_same": 1.0, "w_opposite": 2.5}
AGENT = "choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3"


def _run(tmp_path: Path, write_config: Callable[[str, str], Path], name: str, text: str) -> Path:
    run_dir = tmp_path / name
    assert main(["run", str(write_config(text, f"{name}.toml")), "--out", str(run_dir)]) == 0
    return run_dir


def _config(readout: str, params: str = "") -> str:
    text = sim_config_text(items=300, params=f"{{ {AGENT}{params} }}")
    return f'{text}readout = "{readout}"\nsamples = 20\n'


def plain_tobit(run_dir: Path) -> dict[str, float]:
    """The logprobs estimator on a text readout: the Tobit censored at 0.01 / 0.99."""
    trials = at_bayes_clip(load_run(run_dir).trials, BAYES_CLIP)
    design, response = design_matrix(trials)
    bounds = logit(np.array([CLIP_LOW, CLIP_HIGH]))
    result = tobit_fit(
        design[list(TERMS)].to_numpy(), response, lower=float(bounds[0]), upper=float(bounds[1])
    )
    assert result.converged, result.message
    return dict(zip(TERMS, map(float, result.coef), strict=True))


def _check(run_dir: Path, estimator: str, overshoot: tuple[float, float]) -> None:
    summary = analyse_run(run_dir, fitted_model="tobit")["models"]["sim"]
    fitted = summary["fit"]
    assert fitted["estimator"] == estimator, fitted["estimator_reason"]
    assert summary["readout"] == fitted["readout"]
    for name, value in TRUE.items():
        assert fitted[name] == pytest.approx(value, rel=0.10), (name, fitted[name])
    # The logprobs estimator overshoots every weight by the documented margin.
    low, high = overshoot
    for name, value in plain_tobit(run_dir).items():
        if name in TRUE:
            assert low < value / TRUE[name] - 1.0 < high, (name, value)


def test_sampling_twenty_answers_recovers_the_agent(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    run_dir = _run(tmp_path, write_config, "sampling", _config("sampling"))
    trials = load_run(run_dir).trials
    assert len(trials) == 300 * 36
    # Frequencies of 20 samples (the first of which is the answer): multiples of 1/20.
    steps = trials["final_prob_initial"].to_numpy() * 20
    assert np.allclose(steps, np.round(steps))
    _check(run_dir, "binomial-logit-normal", overshoot=(0.05, 0.25))
    # The simpler estimator, the Tobit censored at the readout's resolution, is within 10 % too.
    trials = load_run(run_dir).trials
    simpler = fit_update_model(trials, at_resolution(estimator_for(trials)))
    assert simpler.estimator == "tobit-resolution"
    for name, value in TRUE.items():
        assert getattr(simpler, name) == pytest.approx(value, rel=0.10), name


def test_verbal_rounded_to_ten_recovers_the_agent(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    run_dir = _run(tmp_path, write_config, "verbal", _config("verbal", ", verbal_rounding = 10"))
    trials = load_run(run_dir).trials
    assert len(trials) == 300 * 36
    steps = trials["final_prob_initial"].to_numpy() * 10
    assert np.allclose(steps, np.round(steps))
    _check(run_dir, "interval-tobit", overshoot=(0.10, 0.45))
