"""report.html: the summary's numbers as tables and the figures, in one self-contained file.

Self-contained means it opens offline and can be mailed or archived alone: styles are inline,
figures are base64 data URIs, and there are no scripts and no external links. Rendering is a
pure function of the summary dict and the figures' PNG bytes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from analysis.schema import ADVICE_TYPES, DISPLAYS, canonical_order

FIGURE_CAPTIONS: Final[dict[str, str]] = {
    "com_by_accuracy.png": "Change-of-mind rate against stated advice accuracy, a line per "
    "advice type and a panel per display (mean ± SEM across trials).",
    "confidence_change.png": "Confidence change (final minus initial probability of the "
    "initially chosen option) by display and advice (mean ± SEM).",
    "updates_observed_vs_bayes.png": "Observed confidence update against the ideal observer's "
    "update, binned means; the dashed line is the Bayes-optimal identity. Steeper than the "
    "identity means the advice is overweighted. Observed updates are uncorrected here.",
    "switching_vs_confidence.png": "Change of mind under opposite advice against initial "
    "confidence, a line per stated accuracy. The ideal observer switches iff accuracy > "
    "confidence.",
}

_STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f6f9; }
td.label, th.label { text-align: left; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
.note { font-size: .9em; color: #444; background: #f8f8f8; padding: .6em 1em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; }
dl.facts dt { font-weight: 600; }
"""


def _fmt(value: Any, kind: str = "num") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) < 5e-4 and kind != "num":
            value = 0.0  # no "-0.000" for a value that only rounding made negative
        if kind == "pct":
            return f"{100 * value:.1f} %"
        if kind == "ratio":
            return f"{value:.2f}&times;"
        if kind == "signed":
            return f"{value:+.3f}"
        # Tiny but non-zero (a noiseless agent's sigma, its SEs) would all print as 0.000.
        return f"{value:.1e}" if 0.0 < abs(value) < 1e-3 else f"{value:.3f}"
    return html.escape(str(value))


def _with_se(value: Any, se: Any, kind: str) -> str:
    """A cell mean with its standard error, in the mean's units (percent points for rates)."""
    if value is None or se is None:
        return _fmt(value, kind)
    spread = f"{100 * se:.1f}" if kind == "pct" else f"{se:.3f}"
    return f"{_fmt(value, kind)} ± {spread}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], label_cols: int = 1) -> str:
    """An HTML table; cells are given already formatted and escaped."""
    head = "".join(
        f'<th class="label">{html.escape(h)}</th>'
        if i < label_cols
        else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="label">{cell}</td>' if i < label_cols else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cells(entry: Mapping[str, Any], names: Sequence[str]) -> list[tuple[str, str]]:
    """(display, advice) pairs present in any of the named display x advice measures."""
    displays: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for name in names:
        for display, by_advice in (entry.get(name) or {}).items():
            displays.add(display)
            pairs.update((display, advice) for advice in by_advice)
    ordered: list[tuple[str, str]] = []
    for display in canonical_order(displays, DISPLAYS):
        advice_types = canonical_order((a for d, a in pairs if d == display), ADVICE_TYPES)
        ordered.extend((display, advice) for advice in advice_types)
    return ordered


def _get(entry: Mapping[str, Any], *path: str) -> Any:
    node: Any = entry
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _model_section(model: str, entry: Mapping[str, Any]) -> str:
    esc = html.escape
    parts = [f"<h2>Model <code>{esc(model)}</code></h2>"]
    overview = [
        ("trials with a final choice", _fmt(entry.get("n_trials"))),
        ("items", _fmt(entry.get("n_items"))),
        ("stage-1 calls", _fmt(entry.get("n_initial_calls"))),
        ("initial accuracy", _fmt(entry.get("accuracy_initial"), "pct")),
        ("trials with initial and final confidence", _fmt(entry.get("n_with_confidence"))),
        (
            "censored initial / final readouts",
            f"{_fmt(_get(entry, 'n_censored', 'initial'))} / "
            f"{_fmt(_get(entry, 'n_censored', 'final'))}",
        ),
    ]
    overview += [
        (f"change of mind, display {esc(d)}", _fmt(v, "pct"))
        for d, v in (entry.get("com_rate") or {}).items()
    ]
    parts.append(_table(["", "value"], overview))

    parts.append("<h3>By display and advice</h3>")
    measures = ("com_rate_by_advice", "confidence_change", "oucs")
    kinds = {"com_rate_by_advice": "pct", "confidence_change": "signed", "oucs": "signed"}
    rows = [
        (
            esc(display),
            esc(advice),
            *(
                _with_se(
                    _get(entry, name, display, advice),
                    _get(entry, "se_item", name, display, advice),
                    kind,
                )
                for name, kind in kinds.items()
            ),
        )
        for display, advice in _cells(entry, measures)
    ]
    parts.append(
        _table(["display", "advice", "change of mind", "confidence change", "OUCS"], rows, 2)
        + '<p class="note">± one standard error, clustered by item.</p>'
    )

    parts.append(_overweighting_section(entry))
    parts.append(_fit_section(entry))
    parts.append(_by_accuracy_section(entry))
    return "\n".join(parts)


def _overweighting_section(entry: Mapping[str, Any]) -> str:
    detail = entry.get("overweighting_detail") or {}
    rows: list[tuple[str, ...]] = []
    scopes = [(f"pooled ({detail.get('pooled_displays', '')})", detail.get("pooled") or {})]
    scopes += list((detail.get("by_display") or {}).items())
    for scope, by_advice in scopes:
        for advice in canonical_order(by_advice, ADVICE_TYPES):
            stats = by_advice[advice]
            rows.append(
                (
                    html.escape(scope),
                    html.escape(advice),
                    _fmt(stats.get("ratio_of_sums"), "ratio"),
                    _fmt(stats.get("median_ratio"), "ratio"),
                    _fmt(stats.get("mean_ratio"), "ratio"),
                    _fmt(stats.get("n")),
                )
            )
    headline = entry.get("overweighting") or {}
    return (
        "<h3>Overweighting of advice (observed / Bayes update)</h3>"
        f"<p>Headline (ratio of sums, pooled): same {_fmt(headline.get('same'), 'ratio')}, "
        f"opposite {_fmt(headline.get('opposite'), 'ratio')}. Choice-support correction "
        f"subtracted from shown+same and shown+opposite updates: "
        f"{_fmt(detail.get('choice_support_correction'), 'signed')}.</p>"
        + _table(
            ["display", "advice", "ratio of sums", "median ratio", "mean ratio", "trials"],
            rows,
            2,
        )
    )


def _fit_section(entry: Mapping[str, Any]) -> str:
    fit = entry.get("fit") or {}
    se = fit.get("se") or {}
    terms = ("choice_support", "w_same", "w_opposite", "intercept", "prior_weight")
    rows: list[tuple[str, ...]] = [
        (html.escape(t), _fmt(fit.get(t)), _fmt(se.get(t))) for t in terms
    ]
    rows.append(("noise (&sigma;, log-odds)", _fmt(fit.get("noise")), "—"))
    return (
        "<h3>Update-model fit (Tobit on the log-odds scale)</h3>"
        + _table(["term", "estimate", "SE"], rows)
        + f"<p>{_fmt(fit.get('n'))} trials, {_fmt(fit.get('n_censored_low'))} censored low and "
        f"{_fmt(fit.get('n_censored_high'))} censored high; converged: "
        f"{_fmt(fit.get('converged'))}. SEs treat trials as independent.</p>"
    )


def _by_accuracy_section(entry: Mapping[str, Any]) -> str:
    com = entry.get("com_rate_by_accuracy") or {}
    levels = sorted({acc for by_adv in com.values() for accs in by_adv.values() for acc in accs})
    if not levels:
        return ""
    rows = [
        (
            html.escape(display),
            html.escape(advice),
            *(_fmt(_get(com, display, advice, level), "pct") for level in levels),
        )
        for display, advice in _cells(entry, ("com_rate_by_accuracy",))
    ]
    header = ["display", "advice", *(f"{float(level):.0%}" for level in levels)]
    return "<h3>Change of mind by stated advice accuracy</h3>" + _table(header, rows, 2)


def _figure(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption = FIGURE_CAPTIONS.get(name, name)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


_METHODS: Final = """
<h2>Methods</h2>
<div class="note"><ul>
<li>All measures are framed on the initially chosen option. Probabilities are clipped to
[{low}, {high}] before every logit (accuracy 100 % reads as {high}).</li>
<li>Bayes posterior: logit(post) = logit(c) + s·logit(a), s = +1 same, &minus;1 opposite, 0 neutral;
two-option trials only.</li>
<li>OUCS = mean(final confidence &minus; Bayes posterior); positive means overconfident.</li>
<li>Overweighting = observed update / Bayes update for same and opposite advice, accuracy 50 %
excluded; shown-display updates first lose the choice-support part (mean shown-neutral minus
mean hidden-neutral update). Headline: ratio of sums pooled over shown and hidden.</li>
<li>Fit: censored-normal (Tobit) regression of logit(final confidence) on logit(initial
confidence), the shown flag, logit(a)·[same] and &minus;logit(a)·[opposite]; values at the clip
bounds are censored.</li>
<li>Error bars: SEM across trials; items repeat across conditions, so these understate the
uncertainty somewhat.</li>
</ul></div>
"""


def render_report(
    summary: Mapping[str, Any],
    figures: Mapping[str, bytes],
    *,
    title: str = "mindshift analysis",
    facts: Mapping[str, str] | None = None,
) -> str:
    """The report as one HTML document (a str).

    `facts` are short key/value lines about the run (name, start time, commit) shown at the
    top; the caller decides what they are, so rendering stays pure.
    """
    clip = _get(summary, "analysis", "clip") or [0.01, 0.99]
    fact_rows = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in (facts or {}).items()
    )
    models = summary.get("models") or {}
    sections = [_model_section(model, entry) for model, entry in models.items()]
    figures_html = "".join(_figure(name, png) for name, png in figures.items())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        + (f'<dl class="facts">{fact_rows}</dl>' if fact_rows else "")
        + "\n".join(sections)
        + ("<h2>Figures</h2>" + figures_html if figures_html else "")
        + _METHODS.format(low=clip[0], high=clip[1])
        + "</body></html>\n"
    )
