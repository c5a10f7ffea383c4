"""Figures in the spirit of the paper, drawn with matplotlib's object API on the Agg canvas.

No pyplot: figures are plain `Figure` objects, so drawing touches no global state (no backend
switch, no figure registry), works headless and in threads, and frees its memory when dropped.
Each `plot_*` function is a pure function of a trials table; `render_figures` draws them all
and returns PNG bytes by file name.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis.bayes import with_bayes
from analysis.change_of_mind import answered, com_rates
from analysis.confidence_change import confidence_change
from analysis.overweighting import RATIO_ADVICE, update_table
from analysis.schema import ADVICE_TYPES, DISPLAYS, canonical_order

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
_FALLBACK_COLOUR: Final = "#7F7F7F"
_PANEL_W: Final = 4.2
_PANEL_H: Final = 3.4
_MIN_WIDTH: Final = 6.4
_MAX_COLS: Final = 3
"""Per-model figures wrap after this many panels, so that many models stay readable."""
_LEGEND_ENTRY_W: Final = 1.7
"""Inches a legend entry needs in the bottom legend; sets how many fit side by side."""
_DPI: Final = 110


def _models(trials: pd.DataFrame) -> list[str]:
    return sorted({str(m) for m in trials["model"]})


def _empty_panel(ax: Axes, text: str) -> None:
    # set_axis_off, not set_yticks([]): tick changes would spread to the shared-y panels.
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _grid(n_rows: int, n_cols: int, *, sharey: bool = True) -> tuple[Figure, np.ndarray]:
    # A floor on the width keeps a one-panel figure wide enough for its title and legend.
    width = max(_MIN_WIDTH, _PANEL_W * n_cols)
    figure = Figure(figsize=(width, _PANEL_H * n_rows + 1.0), dpi=_DPI, layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False, sharey=sharey)
    return figure, np.asarray(axes)


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


def plot_com_by_accuracy(trials: pd.DataFrame) -> Figure:
    """CoM rate against stated advice accuracy: a line per advice type, a panel per display.

    One row of panels per model; error bars are the SEM across trials.
    """
    table = com_rates(trials, ("display", "advice", "accuracy"))
    models = _models(trials)
    displays = canonical_order(trials["display"], DISPLAYS)
    figure, axes = _grid(len(models), len(displays))
    for row, model in enumerate(models):
        for col, display in enumerate(displays):
            ax = axes[row, col]
            cells = table.loc[(table["model"] == model) & (table["display"] == display)]
            if cells.empty:
                _empty_panel(ax, "no trials")
                continue
            for advice in canonical_order(cells["advice"], ADVICE_TYPES):
                line = cells.loc[cells["advice"] == advice]
                ax.errorbar(
                    line["accuracy"] * 100,
                    line["mean"] * 100,
                    yerr=line["sem"].fillna(0.0) * 100,
                    marker="o",
                    capsize=3,
                    color=ADVICE_COLOURS.get(advice, _FALLBACK_COLOUR),
                    label=advice,
                )
            ax.set_ylim(-3, 103)
            ax.set_title(f"{model} — {display}" if len(models) > 1 else f"display: {display}")
            ax.set_xlabel("stated advice accuracy (%)")
            if col == 0:
                ax.set_ylabel("change of mind (% of trials)")
            ax.grid(alpha=0.3)
    _legend(figure, axes, "advice")
    figure.suptitle("Change-of-mind rate by advice accuracy (mean ± SEM)")
    return figure


def plot_confidence_change(trials: pd.DataFrame) -> Figure:
    """Mean confidence change by display (groups) and advice (bars), SEM error bars.

    A panel per model. Confidence change is the final minus the initial probability of the
    initially chosen option.
    """
    table = confidence_change(trials, ("display", "advice"))
    models = _models(trials)
    figure, panels = _model_panels(len(models), sharey=True)
    for panel, (ax, model) in enumerate(zip(panels, models, strict=True)):
        cells = table.loc[table["model"] == model]
        if cells.empty:
            _empty_panel(ax, f"{model}: no confidence data")
            continue
        displays = canonical_order(cells["display"], DISPLAYS)
        advice_types = canonical_order(cells["advice"], ADVICE_TYPES)
        width = 0.8 / len(advice_types)
        for k, advice in enumerate(advice_types):
            bars = cells.loc[cells["advice"] == advice].set_index("display")
            x = np.arange(len(displays)) + (k - (len(advice_types) - 1) / 2) * width
            ax.bar(
                x,
                [float(bars["mean"].get(d, np.nan)) for d in displays],
                width,
                yerr=[float(bars["sem"].get(d, np.nan)) for d in displays],
                capsize=3,
                color=ADVICE_COLOURS.get(advice, _FALLBACK_COLOUR),
                label=advice,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(displays)), displays)
        ax.set_xlabel("display of the initial answer")
        if panel % _MAX_COLS == 0:
            ax.set_ylabel("confidence change\n(final \N{MINUS SIGN} initial, initial choice)")
        ax.set_title(model)
        ax.grid(axis="y", alpha=0.3)
    _legend(figure, np.asarray(panels), "advice")
    figure.suptitle("Confidence change by display and advice (mean ± SEM)")
    return figure


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

    A panel per model; a line per display x advice (same, opposite). Observed updates are
    raw here (no choice-support correction), so the shown lines sit above the hidden ones by
    the choice-supportive shift; points steeper than the identity line mean overweighting.
    """
    data = update_table(with_bayes(trials))
    finite = np.isfinite(data["observed_update"]) & np.isfinite(data["bayes_update"])
    data = data.loc[finite & data["advice"].isin(RATIO_ADVICE)]
    models = _models(trials)
    figure, panels = _model_panels(len(models), sharey=False)
    for panel, (ax, model) in enumerate(zip(panels, models, strict=True)):
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
        ax.set_xlabel("Bayes update (posterior \N{MINUS SIGN} initial confidence)")
        if panel % _MAX_COLS == 0:
            ax.set_ylabel("observed update\n(final \N{MINUS SIGN} initial confidence)")
        ax.set_title(model)
        ax.grid(alpha=0.3)
    _legend(figure, np.asarray(panels), "display / advice")
    figure.suptitle("Observed vs Bayes-optimal confidence update (binned means ± SEM)")
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


def plot_switching(trials: pd.DataFrame, bins: int = 8) -> Figure:
    """P(change of mind) under opposite advice against initial confidence, a line per accuracy.

    A panel per model x display. The normative observer switches iff a > c, a step at c = a;
    the paper finds sigmoids with inflections far to the right of it.
    """
    rows = answered(trials)
    rows = rows.loc[(rows["advice"] == "opposite") & rows["initial_confidence"].notna()]
    models = _models(trials)
    displays = canonical_order(trials["display"], DISPLAYS)
    figure, axes = _grid(len(models), len(displays))
    accuracies = sorted({float(a) for a in rows["accuracy"].dropna()})
    colours = _sequential(len(accuracies))
    for r, model in enumerate(models):
        for col, display in enumerate(displays):
            ax = axes[r, col]
            cells = rows.loc[(rows["model"] == model) & (rows["display"] == display)]
            if cells.empty:
                _empty_panel(ax, "no opposite-advice trials with confidence")
                continue
            for accuracy, colour in zip(accuracies, colours, strict=True):
                cell = cells.loc[np.isclose(cells["accuracy"], accuracy)]
                if cell.empty:
                    continue
                points = _binned(
                    pd.DataFrame(
                        {
                            "bayes_update": cell["initial_confidence"],
                            "observed_update": cell["changed_mind"].astype(float),
                        }
                    ),
                    bins,
                )
                ax.plot(
                    points["x"],
                    points["y"] * 100,
                    marker="o",
                    markersize=3,
                    color=colour,
                    label=f"{accuracy:.0%}",
                )
            ax.set_ylim(-3, 103)
            ax.set_xlabel("initial confidence in the chosen option")
            if col == 0:
                ax.set_ylabel("change of mind (%)")
            ax.set_title(f"{model} — {display}" if len(models) > 1 else f"display: {display}")
            ax.grid(alpha=0.3)
    _legend(figure, axes, "stated advice accuracy")
    figure.suptitle("Switching under opposite advice vs initial confidence (binned means)")
    return figure


def _sequential(n: int) -> list[str]:
    """n colours from light to dark blue (higher accuracy, darker line)."""
    start, end = np.array([0.62, 0.79, 0.88]), np.array([0.03, 0.19, 0.42])
    steps = np.linspace(0.0, 1.0, n) if n > 1 else np.array([1.0])
    return [
        "#{:02x}{:02x}{:02x}".format(*(255 * (start + t * (end - start))).astype(int))
        for t in steps
    ]


FIGURES: Final = {
    "com_by_accuracy.png": plot_com_by_accuracy,
    "confidence_change.png": plot_confidence_change,
    "updates_observed_vs_bayes.png": plot_updates,
    "switching_vs_confidence.png": plot_switching,
}
"""File name -> drawing function, in report order."""


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    # No "Software" text chunk: it names a URL, and the PNGs then depend on the data alone.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def render_figures(trials: pd.DataFrame) -> dict[str, bytes]:
    """Every figure of FIGURES as PNG bytes, keyed by file name."""
    return {name: figure_png(draw(trials)) for name, draw in FIGURES.items()}
