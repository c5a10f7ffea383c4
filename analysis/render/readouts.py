"""Which confidence readout produced each model's numbers, as summary.json and the report say.

A model's readout (`harness.readouts`: logprobs, sampling, verbal, verbal-2stage, ptrue) is
recorded on every trial (the trials' `readout` column); the update fit reads it to choose
its estimator, and the fit's `readout` is what summary.json gives as `models.<id>.readout`.
The report names the same value under every table, so both read it here.
"""

from __future__ import annotations

from mindshift.analysis.measures.fit import estimator_for
from mindshift.analysis.measures.results import Results


def model_readout(results: Results, model: str) -> str:
    """The readout of one model's trials ("a+b" when its rows mix readouts)."""
    fit = results.fits.get(model)
    if fit is not None:
        return fit.readout
    return estimator_for(results.trials.loc[results.trials["model"] == model]).readout


def model_readouts(results: Results) -> dict[str, str]:
    """Every model's readout, by model id."""
    return {model: model_readout(results, model) for model in results.models}
