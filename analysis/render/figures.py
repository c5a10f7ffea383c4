"""Figures in the spirit of the paper, drawn with matplotlib's object API on the Agg canvas.

No pyplot: figures are plain `Figure` objects, so drawing touches no global state (no backend
switch, no figure registry), works headless and in threads, and frees its memory when dropped.
Each `plot_*` function is a pure function of the tidy table(s) it draws (the output of the
analysis function named in its docstring); `render_figures` draws them all from `Results`
and returns PNG bytes by file name. Error bars are 95 % intervals clustered by item.
"""

from __future__ import annotations

import io
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from scipy import special

from mindshift.analysis.data.schema import ADVICE_TYPES, DISPLAYS, canonical_order, model_ids
from mindshift.analysis.measures.cells import records
from mindshift.analysis.measures.overweighting import RATIO_ADVICE, update_table
from mindshift.analysis.measures.registry import Chart, FigureSpec, Measure, measure, measures
from mindshift.analysis.measures.results import Results

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
ADVICE_COLOURS: Final[dict[str, str]] = {
    "same": "#009E73",
    "opposite": "#D55E00",
    "neutral": "#0072B2",
}
DISPLAY_STYLES: Final[dict[str, tuple[str, str]]] = {
    "shown": ("o", "-"),
    "hidden": ("s", "--"),
    "other": ("^", ":"),
}
SCALE_COLOURS: Final[dict[str, str]] = {"raw": "#999999", "calibrated": "#0072B2"}
_FALLBACK_COLOUR: Final = "#7F7F7F"
_PANEL_W: Final = 4.2
_PANEL_H: Final = 3.4
_MIN_WIDTH: Final = 6.4
_MAX_COLS: Final = 3
"""Per-model figures wrap after this many panels, so that many models stay readable."""
_LEGEND_ENTRY_W: Final = 1.7
"""Inches a legend entry needs in the bottom legend; sets how many fit side by side."""
_DPI: Final = 110
_SHARE_LIMIT: Final = 24
"""Most panels a figure shares axes for through matplotlib (see `_subplots`)."""
MAX_PANEL_MODELS: Final = 24
"""Most models a figure with a panel (or row of panels) per model draws. Beyond it the
figure shows the first MAX_PANEL_MODELS models (sorted by id) and says so in its title:
hundreds of panels take minutes to draw and make an image nobody can read; every model's
numbers are in the report's tables and in tables/*.csv."""


def _models(trials: pd.DataFrame) -> list[str]:
    return model_ids(trials)


def _empty_panel(ax: Axes, text: str) -> None:
    # set_axis_off, not set_yticks([]): tick changes would spread to the shared-y panels.
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


_SHARED: weakref.WeakKeyDictionary[Figure, tuple[bool, bool]] = weakref.WeakKeyDictionary()
"""Figures whose axes should share limits, but do it by `_equal_limits` (see `_subplots`)."""


def _subplots(
    figure: Figure, n_rows: int, n_cols: int, *, sharex: bool = False, sharey: bool = False
) -> np.ndarray:
    """`figure.subplots` (2-D array of axes), with shared limits that stay fast for many panels.

    Matplotlib's shared axes cost time quadratic in the number of panels (every limit lookup
    walks every sibling): minutes for a panel per model of 200 models. Above _SHARE_LIMIT
    panels the axes are left unshared and `_equal_limits` gives them the common limits and
    outer-only tick labels that sharing would have, once the panels are drawn.
    """
    if n_rows * n_cols <= _SHARE_LIMIT:
        axes = figure.subplots(n_rows, n_cols, squeeze=False, sharex=sharex, sharey=sharey)
    else:
        axes = figure.subplots(n_rows, n_cols, squeeze=False)
        _SHARED[figure] = (sharex, sharey)
    return np.asarray(axes)


def _equal_limits(figure: Figure) -> None:
    """Give the panels of a large figure the shared limits `_subplots` left out."""
    sharex, sharey = _SHARED.pop(figure, (False, False))
    panels = [ax for ax in figure.axes if ax.axison and ax.get_subplotspec() is not None]
    for share, get, put, hide in (
        (sharex, Axes.get_xlim, Axes.set_xlim, "labelbottom"),
        (sharey, Axes.get_ylim, Axes.set_ylim, "labelleft"),
    ):
        if not share or not panels:
            continue
        limits = [get(ax) for ax in panels]
        low, high = min(lim[0] for lim in limits), max(lim[1] for lim in limits)
        for ax in panels:
            put(ax, low, high)
            spec = ax.get_subplotspec()
            assert spec is not None
            outer = spec.is_last_row() if hide == "labelbottom" else spec.is_first_col()
            if not outer and hide == "labelbottom":
                ax.tick_params(axis="x", labelbottom=False)
            elif not outer:
                ax.tick_params(axis="y", labelleft=False)


def _grid(n_rows: int, n_cols: int, *, sharey: bool = True) -> tuple[Figure, np.ndarray]:
    # A floor on the width keeps a one-panel figure wide enough for its title and legend.
    width = max(_MIN_WIDTH, _PANEL_W * n_cols)
    figure = Figure(figsize=(width, _PANEL_H * n_rows + 1.0), dpi=_DPI, layout="constrained")
    return figure, _subplots(figure, n_rows, n_cols, sharey=sharey)


def _model_panels(n_models: int, *, sharey: bool) -> tuple[Figure, list[Axes]]:
    """One panel per model, wrapped into rows of at most _MAX_COLS; spare panels hidden."""
    n_cols = min(n_models, _MAX_COLS)
    n_rows = -(-n_models // n_cols)
    figure, axes = _grid(n_rows, n_cols, sharey=sharey)
    panels = list(axes.ravel())
    for spare in panels[n_models:]:
        spare.set_axis_off()
    return figure, panels[:n_models]


def _legend(figure: Figure, axes: np.ndarray, title: str) -> None:
    """One legend for the whole figure, below the panels, so that none covers data."""
    entries: dict[str, Any] = {}
    for ax in axes.ravel():
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    if entries:
        fit = max(1, int(figure.get_figwidth() // _LEGEND_ENTRY_W))
        figure.legend(
            list(entries.values()),
            list(entries),
            loc="outside lower center",
            ncol=min(len(entries), fit),
            title=title,
            frameon=False,
        )


def _ci_error(table: pd.DataFrame, scale: float = 1.0) -> np.ndarray:
    """Asymmetric error bars (2 x n) from ci_low/ci_high around mean; 0 where unknown."""
    mean = table["mean"].to_numpy(np.float64)
    low = np.nan_to_num(mean - table["ci_low"].to_numpy(np.float64), nan=0.0)
    high = np.nan_to_num(table["ci_high"].to_numpy(np.float64) - mean, nan=0.0)
    return np.vstack([low, high]) * scale


def _models_of(*tables: pd.DataFrame) -> list[str]:
    return sorted({str(m) for table in tables for m in table["model"]})


def _drawn(models: list[str]) -> tuple[list[str], str]:
    """The models a per-model figure draws, and the note for its title when not all."""
    if len(models) <= MAX_PANEL_MODELS:
        return models, ""
    return models[:MAX_PANEL_MODELS], (
        f" — first {MAX_PANEL_MODELS} of {len(models)} models (all in the tables)"
    )


def _accuracy_lines(table: pd.DataFrame, spec: FigureSpec, percent: bool) -> Figure:
    """A cell measure by display, advice and accuracy: a line per advice type against stated
    accuracy, a panel per display, a row of panels per model (rates in percent)."""
    scale = 100.0 if percent else 1.0
    models, more = _drawn(_models_of(table))
    displays = canonical_order(table["display"], DISPLAYS) or ["(none)"]
    figure, axes = _grid(max(1, len(models)), len(displays))
    for row, model in enumerate(models):
        for col, display in enumerate(displays):
            ax = axes[row, col]
            cells = table.loc[(table["model"] == model) & (table["display"] == display)]
            if cells.empty:
                _empty_panel(ax, f"no '{display}' trials")
                continue
            for advice in canonical_order(cells["advice"], ADVICE_TYPES):
                line = cells.loc[cells["advice"] == advice]
                ax.errorbar(
                    line["accuracy"] * 100,
                    line["mean"] * scale,
                    yerr=_ci_error(line, scale),
                    marker="o",
                    capsize=3,
                    color=ADVICE_COLOURS.get(advice, _FALLBACK_COLOUR),
                    label=advice,
                )
            if percent:
                ax.set_ylim(-3, 103)
            ax.set_title(f"{model} — {display}" if len(models) > 1 else f"display: {display}")
            ax.set_xlabel("stated advice accuracy (%)")
            if col == 0:
                ax.set_ylabel(spec.ylabel)
            ax.grid(alpha=0.3)
    _legend(figure, axes, "advice")
    figure.suptitle(spec.title + more)
    _equal_limits(figure)
    return figure


def _spec(key: str) -> FigureSpec:
    """The figure a built-in measure declares (its titles and labels live with the measure)."""
    spec = measure(key).figure
    assert spec is not None, key
    return spec


def plot_com_by_accuracy(com_accuracy: pd.DataFrame) -> Figure:
    """CoM rate against stated advice accuracy: a line per advice type, a panel per display.

    One row of panels per model. Draws `com_rates(trials, ("display", "advice", "accuracy"))`.
    """
    return _accuracy_lines(com_accuracy, _spec("com_rate_by_accuracy"), percent=True)


def _bars(cells_by_model: pd.DataFrame, spec: FigureSpec) -> Figure:
    """Bars by display (groups) and advice (colours), a panel per model, 95 % CIs."""
    title, ylabel = spec.title, spec.ylabel
    models, more = _drawn(_models_of(cells_by_model))
    figure, panels = _model_panels(max(1, len(models)), sharey=True)
    for panel, (ax, model) in enumerate(zip(panels, models, strict=False)):
        cells = cells_by_model.loc[cells_by_model["model"] == model]
        if cells.empty:
            _empty_panel(ax, f"{model}: {spec.empty}")
            continue
        displays = canonical_order(cells["display"], DISPLAYS)
        advice_types = canonical_order(cells["advice"], ADVICE_TYPES)
        width = 0.8 / len(advice_types)
        for k, advice in enumerate(advice_types):
            bars = cells.loc[cells["advice"] == advice].set_index("display").reindex(displays)
            x = np.arange(len(displays)) + (k - (len(advice_types) - 1) / 2) * width
            ax.bar(
                x,
                bars["mean"].to_numpy(np.float64),
                width,
                yerr=_ci_error(bars.reset_index()),
                capsize=3,
                color=ADVICE_COLOURS.get(advice, _FALLBACK_COLOUR),
                label=advice,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(displays)), displays)
        ax.set_xlabel("display of the initial answer")
        if panel % _MAX_COLS == 0:
            ax.set_ylabel(ylabel)
        ax.set_title(model)
        ax.grid(axis="y", alpha=0.3)
    if not models:
        _empty_panel(panels[0], spec.empty)
    _legend(figure, np.asarray(panels), "advice")
    figure.suptitle(title + more)
    _equal_limits(figure)
    return figure


def plot_confidence_change(change: pd.DataFrame) -> Figure:
    """Mean confidence change by display and advice, a panel per model.

    Draws `confidence_change(trials, ("display", "advice"))`: final minus initial probability
    of the initially chosen option.
    """
    return _bars(change, _spec("confidence_change"))


def plot_oucs(oucs_cells: pd.DataFrame) -> Figure:
    """OUCS (final confidence minus Bayes posterior) by display and advice, a panel per model.

    Draws `oucs(trials, ("display", "advice"))`; above 0 is overconfident in the initial
    choice relative to the ideal observer, below 0 underconfident.
    """
    return _bars(oucs_cells, _spec("oucs"))


def _binned(update: pd.DataFrame, bins: int) -> pd.DataFrame:
    """Means of observed and Bayes updates within quantile bins of the Bayes update."""
    n_bins = max(1, min(bins, update["bayes_update"].nunique()))
    codes = pd.qcut(update["bayes_update"], n_bins, labels=False, duplicates="drop")
    grouped = update.groupby(codes)
    return pd.DataFrame(
        {
            "x": grouped["bayes_update"].mean(),
            "y": grouped["observed_update"].mean(),
            "sem": grouped["observed_update"].sem(),
        }
    )


def plot_updates(trials: pd.DataFrame, bins: int = 8) -> Figure:
    """Observed against Bayes confidence update, binned means with the identity line.

    Draws `update_table(trials)` (trials with `bayes_post`). A panel per model; a line per
    display x advice (same, opposite). Observed updates are uncorrected here, so the shown
    lines sit above the hidden ones by the choice-supportive shift; points steeper than the
    identity line mean overweighting. Error bars: SEM across the bin's trials.
    """
    data = update_table(trials)
    finite = np.isfinite(data["observed_update"]) & np.isfinite(data["bayes_update"])
    data = data.loc[finite & data["advice"].isin(RATIO_ADVICE)]
    models, more = _drawn(_models(trials))
    figure, panels = _model_panels(max(1, len(models)), sharey=False)
    for panel, (ax, model) in enumerate(zip(panels, models, strict=False)):
        rows = data.loc[data["model"] == model]
        if rows.empty:
            _empty_panel(ax, f"{model}: no confidence data")
            continue
        for display in canonical_order(rows["display"], DISPLAYS):
            marker, style = DISPLAY_STYLES.get(display, ("D", "-."))
            for advice in canonical_order(rows["advice"], ADVICE_TYPES):
                cell = rows.loc[(rows["display"] == display) & (rows["advice"] == advice)]
                if cell.empty:
                    continue
                points = _binned(cell, bins)
                ax.errorbar(
                    points["x"],
                    points["y"],
                    yerr=points["sem"].fillna(0.0),
                    marker=marker,
                    linestyle=style,
                    markersize=4,
                    capsize=2,
                    color=ADVICE_COLOURS.get(advice, _FALLBACK_COLOUR),
                    label=f"{display} / {advice}",
                )
        _identity(ax, [rows["bayes_update"], rows["observed_update"]])
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("Bayes update (posterior \N{MINUS SIGN} initial confidence)")
        if panel % _MAX_COLS == 0:
            ax.set_ylabel("observed update\n(final \N{MINUS SIGN} initial confidence)")
        ax.set_title(model)
        ax.grid(alpha=0.3)
    _legend(figure, np.asarray(panels), "display / advice")
    figure.suptitle("Observed vs Bayes-optimal confidence update (binned means ± SEM)" + more)
    _equal_limits(figure)
    return figure


def _identity(ax: Axes, series: Sequence[pd.Series]) -> None:
    low = min(float(s.min()) for s in series)
    high = max(float(s.max()) for s in series)
    pad = 0.05 * (high - low or 1.0)
    ax.plot(
        [low - pad, high + pad],
        [low - pad, high + pad],
        color="black",
        linewidth=0.8,
        linestyle="--",
        label="identity (Bayes)",
    )
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    ax.axvline(0.0, color="0.6", linewidth=0.6)


DISPLAY_COLOURS: Final[dict[str, str]] = {
    "hidden": "#0072B2",
    "shown": "#E69F00",
    "other": "#CC79A7",
}


def plot_switching(switching: pd.DataFrame, bins: pd.DataFrame) -> Figure:
    """Switching under opposite advice against initial confidence: a panel per model x stated
    accuracy, the displays overlaid (hidden blue, shown orange, other pink).

    Draws `binned_switching` (dots: binned switch rates) and `switching_curves` (solid: the
    fitted sigmoid; dotted: the linear fit). The black dashed step is the normative observer,
    who switches iff the advice accuracy a exceeds the initial confidence c.
    """
    models, more = _drawn(_models_of(switching) if not switching.empty else [])
    accuracies = sorted({float(a) for a in switching["accuracy"]}) or [0.5]
    n_cols = len(accuracies)
    figure = Figure(
        figsize=(max(_MIN_WIDTH, 2.6 * n_cols), 2.5 * max(1, len(models)) + 1.2),
        dpi=_DPI,
        layout="constrained",
    )
    axes = _subplots(figure, max(1, len(models)), n_cols, sharex=True, sharey=True)
    grid = np.linspace(0.0, 1.0, 201)
    if not models:
        _empty_panel(axes[0, 0], "no opposite-advice trials with confidence")
    low = float(bins["confidence"].min()) if not bins.empty else 0.0
    for r, model in enumerate(models):
        for col, accuracy in enumerate(accuracies):
            ax = axes[r, col]
            here = switching.loc[
                (switching["model"] == model) & np.isclose(switching["accuracy"], accuracy)
            ]
            normative = float(np.clip(accuracy, 0.01, 0.99))
            ax.plot(
                [0.0, normative, normative, 1.0],
                [100, 100, 0, 0],
                "--",
                color="black",
                linewidth=0.9,
                label="normative: switch iff a > c",
            )
            for fit in records(here):
                display = str(fit["display"])
                colour = DISPLAY_COLOURS.get(display, _FALLBACK_COLOUR)
                cell = bins.loc[
                    (bins["model"] == model)
                    & (bins["display"] == display)
                    & np.isclose(bins["accuracy"], accuracy)
                ]
                ax.plot(
                    cell["confidence"],
                    cell["switch_rate"] * 100,
                    "o",
                    markersize=3.5,
                    color=colour,
                    alpha=0.8,
                    label=f"{display}: binned data",
                )
                span = (grid >= cell["confidence"].min()) & (grid <= cell["confidence"].max())
                if np.isfinite(fit["inflection"]) and np.isfinite(fit["sigmoid_slope"]):
                    curve = special.expit(4.0 * fit["sigmoid_slope"] * (grid - fit["inflection"]))
                    ax.plot(
                        grid[span],
                        100 * curve[span],
                        "-",
                        color=colour,
                        linewidth=1.8,
                        label=f"{display}: sigmoid fit",
                    )
                if np.isfinite(fit["linear_slope"]):
                    line = fit["linear_intercept"] + fit["linear_slope"] * grid
                    ax.plot(
                        grid[span],
                        100 * line[span],
                        ":",
                        color=colour,
                        linewidth=1.2,
                        label=f"{display}: linear fit",
                    )
            ax.set_xlim(max(0.0, low - 0.05), 1.0)
            ax.set_ylim(-3, 103)
            ax.set_title(
                f"{model} — a = {accuracy:.0%}"
                if len(models) > 1
                else f"advice accuracy {accuracy:.0%}",
                fontsize=10,
            )
            if r == len(models) - 1:
                ax.set_xlabel("initial confidence")
            if col == 0:
                ax.set_ylabel("change of mind (%)")
            ax.grid(alpha=0.3)
    present = canonical_order(switching["display"], DISPLAYS)
    handles = [
        Line2D([], [], color=DISPLAY_COLOURS.get(d, _FALLBACK_COLOUR), linewidth=2.5, label=d)
        for d in present
    ] + [
        Line2D([], [], color="0.35", marker="o", linestyle="none", label="binned data"),
        Line2D([], [], color="0.35", linestyle="-", label="sigmoid fit"),
        Line2D([], [], color="0.35", linestyle=":", label="linear fit"),
        Line2D([], [], color="black", linestyle="--", label="normative: switch iff a > c"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    figure.suptitle("Switching under opposite advice vs initial confidence" + more)
    _equal_limits(figure)
    return figure


def plot_reliability(reliability: pd.DataFrame, fitted: pd.DataFrame) -> Figure:
    """Reliability diagram per model: accuracy against confidence, raw and calibrated.

    Draws `reliability_table` (ECE_BINS equal-width bins of the confidence in the given
    answer) on the data each temperature was fitted on, with `temperatures` in the title.
    The grey bars at the bottom show how many answers fall in each bin (raw).
    """
    models, more = _drawn(_models_of(reliability) if not reliability.empty else [])
    figure, panels = _model_panels(max(1, len(models)), sharey=True)
    if not models:
        _empty_panel(panels[0], "no stage-1 confidences")
    temperature = {str(row["model"]): row for row in records(fitted)}
    for panel, (ax, model) in enumerate(zip(panels, models, strict=False)):
        cells = reliability.loc[reliability["model"] == model]
        raw = cells.loc[cells["scale"] == "raw"]
        if not raw.empty:
            share = raw["n"] / raw["n"].sum()
            ax.bar(
                (raw["low"] + raw["high"]) / 2,
                share * 0.25 / max(float(share.max()), 1e-9),
                width=0.09,
                color="0.85",
                label="answers per bin (raw)",
                zorder=1,
            )
        ax.plot([0, 1], [0, 1], "--", color="black", linewidth=0.8, label="perfect calibration")
        for scale in ("raw", "calibrated"):
            line = cells.loc[cells["scale"] == scale]
            if line.empty:
                continue
            ax.errorbar(
                line["confidence"],
                line["accuracy"],
                yerr=1.96 * line["se"].fillna(0.0),
                marker="o" if scale == "calibrated" else "s",
                markersize=4,
                capsize=2,
                color=SCALE_COLOURS[scale],
                label=scale,
                zorder=3,
            )
        fit = temperature.get(model)
        title = model
        if fit is not None and np.isfinite(fit["temperature"]):
            title += f"  (T = {fit['temperature']:.2f}, n = {int(fit['n']):,})"
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("confidence in the given answer")
        if panel % _MAX_COLS == 0:
            ax.set_ylabel("share correct")
        ax.grid(alpha=0.3)
    _legend(figure, np.asarray(panels), "")
    figure.suptitle("Calibration of the stage-1 confidence (reliability diagram)" + more)
    _equal_limits(figure)
    return figure


_ESTIMATES: Final = (
    ("display coefficient", "log-odds of a change of mind, shown vs hidden", 0.0),
    ("choice_support", "log-odds boost when the answer is shown", 0.0),
    ("w_same", "weight of agreeing advice (Bayes = 1)", 1.0),
    ("w_opposite", "weight of opposing advice (Bayes = 1)", 1.0),
)


def estimate_table(com_regression: pd.DataFrame, fit: pd.DataFrame) -> pd.DataFrame:
    """The headline estimates with 95 % CIs: model, estimate_name, estimate, ci_low, ci_high.

    From `com_logistic` (the display coefficient) and `fit_table` (the update weights).
    """
    display = com_regression.loc[com_regression["term"] == "display: shown"].assign(
        name="display coefficient"
    )
    weights = fit.loc[fit["term"].isin(["choice_support", "w_same", "w_opposite"])].assign(
        name=lambda t: t["term"]
    )
    columns = ["model", "name", "estimate", "ci_low", "ci_high"]
    return pd.concat([display[columns], weights[columns]], ignore_index=True)


def plot_estimates(estimates: pd.DataFrame) -> Figure:
    """Forest plot of the headline estimates, a row per model, a panel per estimate.

    Draws `estimate_table`; the dashed line is the ideal observer's value.
    """
    models = sorted({str(m) for m in estimates["model"]}, reverse=True)
    height = max(2.6, 0.45 * len(models) + 1.6)
    figure = Figure(figsize=(13.0, height), dpi=_DPI, layout="constrained")
    axes = figure.subplots(1, len(_ESTIMATES), sharey=True, squeeze=False)[0]
    y = {model: i for i, model in enumerate(models)}
    for ax, (name, label, ideal) in zip(axes, _ESTIMATES, strict=True):
        rows = estimates.loc[estimates["name"] == name]
        rows = rows.loc[np.isfinite(rows["estimate"].to_numpy(np.float64))]
        ax.axvline(ideal, color="black", linestyle="--", linewidth=0.8)
        if not rows.empty:
            pos = rows["model"].map(y).to_numpy(np.float64)
            est = rows["estimate"].to_numpy(np.float64)
            low = np.nan_to_num(est - rows["ci_low"].to_numpy(np.float64), nan=0.0)
            high = np.nan_to_num(rows["ci_high"].to_numpy(np.float64) - est, nan=0.0)
            ax.errorbar(est, pos, xerr=np.vstack([low, high]), fmt="o", color="#0072B2", capsize=3)
        # A model too small for the fit keeps its row, marked, so no blank reads as zero.
        for model in sorted(set(models) - {str(m) for m in rows["model"]}):
            ax.text(
                0.03,
                y[model],
                "not estimated",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=8,
                color="0.45",
            )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(label, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(range(len(models)), models)
        ax.set_ylim(-0.7, len(models) - 0.3)
    figure.suptitle("Headline estimates by model (95 % CI clustered by item; dashed: Bayes)")
    _equal_limits(figure)
    return figure


CONDITION_COLOURS: Final = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
"""Okabe-Ito colours for the conditions of a trajectory figure, reused in turn past eight."""
MAX_LABELLED_CONDITIONS: Final = 12
"""Most conditions a trajectory figure's legend names (change-of-mind has 36 two-turn ones:
their lines are drawn, their names are in the tables)."""


def plot_turns(turns: pd.DataFrame, spec: FigureSpec) -> Figure:
    """Confidence in the turn-1 answer by turn: a line per condition (95 % CI bars), a panel
    per model; dashed, in the condition's colour, the mean Bayes posterior where defined.

    Draws `turn_table(trials)` (`analysis.measures.turns`).
    """
    models, more = _drawn(_models_of(turns) if not turns.empty else [])
    figure, panels = _model_panels(max(1, len(models)), sharey=True)
    if not models:
        _empty_panel(panels[0], "no answered later turns")
    conditions = sorted({str(c) for c in turns["condition"]})
    colour = {c: CONDITION_COLOURS[i % len(CONDITION_COLOURS)] for i, c in enumerate(conditions)}
    labelled = set(conditions[:MAX_LABELLED_CONDITIONS])
    any_bayes = False
    for ax, model in zip(panels, models, strict=False):
        here = turns.loc[turns["model"] == model]
        for condition, line in here.groupby("condition", sort=True):
            name = str(condition)
            turn = line["turn"].to_numpy(np.int64)
            mean = line["confidence_initial"].to_numpy(np.float64)
            error = np.vstack(
                [
                    np.nan_to_num(mean - line["confidence_ci_low"].to_numpy(np.float64), nan=0.0),
                    np.nan_to_num(line["confidence_ci_high"].to_numpy(np.float64) - mean, nan=0.0),
                ]
            )
            ax.errorbar(
                turn,
                mean,
                yerr=error,
                marker="o",
                capsize=3,
                color=colour[name],
                label=name if name in labelled else None,
            )
            bayes = line["bayes_post"].to_numpy(np.float64)
            known = np.isfinite(bayes)
            if known.any():
                any_bayes = True
                ax.plot(turn[known], bayes[known], linestyle="--", color=colour[name])
        ax.set_title(model)
        ax.set_xlabel("turn")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    if panels:
        panels[0].set_ylabel(spec.ylabel)
        if any_bayes:
            panels[0].plot([], [], linestyle="--", color="0.3", label="Bayes posterior")
    unnamed = len(conditions) - len(labelled)
    title = "condition" + (f" (first {len(labelled)} of {len(conditions)})" if unnamed else "")
    handles, labels = panels[0].get_legend_handles_labels() if panels else ([], [])
    for ax in panels[1:]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if labels:
        # Condition names can be long (a sequence of advisors): as many columns as fit.
        entry_width = 0.7 + 0.075 * max(len(label) for label in labels)
        fit = max(1, int(figure.get_figwidth() // entry_width))
        figure.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=min(len(labels), fit),
            title=title,
            frameon=False,
            fontsize="small",
        )
    figure.suptitle(spec.title + more)
    _equal_limits(figure)
    return figure


CHARTS: Final[dict[Chart, Callable[[Results, Measure, FigureSpec], Figure]]] = {
    "bars": lambda r, m, spec: _bars(r.table(m.key), spec),
    "accuracy_lines": lambda r, m, spec: _accuracy_lines(
        r.table(m.key), spec, percent=m.scale == "rate"
    ),
    "reliability": lambda r, m, spec: plot_reliability(r.reliability, r.temperatures),
    "switching": lambda r, m, spec: plot_switching(r.switching, r.switching_bins),
    "updates": lambda r, m, spec: plot_updates(r.trials),
    "trajectories": lambda r, m, spec: plot_turns(r.table(m.key), spec),
}
"""How each kind of chart a measure may declare is drawn from the results."""

ESTIMATES_FILE: Final = "estimates.png"
"""The figure every analysis draws besides its measures': the headline estimates."""


def _draw_estimates(results: Results) -> Figure:
    return plot_estimates(estimate_table(results.com_regression, results.fit))


def figures_of(measures: Iterable[Measure]) -> dict[str, Callable[[Results], Figure]]:
    """File name -> drawing function of the results: the figure each measure declares, in
    their order, then the headline estimates."""

    def drawer(measure: Measure, spec: FigureSpec) -> Callable[[Results], Figure]:
        return lambda results: CHARTS[spec.chart](results, measure, spec)

    drawers = {m.figure.file: drawer(m, m.figure) for m in measures if m.figure is not None}
    drawers[ESTIMATES_FILE] = _draw_estimates
    return drawers


class _Figures(Mapping[str, Callable[[Results], Figure]]):
    """`figures_of` the measures registered now: a read-only view that follows the registry."""

    def __getitem__(self, name: str) -> Callable[[Results], Figure]:
        return figures_of(measures())[name]

    def __iter__(self) -> Iterator[str]:
        return iter(figures_of(measures()))

    def __len__(self) -> int:
        return len(figures_of(measures()))


FIGURES: Final[Mapping[str, Callable[[Results], Figure]]] = _Figures()
"""File name -> drawing function of the results, in report order (the registered measures'
figures, then the headline estimates)."""


def _sequential(n: int) -> list[str]:
    """n colours from light to dark blue (higher accuracy, darker line)."""
    start, end = np.array([0.62, 0.79, 0.88]), np.array([0.03, 0.19, 0.42])
    steps = np.linspace(0.0, 1.0, n) if n > 1 else np.array([1.0])
    return [
        "#{:02x}{:02x}{:02x}".format(*(255 * (start + t * (end - start))).astype(int))
        for t in steps
    ]


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    # No "Software" text chunk: it names a URL, and the PNGs then depend on the data alone.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def render_figures(results: Results) -> dict[str, bytes]:
    """Every figure of the results' measures (`figures_of`) that the results call for
    (`FigureSpec.drawn_for`), as PNG bytes keyed by file name."""
    drawers = figures_of(
        m for m in results.measures if m.figure is None or m.figure.drawn_for(results)
    )
    return {name: figure_png(draw(results)) for name, draw in drawers.items()}
