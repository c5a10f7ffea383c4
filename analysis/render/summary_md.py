"""summary.md: the headline numbers as a short markdown table, for the terminal.

A measure per row and a model per column, each from the same tables as the report (the
functions are named under the table), so `mindshift analyse` can print it and a reader can
decide whether to open the report at all. The rows are the trial count, the headline rows the
registered measures declare (`Measure.headline`, in the registry's order) and the update fit's
weights; a protocol without change-of-mind's display x advice design gets its per-condition
rows instead of that design's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import pandas as pd

from mindshift.analysis.data.schema import has_advice_design
from mindshift.analysis.measures.registry import HeadlineRow, Measure
from mindshift.analysis.measures.results import Results


def _pct(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:.1f} %"


def _num(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _with_ci(value: float, low: float, high: float, signed: bool = True) -> str:
    if not all(math.isfinite(v) for v in (value, low, high)):
        return _num(value, signed)
    return (
        f"{_num(value, signed)} [{low:+.2f}, {high:+.2f}]"
        if signed
        else (f"{value:.2f} [{low:.2f}, {high:.2f}]")
    )


def _cell(table: pd.DataFrame, model: str, **keys: str) -> pd.Series | None:
    mask = table["model"] == model
    for key, value in keys.items():
        mask &= table[key] == value
    rows = table.loc[mask]
    return None if rows.empty else rows.iloc[0]


Row = tuple[str, Callable[[Results, str], str], str]
"""(label, the value shown for a model, the name of the function it comes from)."""

TRIALS: Final[Row] = (
    "trials",
    lambda r, m: f"{int((r.trials['model'] == m).sum()):,}",
    "design_table",
)
FIT_TERMS: Final = ("choice_support", "w_same", "w_opposite")
"""The update fit's weights the table shows, a row each."""


def _headline(results: Results, model: str, measure: Measure, row: HeadlineRow) -> str:
    """A headline row's value for one model, from the measure's table (— where absent)."""
    cell = _cell(results.table(measure.key), model, **dict(row.where))
    value = math.nan if cell is None else float(cell[row.column])
    if row.style == "rate":
        return _pct(value)
    if row.style == "signed":
        return _num(value, True)
    if cell is None:
        return "—"
    if row.style == "ratio":
        return f"{_num(value)}x"
    if row.style == "estimate":
        return _with_ci(value, float(cell["ci_low"]), float(cell["ci_high"]))
    if not math.isfinite(value):
        return "—"
    applied = "yes" if model in results.chosen else "no"
    return f"{value:.2f} ({applied})"


def _measure_rows(results: Results, main_design: bool) -> list[Row]:
    """The registered measures' headline rows, in the registry's order (a measure of the
    display x advice design only where the run has that design)."""

    def value(measure: Measure, row: HeadlineRow) -> Callable[[Results, str], str]:
        return lambda results, model: _headline(results, model, measure, row)

    return [
        (row.label, value(measure, row), measure.function.__name__)
        for measure in results.measures
        if main_design or not measure.factorial
        for row in measure.headline
    ]


def _fit_rows() -> list[Row]:
    def value(term: str) -> Callable[[Results, str], str]:
        return lambda results, model: _fit(results, model, term)

    return [(f"fit: {term}", value(term), "fit_update_model") for term in FIT_TERMS]


def _fit(results: Results, model: str, term: str) -> str:
    row = _cell(results.fit, model, term=term)
    if row is None:
        return "—"
    return _with_ci(float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"]), False)


def _by_condition(table: pd.DataFrame, model: str, condition: str, column: str) -> float:
    row = _cell(table, model, condition=condition)
    return math.nan if row is None else float(row[column])


def _condition_rows(results: Results) -> list[Row]:
    """CoM rate and confidence change per condition (and OUCS per sequence of advisors)."""
    table, sequences = results.by_condition, results.sequences

    def cell(
        source: pd.DataFrame, condition: str, column: str, pct: bool
    ) -> Callable[[Results, str], str]:
        def compute(_: Results, model: str) -> str:
            value = _by_condition(source, model, condition, column)
            return _pct(value) if pct else _num(value, True)

        return compute

    rows: list[Row] = []
    for condition in dict.fromkeys(str(c) for c in table["condition"]):
        rows.append(
            (f"CoM, {condition}", cell(table, condition, "com_rate", True), "condition_table")
        )
        rows.append(
            (
                f"conf. change, {condition}",
                cell(table, condition, "confidence_change", False),
                "condition_table",
            )
        )
        if (sequences["condition"] == condition).any():
            rows.append(
                (f"OUCS, {condition}", cell(sequences, condition, "oucs", False), "sequence_table")
            )
    return rows


def summary_markdown(results: Results, title: str = "mindshift analysis") -> str:
    """The headline table as markdown (intervals: 95 %, clustered by question)."""
    models = results.models
    lines = [
        f"# {title}",
        "",
        "| measure | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    # A protocol without change-of-mind's display x advice design (are-you-sure,
    # multi-advice) gets its per-condition headline instead of the design's rows.
    main_design = has_advice_design(results.trials)
    rows = [TRIALS, *_measure_rows(results, main_design)]
    rows += _fit_rows() if main_design else _condition_rows(results)
    for name, compute, _ in rows:
        cells = [compute(results, model) for model in models]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sources = ", ".join(dict.fromkeys(f"`{source}`" for _, _, source in rows))
    lines += [
        "",
        "Brackets: 95 % intervals clustered by question. CoM: change-of-mind rate. "
        "Confidences are "
        + ("temperature-scaled where applied." if results.chosen else "raw read-outs.")
        + f" Rows, in order, from {sources} (package `mindshift.analysis`). Details and figures: "
        "report.html.",
        "",
    ]
    return "\n".join(lines)
