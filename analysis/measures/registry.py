"""The measure registry: a measure declares itself once, and every output finds it here.

A measure is one module. Next to the function that computes it, the module declares a
`Measure`: the key it is known by (its summary.json key, `tables/<key>.csv` and
`Results.table(key)`), how its table is computed from the prepared trials, the caption the
report shows with it, and, optionally, a figure and rows of the terminal summary; then it calls
`register`. `compute_results` computes every registered measure, and summary.json, the CSV
tables, summary.md, the figures and report.html iterate the measures of the results, so a new
measure touches no other file:

    def final_confidence(trials, by=("display", "advice")):
        rows = ensure_prepared(trials)
        return cell_stats(rows, rows["final_prob_initial"], by)

    register(Measure(
        key="final_confidence",
        title="Final confidence",
        function=final_confidence,
        cells=("display", "advice"),        # computed as final_confidence(trials, cells)
        caption="Mean final probability of the initially chosen option.",
        figure=FigureSpec("final_confidence.png", "bars", "...", title="...", ylabel="..."),
    ))

A *cell measure* (`cells` set) is a mean per model x cell in `cell_stats`' shape: summary.json
nests its means by the cells (and, with `intervals`, its item-clustered errors and intervals
under `se_item` and `ci95`), and a report section it is not placed in shows it with models side
by side. Any other measure gives `compute` and, to enter summary.json, `summary`: the entries
it adds to a model's summary.

The built-in measures register when `analysis.measures` is imported, in the paper's order: the
order of the CSV tables, of summary.json's entries, of the figures and of the terminal table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import pandas as pd

from mindshift.analysis.data.prepare import Prepared

Scale = Literal["rate", "signed", "number", "ratio"]
"""How a measure's values read: a rate (shown in percent), a signed difference, a plain
number, or a ratio."""

Chart = Literal["bars", "accuracy_lines", "reliability", "switching", "updates", "trajectories"]
"""How a figure draws its measure (`analysis.render.figures`). Any cell measure can use the
first two: "bars" draws its display x advice cells, a panel per model; "accuracy_lines" its
display x advice x accuracy cells, a line per advice type against accuracy and a panel per
display. The others are the drawings of one built-in measure each ("trajectories": the
per-turn confidence of `analysis.measures.turns`)."""

Style = Literal["rate", "signed", "ratio", "estimate", "temperature"]
"""How a row of the terminal summary shows its value: "rate" 12.5 %; "signed" +0.12; "ratio"
2.50x; "estimate" +0.12 [+0.01, +0.23] (with the row's ci_low and ci_high); "temperature"
1.52 (yes) (the temperature and whether it was applied)."""


@dataclass(frozen=True)
class MeasureInput:
    """What every measure is computed from."""

    prepared: Prepared
    """The prepared trials, the completed stage-1 table and the fitted temperatures."""
    stage1: pd.DataFrame | None
    """The stage-1 calls as read (None: the run has no calls.jsonl)."""

    @property
    def trials(self) -> pd.DataFrame:
        """The prepared trials (`analysis.data.prepare`)."""
        return self.prepared.trials


class MeasureResults(Protocol):
    """What a measure's summary entries may read: every table computed, and the temperatures
    applied (`analysis.measures.results.Results` is one)."""

    @property
    def chosen(self) -> dict[str, float]: ...

    def table(self, key: str) -> pd.DataFrame: ...


SummaryEntries = Callable[[MeasureResults, str], Mapping[str, Any]]
"""(results, model id) -> the entries a measure adds to that model's summary.json entry."""


@dataclass(frozen=True)
class FigureSpec:
    """A measure's figure: its file, how it is drawn and what the report says under it."""

    file: str
    """The PNG's file name in the analysis directory."""
    chart: Chart
    caption: str
    """The sentence under the figure in the report."""
    title: str = ""
    """The figure's title ("bars" and "accuracy_lines")."""
    ylabel: str = ""
    """The label of its value axis ("bars" and "accuracy_lines")."""
    empty: str = "no data"
    """What a panel without any cell says ("bars")."""
    cites: tuple[Callable[..., Any], ...] = ()
    """The functions the caption names as computing it (default: the measure's)."""
    drawn_when: Callable[[MeasureResults], bool] | None = None
    """Whether the results call for this figure (None: every analysis draws it). A figure
    the report shows only for some runs says so here, so that no other run pays for
    drawing it."""

    def drawn_for(self, results: MeasureResults) -> bool:
        """Whether an analysis of `results` draws this figure."""
        return self.drawn_when is None or self.drawn_when(results)


@dataclass(frozen=True)
class HeadlineRow:
    """A row of the terminal summary (summary.md): one number per model from the measure's
    table."""

    label: str
    where: tuple[tuple[str, str], ...] = ()
    """The cell: (column, value) pairs the model's row must match (the first match is shown)."""
    column: str = "mean"
    style: Style = "signed"


@dataclass(frozen=True)
class Measure:
    """A measure, as every output finds it (see the module doc)."""

    key: str
    """Its name everywhere: summary.json key (cell measures), `tables/<key>.csv`,
    `Results.table(key)`."""
    title: str
    """A short name, the heading of its part of the report."""
    function: Callable[..., Any]
    """The public function that computes it, cited under it in the report."""
    caption: str
    """What its numbers are, one or two sentences for the report."""
    compute: Callable[[MeasureInput], pd.DataFrame] | None = None
    """Its table from the prepared trials; None for a cell measure: `function(trials, cells)`."""
    arguments: str = ""
    """How `function` is called, cited with its name (cell measures: "by=<cells>")."""
    cells: tuple[str, ...] = ()
    """The factors of a cell measure's cells (see the module doc); () for any other."""
    intervals: bool = False
    """A cell measure whose errors and intervals summary.json also gives (se_item, ci95)."""
    summary: SummaryEntries | None = None
    """The entries a measure that is not a cell measure adds to summary.json (None: none)."""
    csv: bool = True
    """Whether its table is written as `tables/<key>.csv`."""
    scale: Scale = "number"
    figure: FigureSpec | None = None
    headline: tuple[HeadlineRow, ...] = ()
    """Its rows of the terminal summary, if any."""
    factorial: bool = False
    """Defined only for change-of-mind's display x advice design: the report and the terminal
    summary leave it out for other protocols (summary.json and the tables keep it)."""

    def __post_init__(self) -> None:
        if not self.key.isidentifier():
            raise ValueError(f"measure key {self.key!r} is not a name (letters, digits, _)")
        if self.compute is None and not self.cells:
            raise ValueError(f"measure {self.key!r} gives neither `compute` nor `cells`")
        if self.cells and self.summary is not None:
            raise ValueError(f"cell measure {self.key!r} is summarised by its cells, not `summary`")
        if self.intervals and not self.cells:
            raise ValueError(f"measure {self.key!r}: only a cell measure has `intervals`")

    @property
    def source(self) -> str:
        """The function that computes it, as the report cites it."""
        arguments = self.arguments or (f"by={', '.join(self.cells)}" if self.cells else "")
        return cited(self.function) + (f"({arguments})" if arguments else "")

    def table_of(self, data: MeasureInput) -> pd.DataFrame:
        """Its table (a cell measure's from `function(trials, cells)`)."""
        if self.compute is not None:
            return self.compute(data)
        table: pd.DataFrame = self.function(data.trials, self.cells)
        return table


def cited(function: Callable[..., Any]) -> str:
    """A function's dotted name (`analysis.measures.oucs.oucs`), as the report cites it."""
    return f"{function.__module__}.{function.__qualname__}"


_REGISTERED: dict[str, Measure] = {}

RESERVED: Final = frozenset({"fit"})
"""Keys taken by what every analysis computes besides the registered measures: the Tobit
update fit's table (`analysis.measures.results`)."""


def register(measure: Measure) -> Measure:
    """Add `measure` to the registry (after the ones registered before it); returns it.

    A key is registered once: a second measure with the same key is a ValueError.
    """
    if measure.key in _REGISTERED or measure.key in RESERVED:
        raise ValueError(f"a measure {measure.key!r} is registered already")
    _REGISTERED[measure.key] = measure
    return measure


def unregister(key: str) -> None:
    """Remove the measure `key` (a KeyError if there is none)."""
    del _REGISTERED[key]


def measures() -> tuple[Measure, ...]:
    """Every registered measure, in the order they were registered."""
    return tuple(_REGISTERED.values())


def measure(key: str) -> Measure:
    """The registered measure `key`."""
    try:
        return _REGISTERED[key]
    except KeyError:
        raise KeyError(f"no measure {key!r} is registered") from None


def on_trials(function: Callable[..., pd.DataFrame]) -> Callable[[MeasureInput], pd.DataFrame]:
    """`compute` for a measure that is a function of the prepared trials alone."""

    def compute(data: MeasureInput) -> pd.DataFrame:
        return function(data.trials)

    return compute


def model_rows(table: pd.DataFrame, model: str) -> pd.DataFrame:
    """The rows of a measure's table that belong to `model`."""
    return table.loc[table["model"] == model]
