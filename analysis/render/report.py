"""report.html: the analysis as one self-contained page, the answer first, then the paper's order.

Sections: key results (per model the headline estimates with their intervals and readout:
the choice-supportive effect, the overweighting of contrary advice, the fitted weights; for a
protocol without change-of-mind's display x advice x accuracy design, each condition's
change-of-mind rate and confidence change); design (the protocol by its own name and summary,
`analysis.render.context`); accuracy and calibration; change of mind; confidence change;
comparison with the Bayesian observer; the fitted model; by condition (and sequences of
advisors; turn by turn for a protocol of more than two turns); further measures; one example
trial per condition, with the way to the run's trial browser (`mindshift view`); methods.
Every table names, in its caption, the confidence readout that produced each model's numbers
(summary.json's `models.<id>.readout`, `analysis.render.readouts`), and says under it, in a
small caption, which analysis function computed it (`Results.sources`; figure captions from
the measures' `FigureSpec`), so every number can be recomputed in a notebook. The paper's
measures (PLACED) are laid out by the sections written for them; any other registered
measure (`analysis.measures.registry`) gets the "further measures" section: its caption, its
table, its source and its figure. Tables put models side by side (one column per model), so a
run with several models — or `mindshift compare` over several runs — reads as a comparison.

Self-contained means it opens offline and can be mailed or archived alone: styles are inline,
figures are base64 data URIs, and there are no scripts and no external links (the one link,
to the trial browser beside it in the run directory, is relative). Rendering is a pure
function of the results, the figures' PNG bytes and the run's context. Header names are
plain text, escaped once by `_table`; cells are HTML, escaped by whoever formats them.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pandas as pd

from mindshift.analysis.beta.fitted_model import ModelTable
from mindshift.analysis.data.schema import ADVICE_TYPES, DISPLAYS, TWO_TURN, has_advice_design
from mindshift.analysis.data.temperature import MIN_CALIBRATION, SOURCE_SPLIT
from mindshift.analysis.engines.clustered import MIN_ITEMS
from mindshift.analysis.measures.calibration import ECE_BINS
from mindshift.analysis.measures.cells import records
from mindshift.analysis.measures.com_regression import DISPLAY_TERM, com_logistic
from mindshift.analysis.measures.fit import fit_update_model
from mindshift.analysis.measures.oucs import oucs_paper_table
from mindshift.analysis.measures.overweighting import POOLED
from mindshift.analysis.measures.registry import Measure, Scale, cited
from mindshift.analysis.measures.results import Results
from mindshift.analysis.measures.switching import BINS, MIN_TRIALS
from mindshift.analysis.measures.turns import beyond_two_turns, last_turn
from mindshift.analysis.render.context import Protocol, ReportContext, ViewerLink
from mindshift.analysis.render.figures import ESTIMATES_FILE
from mindshift.analysis.render.readouts import model_readouts
from mindshift.harness.record import CallRecord
from mindshift.harness.transcripts import Transcript
from mindshift.paradigms.change_of_mind import ChangeOfMind

ESTIMATES_CAPTION: Final = (
    "The headline estimates with 95 % intervals clustered by item: the display coefficient of "
    "the change-of-mind regression and the three update weights."
)

PLACED: Final = frozenset(
    {
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
    }
)
"""The measures the report's own sections lay out, in the paper's order and words. Every
other measure of the results (a measure registered since) gets the "Further measures"
section: its caption, its table with models side by side, its source and its figure."""

CHANGE_OF_MIND: Final = ChangeOfMind.name
"""The protocol whose display x advice x accuracy design the report's own sections follow."""

_SCALE_FORMAT: Final[dict[Scale, str]] = {
    "rate": "pct",
    "signed": "signed",
    "number": "num",
    "ratio": "ratio",
}


def figure_captions(results: Results) -> dict[str, tuple[str, str]]:
    """File name -> (caption, the functions that computed it) of every figure of `results`."""
    captions = {
        m.figure.file: (
            m.figure.caption,
            ", ".join(cited(function) for function in m.figure.cites or (m.function,)),
        )
        for m in results.measures
        if m.figure is not None
    }
    captions[ESTIMATES_FILE] = (
        ESTIMATES_CAPTION,
        f"{cited(com_logistic)}, {cited(fit_update_model)}",
    )
    return captions


_STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1180px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2.2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .4em 0 .2em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; white-space: nowrap; }
th { background: #f3f6f9; white-space: normal; vertical-align: bottom; min-width: 3em; }
td.label, th.label { text-align: left; }
span.wrap { white-space: normal; }
tr.key td { background: #fff8e1; font-weight: 600; }
.src { font-size: .8em; color: #666; margin: .1em 0 1.2em; }
.src code { font-size: .95em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .88em; color: #555; }
.note { font-size: .9em; color: #444; background: #f8f8f8; padding: .6em 1em; }
.lead { font-size: .95em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; }
dl.facts dt { font-weight: 600; }
details { margin: .4em 0 1em; }
summary { cursor: pointer; color: #0072B2; }
.scroll { overflow-x: auto; max-width: 100%; }
caption.readout { caption-side: top; text-align: left; font-size: .8em; color: #555;
                  white-space: nowrap; padding-bottom: .15em; }
details .msg pre, .msg pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: .1em 0 .4em;
       font-size: .85em; background: #f8f8f8; padding: .3em .5em; }
ol.turns { padding-left: 1.4em; }
p.turn { margin: .5em 0 .2em; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
"""


def _fmt(value: Any, kind: str = "num") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "&infin;" if value > 0 else "&minus;&infin;"
        if abs(value) < 5e-4 and kind != "num":
            value = 0.0  # no "-0.000" for a value that only rounding made negative
        if kind == "pct":
            return f"{100 * value:.1f} %"
        if kind == "ratio":
            return f"{value:.2f}&times;"
        if kind == "signed":
            return f"{value:+.3f}"
        if kind == "p":
            return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"
        # Tiny but non-zero (a noiseless agent's sigma, its SEs) would all print as 0.000.
        return f"{value:.1e}" if 0.0 < abs(value) < 1e-3 else f"{value:.3f}"
    return html.escape(str(value))


def _ci(mean: Any, low: Any, high: Any, kind: str = "num") -> str:
    """A value with its 95 % interval: "13.1 % [10.2, 16.0]" (rates in percent)."""
    text = _fmt(mean, kind)
    if not all(isinstance(v, float) and math.isfinite(v) for v in (mean, low, high)):
        return text
    if kind == "pct":
        return f"{text} <small>[{100 * low:.1f}, {100 * high:.1f}]</small>"
    digits = 3 if kind in ("signed", "num") else 2
    return f"{text} <small>[{low:.{digits}f}, {high:.{digits}f}]</small>"


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    label_cols: int = 1,
    key_rows: Iterable[int] = (),
    *,
    readout: str,
) -> str:
    """An HTML table; cells are given already formatted and escaped, header names as plain
    text (escaped here, once). `readout` is its caption, saying which readout produced its
    numbers (`_readouts`): every table names it."""
    keys = set(key_rows)
    head = "".join(
        f'<th class="label">{html.escape(h)}</th>'
        if i < label_cols
        else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        ('<tr class="key">' if r in keys else "<tr>")
        + "".join(
            f'<td class="label">{cell}</td>' if i < label_cols else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for r, row in enumerate(rows)
    )
    table = (
        f'<table><caption class="readout">{readout}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
    return f'<div class="scroll">{table}</div>'


def _readouts(results: Results, models: Sequence[str] | None = None) -> str:
    """A table's caption: the readout that produced each model's numbers (summary.json's
    `models.<id>.readout`), for `models` (default: every model of the results)."""
    readouts = model_readouts(results)
    shown = [m for m in (results.models if models is None else models) if m in readouts]
    if not shown:
        return "Readout: —"
    kinds = {readouts[m] for m in shown}
    if len(kinds) == 1 and len(shown) > 1:
        return f"Readout: {html.escape(kinds.pop())} (every model)"
    return "Readout: " + "; ".join(
        f"<code>{html.escape(m)}</code> {html.escape(readouts[m])}" for m in shown
    )


def _source(*names: str) -> str:
    cited = ", ".join(f"<code>{html.escape(name)}</code>" for name in names)
    return f'<p class="src">Computed by {cited}.</p>'


def _models_wide(
    table: pd.DataFrame, keys: Sequence[str], models: Sequence[str], kind: str
) -> tuple[list[str], list[list[str]]]:
    """Rows = the cells named by `keys` (canonical order), columns = models: mean [CI]."""
    header = [*keys, *models]
    if table.empty:
        return header, []
    cells: dict[tuple[str, ...], dict[str, str]] = {}
    for row in records(table):
        cell = tuple(_level(row[key], key) for key in keys)
        cells.setdefault(cell, {})[str(row["model"])] = _ci(
            row["mean"], row["ci_low"], row["ci_high"], kind
        )
    order = sorted(cells, key=lambda cell: _rank(cell, keys))
    return header, [
        [*map(html.escape, cell), *(cells[cell].get(m, "—") for m in models)] for cell in order
    ]


def _level(value: Any, key: str) -> str:
    return f"{100 * float(value):g} %" if key == "accuracy" else str(value)


def _rank(cell: tuple[str, ...], keys: Sequence[str]) -> tuple[Any, ...]:
    ranks: list[Any] = []
    for value, key in zip(cell, keys, strict=True):
        if key == "display":
            ranks.append(DISPLAYS.index(value) if value in DISPLAYS else len(DISPLAYS))
        elif key == "advice":
            ranks.append(ADVICE_TYPES.index(value) if value in ADVICE_TYPES else 9)
        elif key == "accuracy":
            ranks.append(float(value.rstrip(" %")))
        else:
            ranks.append(value)
    return tuple(ranks)


def _fit_notes(table: pd.DataFrame) -> str:
    """Why a model's fit shows "—": its `note` column, once per model (empty when none)."""
    if "note" not in table.columns or table.empty:
        return ""
    notes = dict.fromkeys(
        (str(r["model"]), str(r["note"]))
        for r in records(table)
        if isinstance(r["note"], str) and r["note"]
    )
    if not notes:
        return ""
    lines = "; ".join(f"<code>{html.escape(m)}</code>: {html.escape(n)}" for m, n in notes)
    return f'<p class="note">Not estimated (shown as —) — {lines}.</p>'


def _small_design_note(design: pd.DataFrame) -> str:
    """A warning when a model has too few questions for the item-clustered intervals."""
    if design.empty:
        return ""
    small = [
        f"<code>{html.escape(str(r['model']))}</code> ({_fmt(int(r['items']))})"
        for r in records(design)
        if int(r["items"]) < MIN_ITEMS
    ]
    if not small:
        return ""
    return (
        '<p class="note">Too few questions for intervals and fits: '
        + ", ".join(small)
        + f". Intervals clustered by question, the regressions and the update fit need at "
        f"least {MIN_ITEMS} questions; where they are missing the tables show —.</p>"
    )


def _figure(results: Results, figures: Mapping[str, bytes], name: str) -> str:
    png = figures.get(name)
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    caption, source = figure_captions(results).get(name, (name, ""))
    cited = (
        f' <span class="src">Computed by <code>{html.escape(source)}</code>.</span>'
        if source
        else ""
    )
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}{cited}</figcaption></figure>"
    )


def _fit_cell(results: Results, model: str, term: str) -> str:
    """One term of a model's update fit, with its item-clustered 95 % interval."""
    fit = results.fit
    hit = fit.loc[(fit["model"] == model) & (fit["term"] == term)] if not fit.empty else fit
    if hit.empty:
        return "—"
    row = records(hit)[0]
    return _ci(_float(row["estimate"]), _float(row["ci_low"]), _float(row["ci_high"]))


def _key_results_section(results: Results, main_design: bool) -> str:
    """The answer first: per model, the headline estimates with their intervals and the
    readout that produced them (details, methods and the design follow)."""
    readouts = model_readouts(results)
    if main_design:
        support = {str(r["model"]): r for r in records(results.choice_support)}
        rows = []
        for model in results.models:
            effect = support.get(model)
            _, opposite = _version_values(results, model, "overweighting")
            rows.append(
                [
                    html.escape(model),
                    html.escape(readouts.get(model, "—")),
                    "—"
                    if effect is None
                    else _ci(
                        _float(effect["estimate"]),
                        _float(effect["ci_low"]),
                        _float(effect["ci_high"]),
                        "signed",
                    ),
                    _fmt(opposite, "ratio"),
                    _fit_cell(results, model, "w_opposite"),
                    _fit_cell(results, model, "w_same"),
                    _fit_cell(results, model, "choice_support"),
                ]
            )
        table = _table(
            [
                "model",
                "readout",
                "choice-supportive effect (shown \N{MINUS SIGN} hidden, neutral advice)",
                "overweighting of contrary advice (paper's ratio)",
                "w_opposite (fit)",
                "w_same (fit)",
                "choice_support (fit, log-odds)",
            ],
            rows,
            2,
            readout=_readouts(results),
        )
        lead = (
            '<p class="lead">Per model, with 95 % intervals clustered by question: the '
            "choice-supportive effect (mean confidence change under neutral advice, own answer "
            "shown minus hidden; 0 for the Bayesian observer), the overweighting of advice "
            "against the initial answer (observed over Bayes update; 1&times; for the Bayesian "
            "observer) and the fitted weights of the update model (w_same = w_opposite = 1 and "
            "choice_support = 0 for the Bayesian observer). The sections below give every "
            "number behind them.</p>"
        )
        sources = _source(
            results.sources["choice_support"],
            results.sources["overweighting"],
            results.sources["fit"],
        )
        return "<h2>Key results</h2>" + lead + table + _fit_notes(results.fit) + sources
    rows = []
    for r in records(results.by_condition):
        model, turn = str(r["model"]), int(r["turn"])
        rows.append(
            [
                html.escape(model),
                html.escape(readouts.get(model, "—")),
                html.escape(str(r["condition"]) + (f" (turn {turn})" if turn != TWO_TURN else "")),
                _ci(
                    _float(r["com_rate"]), _float(r["com_ci_low"]), _float(r["com_ci_high"]), "pct"
                ),
                _ci(
                    _float(r["confidence_change"]),
                    _float(r["change_ci_low"]),
                    _float(r["change_ci_high"]),
                    "signed",
                ),
            ]
        )
    table = _table(
        ["model", "readout", "condition", "change of mind", "confidence change"],
        rows,
        3,
        readout=_readouts(results),
    )
    return (
        "<h2>Key results</h2>"
        '<p class="lead">Per model and condition, at the last turn, with 95 % intervals '
        "clustered by question: how often the final answer differs from the first, and the "
        "change in the probability of the first answer (final minus initial).</p>"
        + table
        + _source(results.sources["by_condition"])
    )


def _protocol_intro(protocol: Protocol | None) -> str:
    """The protocol by its own name and its own summary, where the run says which it was."""
    if protocol is None:
        return ""
    about = f": {_inline_code(protocol.description)}" if protocol.description else ""
    return f'<p class="lead">Protocol <b>{html.escape(protocol.name)}</b>{about}</p>'


def _inline_code(text: str) -> str:
    """Plain text escaped, its `backticked` names set as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _design_lead(results: Results, main_design: bool, protocol: Protocol | None) -> str:
    """What the design section says the run did: change-of-mind's factorial design, or the
    turns of another protocol (by its own name, and why the factorial sections are left
    out when its trials lack those factors)."""
    own = protocol is not None and protocol.name != CHANGE_OF_MIND
    if main_design and not own:
        return _protocol_intro(protocol) + (
            '<p class="lead">Each question is answered once (stage 1); then, in a fresh '
            "context, it is asked again under every condition — the model's own answer shown, "
            "hidden or attributed to another model, and advice that agrees, opposes or is "
            "neutral, from an advisor of stated accuracy (stage 2). Counts below are read back "
            "from the data.</p>"
        )
    last = last_turn(results)
    turns = (
        f"then asked again under every condition, turn after turn (up to turn {last}), each "
        "turn built from the answers before it"
        if last > TWO_TURN
        else "then asked again under every condition"
    )
    factorial = (
        " Its trials have display, advice and accuracy factors, so the sections on them follow."
        if main_design
        else " No trial of this run has an advice factor (the display, advice and accuracy "
        "columns of the advice protocols, <code>paradigms.columns.AdviceColumns</code>), so "
        "the sections that read those factors are left out (summary.json keeps their keys, "
        "empty); the run is reported by condition"
        + (" and turn by turn" if last > TWO_TURN else "")
        + "."
    )
    return _protocol_intro(protocol) + (
        f'<p class="lead">Each question is answered once (turn 1); {turns}.{factorial} '
        "Counts below are read back from the data; trials are answered later turns. What "
        "each condition says to the model is in the example trials (one per condition).</p>"
    )


def _wrapping(text: str) -> str:
    """A cell's text that may wrap (cells keep their numbers on one line; a list of levels
    may take several, so that the design table fits a 1,280-px window)."""
    return f'<span class="wrap">{html.escape(text)}</span>'


def _design_section(
    results: Results, facts: Mapping[str, str], main_design: bool, protocol: Protocol | None
) -> str:
    rows = [
        [
            html.escape(str(r["model"])),
            _fmt(int(r["items"])),
            _fmt(int(r["repeats"])),
            _wrapping(str(r["displays"])),
            _wrapping(str(r["advice"])),
            _wrapping(str(r["accuracies"])),
            _fmt(int(r["conditions"])),
            _fmt(int(r["trials"])),
            _fmt(int(r["trials_with_confidence"])),
            _fmt(int(r["calibration_items"])),
        ]
        for r in records(results.design)
    ]
    header = [
        "model",
        "items",
        "repeats",
        "displays",
        "advice",
        "accuracies",
        "conditions",
        "trials",
        "with confidences",
        "calibration items",
    ]
    fact_rows = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items()
    )
    return (
        "<h2>Design</h2>"
        + (f'<dl class="facts">{fact_rows}</dl>' if fact_rows else "")
        + _design_lead(results, main_design, protocol)
        + _table(header, rows, readout=_readouts(results))
        + _small_design_note(results.design)
        + _source(results.sources["design"])
    )


def _calibration_section(results: Results, figures: Mapping[str, bytes]) -> str:
    accuracy = results.accuracy
    rows: list[list[str]] = []
    for fit in records(results.temperatures):
        model = str(fit["model"])
        applied = model in results.chosen
        rows.append(
            [
                html.escape(model),
                _fmt(
                    accuracy.at[model, "accuracy_initial"] if model in accuracy.index else None,
                    "pct",
                ),
                _ci(float(fit["temperature"]), float(fit["ci_low"]), float(fit["ci_high"]))
                if bool(fit["usable"])
                else f"{_fmt(float(fit['temperature']))} (not usable)",
                html.escape(str(fit["source"])),
                _fmt(int(fit["n"])),
                "calibrated" if applied else "raw",
            ]
        )
    table = _table(
        [
            "model",
            "initial accuracy",
            "temperature T [95 % CI]",
            "fitted on",
            "answers",
            "confidences used",
        ],
        rows,
        readout=_readouts(results),
    )
    metrics = [
        [
            html.escape(str(m["model"])),
            html.escape(str(m["data"])),
            html.escape(str(m["scale"])),
            _fmt(int(m["n"])),
            _fmt(float(m["accuracy"]), "pct"),
            _fmt(float(m["mean_confidence"]), "pct"),
            _fmt(float(m["ece"])),
            _fmt(float(m["brier"])),
            _fmt(float(m["auroc"])),
            _fmt(float(m["nll"])),
        ]
        for m in records(results.calibration)
    ]
    metric_table = _table(
        [
            "model",
            "answers of",
            "scale",
            "n",
            "accuracy",
            "mean confidence",
            "ECE",
            "Brier",
            "AUROC",
            "NLL",
        ],
        metrics,
        3,
        readout=_readouts(results),
    )
    mode = {
        "auto": "calibrated for models with a calibration split, raw otherwise",
        "raw": "raw for every model (--prior raw)",
        "calibrated": "calibrated for every model with a usable temperature (--prior calibrated)",
    }[results.prior]
    return (
        "<h2>Accuracy and calibration</h2>"
        f'<p class="lead">Confidence is the probability of the given answer as each '
        f"model's readout gives it (named under every table): logprobs read it from the "
        f"option-label tokens, sampling as the share of N sampled answers, verbal and "
        f"verbal-2stage as the confidence the model states, ptrue from its judgement of "
        f"its own answer. Temperature scaling divides the option logits by T (T &gt; 1: "
        f"the raw readout was overconfident). Prior used for the Bayes comparison: "
        f"<b>{html.escape(mode)}</b>; a temperature, when applied, scales both turns' "
        f"confidences. A model without a calibration split is fitted on its main items "
        f"(in-sample); fewer than {MIN_CALIBRATION} answers, or a temperature at the end of "
        f"its search range, is not usable. Intervals on the calibrated scale treat T as "
        f"known.</p>"
        + table
        + _source(results.sources["accuracy"], results.sources["calibration_temperature"])
        + metric_table
        + f'<p class="note">ECE: {ECE_BINS} equal-width confidence bins over [0, 1]; Brier: '
        "mean squared difference between confidence and correctness; AUROC: confidence as a "
        "score for correct against wrong answers; NLL: mean negative log-probability of the "
        "correct option. Rows on the main items of a model calibrated on its split are an "
        f"out-of-sample check (fitted on: {html.escape(SOURCE_SPLIT)}).</p>"
        + _source(results.sources["calibration_metrics"])
        + _figure(results, figures, "calibration_reliability.png")
    )


def _com_section(results: Results, figures: Mapping[str, bytes]) -> str:
    models = results.models
    header, rows = _models_wide(results.com, ["display"], models, "pct")
    by_display = _table(header, rows, 1, readout=_readouts(results))
    header, rows = _models_wide(results.com_advice, ["display", "advice"], models, "pct")
    by_advice = _table(header, rows, 2, readout=_readouts(results))
    reg = results.com_regression
    terms = list(dict.fromkeys(str(t) for t in reg["term"]))
    reg_rows: list[list[str]] = []
    for term in terms:
        cells = []
        for model in models:
            hit = reg.loc[(reg["model"] == model) & (reg["term"] == term)]
            if hit.empty:
                cells.append("—")
                continue
            row = records(hit)[0]
            if not math.isfinite(_float(row["estimate"])):
                cells.append("—")
                continue
            flag = " (separated)" if bool(row["separated"]) else ""
            cells.append(
                _ci(float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"]), "signed")
                + f" <small>p {_fmt(float(row['p_value']), 'p')}</small>{flag}"
            )
        reg_rows.append([html.escape(term), *cells])
    key = [i for i, term in enumerate(terms) if term == DISPLAY_TERM]
    regression = _table(["term (log-odds)", *models], reg_rows, 1, key, readout=_readouts(results))
    switching = [
        [
            html.escape(str(r["model"])),
            html.escape(str(r["display"])),
            f"{100 * float(r['accuracy']):g} %",
            _fmt(int(r["n"])),
            _fmt(float(r["switch_rate"]), "pct"),
            _ci(
                float(r["inflection"]),
                float(r["inflection_ci_low"]),
                float(r["inflection_ci_high"]),
            ),
            _fmt(float(r["normative_inflection"])),
            _fmt(float(r["sigmoid_slope"])),
            _fmt(float(r["sigmoid_r2"])),
            _fmt(float(r["linear_slope"])),
            _fmt(float(r["linear_r2"])),
        ]
        for r in records(results.switching)
    ]
    switching_table = _table(
        [
            "model",
            "display",
            "accuracy a",
            "trials",
            "switch rate",
            "inflection c0 [95 % CI]",
            "normative (c = a)",
            "sigmoid slope",
            "sigmoid R²",
            "linear slope",
            "linear R²",
        ],
        switching,
        3,
        readout=_readouts(results),
    )
    return (
        "<h2>Change of mind</h2>"
        '<p class="lead">How often the final answer differs from the initial one. All '
        "intervals are 95 % and clustered by question (each question recurs in every "
        "condition).</p>"
        "<h3>By display</h3>"
        + by_display
        + _source(results.sources["com_rate"])
        + "<h3>By display and advice</h3>"
        + by_advice
        + _source(results.sources["com_rate_by_advice"])
        + "<h3>Logistic regression of change of mind</h3>"
        '<p class="lead">logit P(change) on display (reference: hidden), advice (reference: '
        "neutral) and stated accuracy (per 10 points, centred at 75 %); the highlighted row "
        "is the display coefficient (paper, Gemma 3 12B: &minus;3.4).</p>"
        + regression
        + _fit_notes(reg)
        + _source(results.sources["com_regression"])
        + _figure(results, figures, "com_by_accuracy.png")
        + "<h3>Switching curves (opposite advice)</h3>"
        f'<p class="lead">Per stated accuracy, a sigmoid and a line fitted to the trials; '
        f"R² on {BINS} quantile bins of initial confidence. The ideal observer switches iff "
        "a &gt; c, a step at c = a: an inflection far to its right means switching at "
        "confidences the evidence does not justify (paper, hidden: 0.77 / 0.92 / 0.96 at "
        "a = 50 / 60 / 70 %).</p>"
        + f"<details><summary>Table: the fits, per model, display and accuracy "
        f"({len(switching)} rows; an inflection outside [0, 1] is an extrapolation; too few "
        f"trials — fewer than {MIN_TRIALS} in a cell — give no curve: —)</summary>"
        + switching_table
        + "</details>"
        + _source(results.sources["switching"])
        + _figure(results, figures, "switching_vs_confidence.png")
    )


def _change_section(results: Results, figures: Mapping[str, bytes]) -> str:
    models = results.models
    header, rows = _models_wide(results.change, ["display", "advice"], models, "signed")
    support = [
        [
            html.escape(str(r["model"])),
            _ci(float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"]), "signed"),
            _fmt(float(r["p_value"]), "p"),
            _fmt(int(r["n_items"])),
        ]
        for r in records(results.choice_support)
    ]
    return (
        "<h2>Confidence change</h2>"
        '<p class="lead">Final minus initial probability of the initially chosen option, on '
        "the confidence scale of section 2.</p>"
        + _table(header, rows, 2, readout=_readouts(results))
        + _source(results.sources["confidence_change"])
        + "<h3>Choice-supportive bias</h3>"
        '<p class="lead">Mean confidence change under neutral advice, shown minus hidden '
        "(paper, Gemma 3 12B: +0.21): seeing its own answer makes the model more confident "
        "in it without any new evidence.</p>"
        + _table(
            ["model", "shown \N{MINUS SIGN} hidden [95 % CI]", "p", "items"],
            support,
            readout=_readouts(results),
        )
        + _source(results.sources["choice_support"])
        + _figure(results, figures, "confidence_change.png")
    )


def _oucs_tables(results: Results) -> str:
    parts: list[str] = []
    wide = {name: oucs_paper_table(results.oucs, name) for name in ("mean", "ci_low", "ci_high")}
    by_accuracy = {
        name: oucs_paper_table(results.oucs_accuracy, name)
        for name in ("mean", "ci_low", "ci_high")
    }
    for model in results.models:
        for label, tables in (("", wide), (" by stated accuracy", by_accuracy)):
            mean = tables["mean"]
            if mean.empty or model not in mean.index.get_level_values(0):
                continue
            rows: list[list[str]] = []
            for key in mean.loc[[model]].index:
                cells = [
                    _ci(
                        _cell(tables["mean"], key, d),
                        _cell(tables["ci_low"], key, d),
                        _cell(tables["ci_high"], key, d),
                        "signed",
                    )
                    for d in mean.columns
                ]
                labels = [html.escape(str(key[1]))]
                if len(key) > 2:
                    labels.append(f"{100 * float(key[2]):g} %")
                rows.append([*labels, *cells])
            header = ["advice", *(["accuracy"] if label else []), *map(str, mean.columns)]
            table = _table(
                header,
                rows,
                len(header) - len(mean.columns),
                readout=_readouts(results, [model]),
            )
            title = f"OUCS, <code>{html.escape(model)}</code>{label}"
            if label:
                parts.append(f"<details><summary>{title}</summary>{table}</details>")
            else:
                parts.append(f"<h3>{title}</h3>{table}")
    return "".join(parts)


def _cell(table: pd.DataFrame, key: Any, column: Any) -> float:
    """`table.at[key, column]` as a float, NaN where the pivot has no such row or column.

    A pivot drops a column whose values are all NaN: with one question, every interval is
    NaN, so the interval tables lack columns the mean table has.
    """
    if key not in table.index or column not in table.columns:
        return float("nan")
    return _float(table.at[key, column])


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


_VERSIONS: Final = (
    ("overweighting", "paper: probability scale, pooled shown+hidden, shown+opposite corrected"),
    ("overweighting_median", "paper's version, trial-wise median"),
    ("overweighting_hidden", "journal: hidden trials alone"),
    ("overweighting_logodds", "log-odds scale, every shown trial corrected"),
    ("fit", "Tobit update fit: w_same, w_opposite (the weights' estimator)"),
)


def _pooled_displays(results: Results, model: str, advice: str) -> tuple[str, ...]:
    """The displays (of shown and hidden) the pooled overweighting row of a model and advice
    holds: both, or the one its run has (the pooled row then repeats that display's row)."""
    table = results.overweighting
    held = set(
        table.loc[
            (table["model"] == model) & (table["advice"] == advice) & (table["display"] != POOLED),
            "display",
        ].astype(str)
    )
    return tuple(display for display in ("shown", "hidden") if display in held)


def _pooled_meaning(results: Results, model: str) -> str:
    """What the paper's version pools for a model, in words."""
    pools = _pooled_displays(results, model, "opposite") or _pooled_displays(results, model, "same")
    if len(pools) == 2:
        return "paper: probability scale, pooled shown+hidden, shown+opposite corrected"
    if pools:
        return f"paper: probability scale, {pools[0]} trials alone (no other display to pool)"
    return "paper: probability scale (no shown or hidden trials)"


def _version_values(results: Results, model: str, version: str) -> tuple[float, float]:
    """(same, opposite) of one overweighting version (or the fit's weights) for a model."""
    if version == "fit":
        fit = results.fits.get(model)
        return (fit.w_same, fit.w_opposite) if fit is not None else (math.nan, math.nan)
    if version == "overweighting_logodds":
        table, display, column = results.overweighting_logodds, POOLED, "ratio_of_sums"
    else:
        table = results.overweighting
        display = "hidden" if version == "overweighting_hidden" else POOLED
        column = "median_ratio" if version == "overweighting_median" else "ratio_of_sums"
    rows = table.loc[(table["model"] == model) & (table["display"] == display)]
    value = {str(r["advice"]): _float(r[column]) for r in records(rows)}
    return value.get("same", math.nan), value.get("opposite", math.nan)


def _versions_table(results: Results) -> str:
    """One table: every overweighting version beside the fit and the simulated truth."""
    rows: list[list[str]] = []
    for model in results.models:
        truth = results.truth.get(model, {})
        for version, meaning in _VERSIONS:
            if version == "overweighting":
                meaning = _pooled_meaning(results, model)
            same, opposite = _version_values(results, model, version)
            rows.append(
                [
                    html.escape(model),
                    html.escape(version),
                    html.escape(meaning),
                    _fmt(same, "ratio"),
                    _fmt(opposite, "ratio"),
                    _fmt(truth.get("w_same", math.nan), "ratio"),
                    _fmt(truth.get("w_opposite", math.nan), "ratio"),
                ]
            )
    return _table(
        ["model", "version", "what it is", "same", "opposite", "true w_same", "true w_opposite"],
        rows,
        3,
        readout=_readouts(results),
    )


def _clip_table(results: Results) -> str:
    """The cells the clip bites (a = 100 %) under the analysis's clip and the compared one."""
    table = results.clip_sensitivity
    if table.empty:
        return '<p class="note">No stated accuracy here is clipped (no a = 100 % trials).</p>'
    clips = list(dict.fromkeys(float(c) for c in table["bayes_clip"]))
    keys = ["model", "display", "advice", "accuracy"]
    rows: list[list[str]] = []
    for key, cell in table.groupby(keys, sort=False):
        by_clip = {float(r["bayes_clip"]): r for r in records(cell)}
        row = [html.escape(str(k)) for k in key[:3]] + [_fmt(_float(key[3]), "pct")]
        for name in ("oucs", "overweighting", "overweighting_logodds"):
            kind = "signed" if name == "oucs" else "ratio"
            row += [_fmt(_float(by_clip.get(c, {}).get(name)), kind) for c in clips]
        rows.append(row)
    labels = [f"clip {c:g}" + (" (exact)" if c == 0 else "") for c in clips]
    header = ["model", "display", "advice", "a"] + [
        f"{name}, {label}" for name in ("OUCS", "ratio", "log-odds ratio") for label in labels
    ]
    return _table(header, rows, 4, readout=_readouts(results))


def _bayes_section(results: Results, figures: Mapping[str, bytes]) -> str:
    rows: list[list[str]] = []
    key: list[int] = []
    for r in records(results.overweighting):
        model, display, advice = str(r["model"]), str(r["display"]), str(r["advice"])
        pools = _pooled_displays(results, model, advice)
        if display == POOLED and len(pools) < 2:
            continue  # it pools one display: the same numbers as that display's own row
        if display == POOLED or (len(pools) == 1 and display in pools):
            key.append(len(rows))
        rows.append(
            [
                html.escape(model),
                html.escape(f"pooled ({'+'.join(pools)})" if display == POOLED else display),
                html.escape(str(r["advice"])),
                _fmt(float(r["ratio_of_sums"]), "ratio"),
                _fmt(float(r["median_ratio"]), "ratio"),
                _fmt(float(r["mean_ratio"]), "ratio"),
                _fmt(int(r["n"])),
            ]
        )
    corrections = ", ".join(
        f"{html.escape(str(m))} {_fmt(float(v), 'signed')}" for m, v in results.corrections.items()
    )
    clip = results.bayes_clip
    clip_rule = (
        f"c and a are clipped to [{clip:g}, {1 - clip:g}] before every logit (a = 100 % reads "
        f"as {1 - clip:g}; the simulated agent's rule)"
        if clip > 0
        else "exact Bayes (no clipping): a = 100 % moves the posterior to 1 (same) or 0 "
        "(opposite), a certain prior against certain contrary advice is undefined (left "
        "out), and log-odds measures leave out infinite updates"
    )
    return (
        "<h2>Comparison with the Bayesian observer</h2>"
        '<p class="lead">The ideal observer updates its initial confidence c by the advice: '
        "logit(post) = logit(c) + s·logit(a), s = +1 same, &minus;1 opposite, 0 neutral (with "
        "K options, the K-option update: a wrong advisor picks uniformly among the K&minus;1 "
        f"other options). Bayes clipping (--bayes-clip {clip:g}): {clip_rule}. OUCS = "
        "final confidence &minus; Bayes posterior (positive: overconfident in the initial choice). "
        "Tables in the layout of the paper's Tables 1-3 (paper, Gemma 3 12B: hidden/neutral "
        "+0.001, shown/neutral +0.210, hidden/opposite &minus;0.300, shown/opposite +0.086).</p>"
        + _oucs_tables(results)
        + _source(results.sources["oucs"], results.sources["oucs_by_accuracy"])
        + _figure(results, figures, "oucs.png")
        + "<h3>Overweighting of advice (observed / Bayes update)</h3>"
        '<p class="lead">Three versions, each a ratio of summed updates (summary.json '
        "<code>overweighting</code>, <code>overweighting_hidden</code>, "
        "<code>overweighting_logodds</code>). The paper's: probability scale, pooled over "
        "shown and hidden displays, the choice-supportive part (shown-neutral minus "
        f"hidden-neutral mean update: {corrections or '—'}) subtracted from shown + opposite "
        "updates only, never from shown + same (paper, Gemma 3 12B: opposite 2.58&times;, "
        "same 1.10&times;). The journal's: hidden trials alone (opposite 2.17, same 1.29). "
        "The log-odds one: logit(final) &minus; logit(c) over the Bayes log-odds update, the "
        "choice-supportive part measured in log-odds and subtracted from every shown trial. "
        "Accuracy 1/K (50 % for two options) is left out (no Bayes update). Every ratio is "
        "biased toward 1 where confidences reach the clip bounds (a clipped final confidence "
        "cannot show its whole update): on sim:bayes (choice_support 0.8, w_same 1, "
        "w_opposite 2.5, noise 0.3) outside checks measured a log-odds ratio of sums of "
        "0.94 / 1.92 for the true 1.0 / 2.5. The estimator that recovers the weights is the "
        "Tobit update fit (<code>fit</code>), shown beside the versions here and, for a "
        "simulated model whose config states its parameters, beside the truth.</p>"
        + _versions_table(results)
        + _source(
            results.sources["overweighting"],
            results.sources["overweighting_logodds"],
            results.sources["fit"],
        )
        + "<h4>By display</h4>"
        + '<p class="note">The paper\'s version per display; the answer-wrong and in-context '
        "controls follow the shown rule with their own neutral cell (their neutral update "
        "minus hidden-neutral) and are never pooled. Highlighted: the headline rows.</p>"
        + _table(
            ["model", "display", "advice", "ratio of sums", "median ratio", "mean ratio", "trials"],
            rows,
            3,
            key,
            readout=_readouts(results),
        )
        + _source(results.sources["overweighting"])
        + _figure(results, figures, "updates_observed_vs_bayes.png")
        + "<h3>How much the clip moves the a = 100 % cells</h3>"
        '<p class="lead">OUCS and overweighting ratios of the trials whose stated accuracy '
        "the clip changes, under this analysis's clip and the compared one (exact Bayes, or "
        "0.01 when this analysis is exact). Neutral cells move only through the clipping of "
        "c. A log-odds ratio is undefined (—) under exact Bayes at a = 100 %.</p>"
        + _clip_table(results)
        + _source(results.sources["clip_sensitivity"])
    )


def _model_table(part: ModelTable, results: Results) -> str:
    table = part.table
    if {"model", "term", "estimate"} <= set(table.columns) and "ci_low" in table.columns:
        models = results.models
        terms = list(dict.fromkeys(str(t) for t in table["term"]))
        rows = []
        for term in terms:
            cells = []
            for model in models:
                hit = table.loc[(table["model"] == model) & (table["term"] == term)]
                if hit.empty:
                    cells.append("—")
                    continue
                row = records(hit)[0]
                cells.append(
                    _ci(_float(row["estimate"]), _float(row["ci_low"]), _float(row["ci_high"]))
                )
            rows.append([html.escape(term), *cells])
        body = _table(["term", *models], rows, readout=_readouts(results))
    else:
        shown = table.reset_index() if table.index.name or any(table.index.names) else table
        body = _table(
            [str(c) for c in shown.columns],
            (
                [_fmt(v) if not isinstance(v, str) else html.escape(v) for v in row.values()]
                for row in records(shown)
            ),
            readout=_readouts(results),
        )
    note = f'<p class="note">{html.escape(part.note)}</p>' if part.note else ""
    notes = _fit_notes(table)
    return f"<h3>{html.escape(part.title)}</h3>{body}{note}{notes}{_source(part.source)}"


def _fitted_section(results: Results, figures: Mapping[str, bytes]) -> str:
    section = results.fitted_model
    return (
        "<h2>Fitted model</h2>"
        f'<p class="lead">{html.escape(section.reason[0].upper() + section.reason[1:])}. '
        "A model that follows the Bayesian observer has choice_support 0 and w_same = "
        "w_opposite = 1; the paper's models put more weight on opposing than on agreeing "
        "advice.</p>"
        + "".join(_model_table(part, results) for part in section.tables)
        + _figure(results, figures, "estimates.png")
    )


_METHODS: Final[tuple[tuple[bool, str], ...]] = (
    (
        False,
        "All measures are framed on the initially chosen option. Probabilities are clipped to "
        "[{low}, {high}] before every logit (accuracy 100 % reads as {high}).",
    ),
    (
        False,
        "Standard errors and 95 % intervals are clustered by question (CR1; Student's t with "
        "G &minus; 1 degrees of freedom, G the number of questions), because every question "
        "recurs in every condition; fits use the cluster-robust sandwich.",
    ),
    (
        False,
        "Bayes posterior: logit(post) = logit(c) + &Delta;, &Delta; the advice's log-odds "
        "shift of the initially chosen option: s·logit(a) for two options; with K options an "
        "advisor that is wrong picks uniformly among the K &minus; 1 other options, post_i = "
        "p_i L_i / &Sigma;_j p_j L_j (needs the advised option's turn-1 probability). A "
        "sequence of advisors adds its shifts. A condition without stated advice has no Bayes "
        "posterior (its OUCS is &mdash;).",
    ),
    (
        True,
        "Framing: on the initially chosen option; under the answer-wrong control, on the "
        "wrong answer displayed as the model's own (its stage-1 probability is the prior).",
    ),
    (
        True,
        "Overweighting = observed update / Bayes update for same and opposite advice, "
        "accuracy 1/K (50 % for two options) excluded, ratio of sums. Paper's version: "
        "probability scale, the choice-support part removed from shown (and own-answer "
        "control) + opposite updates only. Journal's: hidden trials alone. Log-odds: "
        "logit(final) &minus; logit(c) over the Bayes log-odds update, choice support (in "
        "log-odds) removed from every shown trial.",
    ),
    (
        True,
        "Update model: censored-normal (Tobit) regression of logit(final confidence) on "
        "logit(initial confidence), the shown flag, &Delta;·[same] and &Delta;·[opposite] "
        "(&plusmn;logit(a) for two options), on the displays shown, hidden and other; the "
        "estimator follows each model's readout (sampled counts: binomial logit-normal; "
        "stated confidences: interval-censored Tobit).",
    ),
    (
        False,
        "Temperature scaling applies to two-option trials; K-option trials keep raw "
        "confidences (the trials table holds only some options' probabilities).",
    ),
    (
        False,
        "Temperature scaling: one T per model, maximum likelihood of the correct option on "
        "the calibration split (or the main items' turn-1 answers); applied to both turns.",
    ),
)
"""The methods' bullets: (only for change-of-mind's display x advice x accuracy design,
text). A protocol without that design gets the others alone."""


def _methods(results: Results, main_design: bool) -> str:
    clip = results.bayes_clip
    low, high = f"{clip:g}", f"{1 - clip:g}"
    items = "".join(
        "<li>" + text.format(low=low, high=high) + "</li>"
        for factorial, text in _METHODS
        if main_design or not factorial
    )
    return f'<h2>Methods</h2><div class="note"><ul>{items}</ul></div>'


def _condition_section(results: Results, main_design: bool) -> str:
    table = results.by_condition
    models = results.models
    cells: dict[str, dict[str, list[str]]] = {}
    for row in records(table):
        turn = int(row["turn"])
        label = str(row["condition"]) + (f" (turn {turn})" if turn != TWO_TURN else "")
        cells.setdefault(label, {})[str(row["model"])] = [
            _fmt(int(row["n"])),
            _ci(
                _float(row["com_rate"]),
                _float(row["com_ci_low"]),
                _float(row["com_ci_high"]),
                "pct",
            ),
            _ci(
                _float(row["confidence_change"]),
                _float(row["change_ci_low"]),
                _float(row["change_ci_high"]),
                "signed",
            ),
            _ci(
                _float(row["oucs"]),
                _float(row["oucs_ci_low"]),
                _float(row["oucs_ci_high"]),
                "signed",
            ),
        ]
    header = ["condition"]
    for model in models:
        header += [f"{model}: trials", f"{model}: CoM", f"{model}: Δ confidence", f"{model}: OUCS"]
    rows = [
        [html.escape(condition), *(v for m in models for v in by_model.get(m, ["—"] * 4))]
        for condition, by_model in cells.items()
    ]
    body = _table(header, rows, readout=_readouts(results)) + _source(
        results.sources["by_condition"]
    )
    lead = (
        '<p class="lead">For any protocol: per condition, at its last turn (a protocol of '
        "more than two turns is not pooled over its turns; the turn is named where it is not "
        "2), the change-of-mind rate, the confidence change (final minus initial probability "
        "of the initially chosen option) and the OUCS where a Bayes posterior is defined, with "
        "95 % intervals clustered by question.</p>"
    )
    if main_design:
        body = f"<details><summary>Table: {len(rows)} conditions</summary>{body}</details>"
    return "<h2>By condition</h2>" + lead + body


def _sequence_section(results: Results) -> str:
    rows = [
        [
            html.escape(str(r["model"])),
            html.escape(str(r["condition"])),
            html.escape(str(r["sequence"])),
            _fmt(int(r["n"])),
            _ci(_float(r["com_rate"]), _float(r["com_ci_low"]), _float(r["com_ci_high"]), "pct"),
            _fmt(_float(r["final_confidence"])),
            _fmt(_float(r["bayes_post"])),
            _ci(_float(r["oucs"]), _float(r["oucs_ci_low"]), _float(r["oucs_ci_high"]), "signed"),
        ]
        for r in records(results.sequences)
    ]
    return (
        "<h2>Sequences of advisors</h2>"
        '<p class="lead">Each trial hears several advisors in turn (advice@stated accuracy, '
        "relative to the model's own answer). The ideal observer adds their log-odds shifts: "
        "logit(post) = logit(c) + &Sigma;<sub>k</sub> s<sub>k</sub>·logit(a<sub>k</sub>) for "
        "two options. Final confidence and the Bayes posterior are of the initially chosen "
        "option; OUCS is their difference (positive: overconfident).</p>"
        + _table(
            [
                "model",
                "condition",
                "sequence",
                "trials",
                "CoM",
                "final confidence",
                "Bayes posterior",
                "OUCS",
            ],
            rows,
            3,
            readout=_readouts(results),
        )
        + _source(results.sources["sequences"])
    )


def _turns_section(results: Results, figures: Mapping[str, bytes]) -> str:
    """The trajectories of a protocol of more than two turns: per condition and turn, models
    side by side, then the figure."""
    measure = results.measure("turns")
    models = results.models
    cells: dict[tuple[str, int], dict[str, list[str]]] = {}
    for row in records(results.table("turns")):
        key = (str(row["condition"]), int(row["turn"]))
        cells.setdefault(key, {})[str(row["model"])] = [
            _fmt(int(row["n"])),
            _ci(
                _float(row["com_rate"]),
                _float(row["com_ci_low"]),
                _float(row["com_ci_high"]),
                "pct",
            ),
            _ci(
                _float(row["confidence_initial"]),
                _float(row["confidence_ci_low"]),
                _float(row["confidence_ci_high"]),
            ),
            _fmt(_float(row["bayes_post"])),
            _fmt(_float(row["flip_rate"]), "pct"),
        ]
    header = ["condition", "turn"]
    for model in models:
        header += [
            f"{model}: answers",
            f"{model}: CoM",
            f"{model}: confidence in turn-1 answer",
            f"{model}: Bayes",
            f"{model}: flips",
        ]
    rows = [
        [
            html.escape(condition),
            _fmt(turn),
            *(v for m in models for v in by_model.get(m, ["—"] * 5)),
        ]
        for (condition, turn), by_model in cells.items()
    ]
    return (
        "<h2>Turn by turn</h2>"
        f'<p class="lead">{html.escape(measure.caption)} Turn 1 is where every trajectory '
        "starts; flips compare each answer with the one just before; 95 % intervals clustered "
        "by question.</p>"
        + _table(header, rows, 2, readout=_readouts(results))
        + _source(measure.source)
        + (_figure(results, figures, measure.figure.file) if measure.figure is not None else "")
    )


def _measure_table(results: Results, measure: Measure) -> str:
    """A measure's table: a cell measure's cells with models side by side (mean [95 % CI]),
    any other table as it is."""
    table = results.table(measure.key)
    if measure.cells and {"mean", "ci_low", "ci_high"} <= set(table.columns):
        kind = _SCALE_FORMAT[measure.scale]
        header, rows = _models_wide(table, measure.cells, results.models, kind)
        return _table(header, rows, len(measure.cells), readout=_readouts(results))
    return _table(
        [str(column) for column in table.columns],
        (
            [html.escape(v) if isinstance(v, str) else _fmt(v) for v in row.values()]
            for row in records(table)
        ),
        readout=_readouts(results),
    )


def _further_section(results: Results, figures: Mapping[str, bytes], main_design: bool) -> str:
    """Every measure of the results the report's own sections do not lay out (PLACED)."""
    # A measure with nothing to say about this run (an empty table: e.g. the readout
    # comparison of a run that reads every model one way) gets no section.
    extra = [
        m
        for m in results.measures
        if m.key not in PLACED
        and (main_design or not m.factorial)
        and not results.table(m.key).empty
    ]
    if not extra:
        return ""
    parts = [
        f"<h3>{html.escape(m.title)}</h3>"
        f'<p class="lead">{html.escape(m.caption)}</p>'
        + _measure_table(results, m)
        + _source(m.source)
        + (_figure(results, figures, m.figure.file) if m.figure is not None else "")
        for m in extra
    ]
    return (
        "<h2>Further measures</h2>"
        '<p class="lead">Measures registered beside the paper\'s (each declared in its own '
        "module and registered with <code>analysis.measures.registry.register</code>); "
        "intervals are 95 % and clustered by question.</p>" + "".join(parts)
    )


def _viewer_line(viewer: ViewerLink | None) -> str:
    """Where every trial can be read: a link to the run's trial browser, or the command
    that writes it."""
    if viewer is None:
        return ""
    if viewer.written:
        return (
            f'<p class="lead">Every trial of the run, with filters: the trial browser '
            f'<a href="{html.escape(viewer.href)}">{html.escape(viewer.href)}</a> '
            f"(written by <code>{html.escape(viewer.command)}</code>).</p>"
        )
    return (
        '<p class="lead">Every trial of the run, with filters, is in the trial browser that '
        f"<code>{html.escape(viewer.command)}</code> writes (it has not been written yet; "
        f"it goes to {html.escape(viewer.href.removeprefix('../'))} in the run directory).</p>"
    )


def _probabilities(record: CallRecord) -> str:
    """The option probabilities of a call, compactly ("A 0.912 · B 0.088"); a label the
    readout did not see is shown with its upper bound."""
    readout = record.readout
    if readout is None:
        return "—"
    cells = []
    for label, mass in readout.mass.items():
        shown = (readout.probs or {}).get(label, mass)
        if shown is None:
            bound = readout.upper_bound.get(label)
            value = "—" if bound is None else f"&le; {bound:.3g}"
        else:
            value = f"{shown:.3f}"
        cells.append(f"{html.escape(label)} {value}")
    return " · ".join(cells)


def _example_turn(record: CallRecord, changed: bool | None) -> str:
    """One call of an example trial: the messages, the answer prefix, the reply and the
    option probabilities (every text escaped)."""
    request = record.request
    messages = (
        ""
        if request is None
        else "".join(
            f'<div class="msg"><b>{html.escape(message.role)}</b>'
            f"<pre>{html.escape(message.content)}</pre></div>"
            for message in request.prompt.messages
        )
    )
    prefix = (
        f'<div class="msg"><b>answer prefix</b><pre>{html.escape(request.prompt.answer_prefix)}'
        "</pre></div>"
        if request is not None and request.prompt.answer_prefix
        else ""
    )
    detail = record.readout_detail
    replies = (
        "".join(f"<pre>{html.escape(text)}</pre>" for text in detail.replies[:1])
        if detail is not None and detail.replies
        else ""
    )
    stated = (
        f"; stated confidence {detail.stated:.2f}"
        if detail is not None and detail.stated is not None
        else ""
    )
    samples = f"; {len(detail.samples)} samples" if detail is not None and detail.samples else ""
    answer = (
        f"error: {html.escape(record.error or 'no answer')}"
        if record.failed
        else f"answer <b>{html.escape(record.choice or '')}</b>"
        + (" (changed mind)" if changed else "")
    )
    method = f"; readout {html.escape(record.readout_method)}" if record.readout_method else ""
    return (
        f'<li><p class="turn">Turn {record.stage}: {answer}; probabilities '
        f"{_probabilities(record)}{stated}{samples}{method}</p>"
        f"{messages}{prefix}{replies}</li>"
    )


def _example_trial(condition: str, transcript: Transcript) -> str:
    turns = "".join(_example_turn(turn, transcript.changed(turn)) for turn in transcript.turns)
    flags = (" · changed mind" if transcript.changed_mind else "") + (
        " · failed" if transcript.failed else ""
    )
    return (
        f"<details><summary><b>{html.escape(condition)}</b> — "
        f"<code>{html.escape(transcript.model)}</code>, item "
        f"{html.escape(transcript.item_id)}{flags}</summary>"
        f'<p class="src">Trial <code>{html.escape(transcript.trial_id)}</code>.</p>'
        f'<ol class="turns">{turns}</ol></details>'
    )


def _examples_section(context: ReportContext) -> str:
    """One example trial per condition (the first answered one of the run's log), and the
    way to every other trial; nothing for a report of no run directory (a comparison)."""
    if context.viewer is None and not context.examples:
        return ""
    if context.examples:
        body = (
            '<p class="lead">One trial per condition (the first answered one in calls.jsonl), '
            "as the model saw it: each turn's messages, the answer prefix it continued, its "
            "answer and the option probabilities its readout gave.</p>"
            + "".join(
                _example_trial(condition, transcript)
                for condition, transcript in context.examples.items()
            )
        )
    else:
        body = (
            '<p class="lead">No example trials: the run directory holds no calls.jsonl of '
            "mindshift's call records (a trials table imported or assembled by hand).</p>"
        )
    return "<h2>Example trials</h2>" + body + _viewer_line(context.viewer)


def _numbered(sections: list[str]) -> list[str]:
    """Number the sections' headings in order (which sections appear depends on the run)."""
    return [
        section.replace("<h2>", f"<h2>{number}. ", 1)
        for number, section in enumerate(sections, start=1)
    ]


def render_report(
    results: Results,
    figures: Mapping[str, bytes],
    *,
    title: str = "mindshift analysis",
    facts: Mapping[str, str] | None = None,
    context: ReportContext | None = None,
) -> str:
    """The report as one HTML document (a str).

    `facts` are short key/value lines about the run (name, start time, commit) shown under
    the design; `context` what the run directory says besides the measures (its protocol,
    one example trial per condition, its trial browser: `analysis.render.context`). The
    caller reads them, so rendering stays pure.
    """
    context = context or ReportContext()
    # The display / advice sections describe change-of-mind's factorial design; a protocol
    # without those factors (are-you-sure, multi-advice) is reported by condition instead.
    main_design = has_advice_design(results.trials)
    sections = [
        _key_results_section(results, main_design),
        _design_section(results, facts or {}, main_design, context.protocol),
        _calibration_section(results, figures),
    ]
    if main_design:
        sections += [
            _com_section(results, figures),
            _change_section(results, figures),
            _bayes_section(results, figures),
            _fitted_section(results, figures),
        ]
    sections.append(_condition_section(results, main_design))
    if not results.sequences.empty:
        sections.append(_sequence_section(results))
    if beyond_two_turns(results):
        sections.append(_turns_section(results, figures))
    further = _further_section(results, figures, main_design)
    if further:
        sections.append(further)
    examples = _examples_section(context)
    if examples:
        sections.append(examples)
    sections = [*_numbered(sections), _methods(results, main_design)]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>" + "\n".join(sections) + "</body></html>\n"
    )
