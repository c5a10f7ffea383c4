"""summary.md: the headline numbers as a short markdown table, for the terminal.

A measure per row and a model per column, each from the same tables as the report (the
functions are named under the table), so `mindshift analyse` can print it and a reader can
decide whether to open the report at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import pandas as pd

from analysis.measures.com_regression import display_coefficient
from analysis.measures.overweighting import POOLED
from analysis.measures.results import Results


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


def _mean(table: pd.DataFrame, model: str, **keys: str) -> float:
    row = _cell(table, model, **keys)
    return math.nan if row is None else float(row["mean"])


Row = tuple[str, Callable[[Results, str], str], str]

ROWS: Final[tuple[Row, ...]] = (
    ("trials", lambda r, m: f"{int((r.trials['model'] == m).sum()):,}", "design_table"),
    (
        "initial accuracy",
        lambda r, m: _accuracy(r, m),
        "initial_accuracy_table",
    ),
    (
        "temperature (applied?)",
        lambda r, m: _temperature(r, m),
        "calibration.temperatures",
    ),
    ("CoM, shown", lambda r, m: _pct(_mean(r.com, m, display="shown")), "com_rates"),
    ("CoM, hidden", lambda r, m: _pct(_mean(r.com, m, display="hidden")), "com_rates"),
    (
        "display coefficient",
        lambda r, m: _display(r, m),
        "com_logistic",
    ),
    ("choice-support shift (conf.)", lambda r, m: _support(r, m), "choice_support_test"),
    (
        "OUCS hidden / opposite",
        lambda r, m: _num(_mean(r.oucs, m, display="hidden", advice="opposite"), True),
        "oucs",
    ),
    ("overweighting same", lambda r, m: _ratio(r, m, "same"), "overweighting"),
    ("overweighting opposite", lambda r, m: _ratio(r, m, "opposite"), "overweighting"),
    ("fit: choice_support", lambda r, m: _fit(r, m, "choice_support"), "fit_update_model"),
    ("fit: w_same", lambda r, m: _fit(r, m, "w_same"), "fit_update_model"),
    ("fit: w_opposite", lambda r, m: _fit(r, m, "w_opposite"), "fit_update_model"),
)


def _display(results: Results, model: str) -> str:
    row = display_coefficient(results.com_regression, model)
    return _with_ci(row["estimate"], row["ci_low"], row["ci_high"])


def _accuracy(results: Results, model: str) -> str:
    values = results.accuracy["accuracy_initial"]
    return _pct(float(values[model])) if model in values.index else "—"


def _temperature(results: Results, model: str) -> str:
    row = _cell(results.temperatures, model)
    if row is None or not math.isfinite(float(row["temperature"])):
        return "—"
    applied = "yes" if model in results.chosen else "no"
    return f"{float(row['temperature']):.2f} ({applied})"


def _support(results: Results, model: str) -> str:
    row = _cell(results.choice_support, model)
    if row is None:
        return "—"
    return _with_ci(float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"]))


def _ratio(results: Results, model: str, advice: str) -> str:
    row = _cell(results.overweighting, model, display=POOLED, advice=advice)
    return "—" if row is None else f"{_num(float(row['ratio_of_sums']))}x"


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
    main_design = bool(results.trials["advice"].notna().any())
    rows = ROWS if main_design else (*ROWS[:3], *_condition_rows(results))
    for name, compute, _ in rows:
        cells = [compute(results, model) for model in models]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sources = ", ".join(dict.fromkeys(f"`{source}`" for _, _, source in rows))
    lines += [
        "",
        "Brackets: 95 % intervals clustered by question. CoM: change-of-mind rate. "
        "Confidences are "
        + ("temperature-scaled where applied." if results.chosen else "raw read-outs.")
        + f" Rows, in order, from {sources} (package `analysis`). Details and figures: "
        "report.html.",
        "",
    ]
    return "\n".join(lines)
