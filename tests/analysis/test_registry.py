"""The measure registry: a measure declared in one module reaches every output, the built-in
measures register in the paper's order, and every function the outputs cite exists."""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from mindshift import analysis
from mindshift.analysis import (
    FIGURES,
    analyse_run,
    compute_results,
    json_ready,
    measure_tables,
    nest,
    render_figures,
    render_report,
    summary_document,
    summary_markdown,
)
from mindshift.analysis.measures import BUILT_IN
from mindshift.analysis.measures.registry import Measure, measures, register, unregister

Simulate = Callable[..., pd.DataFrame]
WriteRun = Callable[[Path, pd.DataFrame], Path]
TOY_MODULE = "tests.analysis.toy_measure"


@pytest.fixture
def toy() -> Iterator[ModuleType]:
    """The toy measure's module, imported (which registers it) and unregistered after."""
    module = importlib.import_module(TOY_MODULE)
    try:
        yield module
    finally:
        unregister(module.KEY)
        sys.modules.pop(TOY_MODULE, None)


def test_a_measure_declared_in_one_module_reaches_every_output(
    toy: ModuleType, simulated: Simulate
) -> None:
    results = compute_results(simulated(n_items=12), fitted_model="tobit")
    key = toy.KEY
    table = results.table(key)
    pd.testing.assert_frame_equal(table, toy.final_confidence(results.trials))

    entry = summary_document(results)["models"]["sim"]
    assert entry[key] == json_ready(nest(table, ("display", "advice")))
    assert entry[key]["hidden"]["opposite"] == pytest.approx(
        results.trials.query("display == 'hidden' and advice == 'opposite'")[
            "final_prob_initial"
        ].mean()
    )
    assert entry["se_item"][key] == json_ready(nest(table, ("display", "advice"), "se_item"))
    assert entry["ci95"][key]["low"] == json_ready(nest(table, ("display", "advice"), "ci_low"))

    assert key in measure_tables(results)
    assert "final_confidence.png" in FIGURES
    figures = render_figures(results)
    assert figures["final_confidence.png"].startswith(b"\x89PNG")

    report = render_report(results, figures)
    further = report[report.index("Further measures") :]
    assert "Final confidence" in further
    assert toy.MEASURE.caption in further
    assert f"<code>{TOY_MODULE}.final_confidence(by=display, advice)</code>" in further
    assert "Final confidence in the initially chosen option by display and advice." in further
    assert further.count("<tr>") > 4  # a row per display x advice cell

    markdown = summary_markdown(results)
    row = next(line for line in markdown.splitlines() if "final confidence, hidden" in line)
    value = entry[key]["hidden"]["opposite"]
    assert f"{value:+.2f}" in row
    assert "`final_confidence`" in markdown


def test_the_toy_measure_in_an_analysed_run(
    toy: ModuleType, simulated: Simulate, write_run_dir: WriteRun, tmp_path: Path
) -> None:
    run = write_run_dir(tmp_path / "run", simulated(n_items=8))
    summary = analyse_run(run, fitted_model="tobit")
    out = run / "analysis"
    assert summary["models"]["sim"][toy.KEY]["shown"]["same"] is not None
    written = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert written["models"]["sim"][toy.KEY] == summary["models"]["sim"][toy.KEY]
    csv = pd.read_csv(out / "tables" / f"{toy.KEY}.csv")
    assert list(csv.columns[:3]) == ["model", "display", "advice"]
    assert (out / "final_confidence.png").is_file()
    assert "Further measures" in (out / "report.html").read_text(encoding="utf-8")


def test_an_unregistered_measure_leaves_no_trace(simulated: Simulate) -> None:
    assert "final_confidence" not in {m.key for m in measures()}
    results = compute_results(simulated(n_items=4), fitted_model="tobit")
    assert "final_confidence" not in summary_document(results)["models"]["sim"]
    assert "Further measures" not in render_report(results, {})
    assert "final_confidence.png" not in FIGURES


def _cell_measure(**changes: Any) -> Measure:
    declared: dict[str, Any] = {
        "key": "probe",
        "title": "Probe",
        "function": analysis.oucs,
        "caption": "A probe.",
        "cells": ("display",),
    }
    return Measure(**(declared | changes))


def test_declarations_the_registry_refuses() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register(_cell_measure(key="oucs"))
    with pytest.raises(ValueError, match="registered already"):
        register(_cell_measure(key="fit"))  # the update fit's table
    with pytest.raises(ValueError, match="not a name"):
        _cell_measure(key="final confidence")
    with pytest.raises(ValueError, match="neither"):
        _cell_measure(cells=())
    with pytest.raises(ValueError, match="summarised by its cells"):
        _cell_measure(summary=lambda results, model: {})
    with pytest.raises(ValueError, match="only a cell measure"):
        _cell_measure(cells=(), compute=lambda data: data.trials, intervals=True)
    assert "probe" not in {m.key for m in measures()}


def test_built_in_measures_register_in_the_papers_order() -> None:
    keys = [m.key for m in measures()]
    assert keys == [
        "design",
        "accuracy",
        "calibration_temperature",
        "calibration_metrics",
        "reliability",
        "com_rate",
        "com_rate_by_advice",
        "com_rate_by_accuracy",
        "com_regression",
        "switching",
        "switching_bins",
        "confidence_change",
        "confidence_change_by_accuracy",
        "choice_support",
        "choice_support_correction",
        "oucs",
        "oucs_by_accuracy",
        "overweighting",
        "overweighting_logodds",
        "clip_sensitivity",
        "by_condition",
        "sequences",
        "turns",
        "readouts",
    ]
    # What keeps that order: a built-in module imports only built-in modules before it (an
    # import of a later one would register the later one's measures first).
    root = Path(analysis.__file__).parent / "measures"
    for index, name in enumerate(BUILT_IN):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:3] == ["mindshift", "analysis", "measures"] and len(parts) == 4:
                    other = parts[3]
                    if other in BUILT_IN:
                        assert BUILT_IN.index(other) < index, (name, other)


CODE = re.compile(r"<code>(mindshift\.analysis\.[A-Za-z0-9_.]+)")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return callable(target)
    return False


@pytest.mark.parametrize("displays", [("shown", "hidden"), ("hidden",)])
def test_every_function_the_outputs_cite_exists(
    simulated: Simulate, displays: tuple[str, ...]
) -> None:
    results = compute_results(simulated(n_items=8, displays=displays), fitted_model="tobit")
    report = render_report(results, render_figures(results))
    cited = set(CODE.findall(report))
    assert len(cited) > 15
    missing = sorted(name for name in cited if not _resolves(name))
    assert not missing, missing
    # summary.md names its rows' functions by their public names in package `mindshift.analysis`.
    rows = summary_markdown(results).split("Rows, in order, from")[1].split("(package")[0]
    names = re.findall(r"`(\w+)`", rows)
    assert names and set(names) <= set(analysis.__all__), set(names) - set(analysis.__all__)
