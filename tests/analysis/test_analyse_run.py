"""End to end: a run directory in, summary.json, figures and a self-contained report out."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import FIGURES, AnalysisInputError, analyse_run


@pytest.fixture(scope="module")
def analysed(
    tmp_path_factory: pytest.TempPathFactory,
    simulated: Callable[..., pd.DataFrame],
    write_run_dir: Callable[[Path, pd.DataFrame], Path],
) -> tuple[Path, dict[str, Any]]:
    simulate, write_run = simulated, write_run_dir
    trials = pd.concat(
        [
            simulate(model="sim", n_items=12, seed=1),
            simulate(model="bayes", choice_support=0.0, w_opposite=1.0, noise=0.0, n_items=12),
        ],
        ignore_index=True,
    )
    run_dir = write_run(tmp_path_factory.mktemp("run"), trials)
    return run_dir, analyse_run(run_dir)


def test_writes_every_output(analysed: tuple[Path, dict[str, Any]]) -> None:
    run_dir, summary = analysed
    out = run_dir / "analysis"
    assert json.loads((out / "summary.json").read_text()) == summary
    for name in FIGURES:
        if name == "turns.png":  # drawn only beyond two turns; this run has two
            assert not (out / name).exists()
        else:
            assert (out / name).read_bytes().startswith(b"\x89PNG")
    assert not list(out.glob("*.partial"))
    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("# mindshift analysis") and "| display coefficient |" in markdown
    tables = {path.stem for path in (out / "tables").glob("*.csv")}
    assert {
        "com_rate",
        "oucs",
        "fit",
        "com_regression",
        "switching",
        "calibration_metrics",
    } <= tables
    fit = pd.read_csv(out / "tables" / "fit.csv")
    assert set(fit["model"]) == {"sim", "bayes"}


def test_report_is_self_contained(analysed: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = analysed
    report = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", report)
    assert "<script" not in report.lower() and "<link" not in report.lower()
    images = re.findall(r'<img src="([^"]*)"', report)
    # Every figure but the turn-by-turn one, which is drawn (and shown) only for protocols
    # of more than two turns.
    assert len(images) == len([name for name in FIGURES if name != "turns.png"])
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # The paper's order, every section present.
    headings = re.findall(r"<h2>([^<]*)</h2>", report)
    assert headings == [
        "1. Key results",
        "2. Design",
        "3. Accuracy and calibration",
        "4. Change of mind",
        "5. Confidence change",
        "6. Comparison with the Bayesian observer",
        "7. Fitted model",
        "8. By condition",
        "9. Example trials",
        "Methods",
    ]
    # Every table says which analysis function computed it.
    tables = report.count('<div class="scroll"><table>')
    assert tables >= 10
    assert report.count('class="src">Computed by <code>mindshift.analysis.') >= tables - 2
    # Models side by side: both are columns of the CoM tables.
    assert "<th>bayes</th><th>sim</th>" in report and "OUCS, <code>sim</code>" in report
    # Facts about the run come from its manifest.
    assert "abc123 (dirty)" in report and "sim = sim:bayes" in report


def test_bad_run_dir_raises_the_input_error(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError):
        analyse_run(tmp_path / "missing")


def test_unwritable_output_raises_the_input_error(
    tmp_path: Path,
    simulated: Callable[..., pd.DataFrame],
    write_run_dir: Callable[[Path, pd.DataFrame], Path],
) -> None:
    run_dir = write_run_dir(tmp_path / "run", simulated(n_items=3, accuracies=(0.7,)))
    (run_dir / "analysis").write_text("a file where the output folder should be")
    with pytest.raises(AnalysisInputError, match="cannot write"):
        analyse_run(run_dir)
