"""The report's fitted-model section: the beta regression when it can run, else the Tobit fit."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from mindshift.analysis import ModelTable, compute_results, render_report
from mindshift.analysis.beta import fitted_model as fitted

Simulate = Callable[..., pd.DataFrame]


def test_tobit_when_asked_or_too_small(simulated: Simulate) -> None:
    trials = simulated(n_items=10)
    section = compute_results(trials, fitted_model="tobit").fitted_model
    assert section.kind == "tobit" and "asked for" in section.reason
    assert section.tables[0].source == "mindshift.analysis.measures.fit.fit_update_model"
    auto = compute_results(trials).fitted_model
    assert auto.kind == "tobit"  # without PyMC, or with too few trials: says which


@pytest.mark.auto_beta
def test_beta_tables_are_rendered_when_the_extra_is_there(
    simulated: Simulate, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_report_tables(trials: pd.DataFrame) -> list[ModelTable]:
        index = pd.MultiIndex.from_tuples([("sim", "D"), ("sim", "A")], names=["model", "variant"])
        table = pd.DataFrame({"elpd_loo": [17263.0, 4969.0], "rank": [0, 3]}, index=index)
        return [
            ModelTable("Models A-D by PSIS-LOO", table, "mindshift.analysis.fake.compare", "a note")
        ]

    monkeypatch.setattr(fitted, "beta_entry", lambda: fake_report_tables)
    trials = simulated(n_items=60)  # 60 x 36 = 2,160 trials with confidences
    results = compute_results(trials)
    assert results.fitted_model.kind == "beta"
    html = render_report(results, {})
    assert "Models A-D by PSIS-LOO" in html and "17263.000" in html
    assert "<code>mindshift.analysis.fake.compare</code>" in html
    # The Tobit fit stays beside it, as the cross-check.
    assert "<code>mindshift.analysis.measures.fit.fit_update_model</code>" in html
