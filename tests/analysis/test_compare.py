"""`mindshift compare`: several runs pooled, models side by side, clashing ids kept apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindshift.analysis import AnalysisInputError, compare_runs
from mindshift.cli import main

Simulate = Callable[..., pd.DataFrame]
WriteRun = Callable[[Path, pd.DataFrame], Path]


def test_compare_two_runs_with_the_same_model_id(
    tmp_path: Path,
    simulated: Simulate,
    write_run_dir: WriteRun,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = write_run_dir(tmp_path / "alpha", simulated(model="sim", n_items=8, seed=1))
    second = write_run_dir(
        tmp_path / "beta",
        pd.concat(
            [
                simulated(model="sim", n_items=8, seed=2, choice_support=0.0),
                simulated(model="other", n_items=8, seed=3),
            ],
            ignore_index=True,
        ),
    )
    # One run analysed alone: the CLI prints the markdown summary.
    assert main(["analyse", str(first), "--fitted-model", "tobit"]) == 0
    printed = capsys.readouterr().out
    assert "display coefficient" in printed and "report.html" in printed
    out = tmp_path / "cmp"
    assert (
        main(["compare", str(first), str(second), "--out", str(out), "--fitted-model", "tobit"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "alpha/sim" in printed and "beta/sim" in printed
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["model"]) == {"alpha/sim", "beta/sim", "other"}
    com = pd.read_csv(out / "tables" / "com_rate.csv")
    assert set(com["model"]) == {"alpha/sim", "beta/sim", "other"}
    fit = pd.read_csv(out / "tables" / "fit.csv").set_index(["model", "term"])
    assert fit.loc[("alpha/sim", "choice_support"), "estimate"] > 0.5
    assert abs(fit.loc[("beta/sim", "choice_support"), "estimate"]) < 0.3
    report = (out / "report.html").read_text()
    assert "<th>alpha/sim</th><th>beta/sim</th><th>other</th>" in report


def test_compare_reports_a_missing_run_as_input_error(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError):
        compare_runs([tmp_path / "nope"], tmp_path / "out")
    assert main(["compare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
