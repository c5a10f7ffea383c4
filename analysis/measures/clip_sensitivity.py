"""How much the Bayes clipping rule moves the cells where it bites.

The Bayes baseline clips probabilities to [bayes_clip, 1 - bayes_clip] before every logit
(`analysis.engines.logodds`): at a stated accuracy of 100 % the clipped baseline treats the advice
as 99 % accurate, while exact Bayes (bayes_clip 0) moves the posterior all the way to 1
(same) or 0 (opposite). This table puts the OUCS and the overweighting ratios of those
cells side by side under the analysis's bound and the compared one (exact Bayes, or the
default 0.01 when the analysis itself is exact), so a reader sees what the choice changes.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import at_bayes_clip, measure_input
from mindshift.analysis.engines.logodds import BAYES_CLIP
from mindshift.analysis.measures.cells import cell_stats
from mindshift.analysis.measures.choice_support import Scale
from mindshift.analysis.measures.overweighting import ratio_cells, ratio_trials
from mindshift.analysis.measures.registry import (
    Measure,
    MeasureResults,
    model_rows,
    on_trials,
    register,
)

SENSITIVITY_COLUMNS: Final = (
    "model",
    "display",
    "advice",
    "accuracy",
    "bayes_clip",
    "n",
    "oucs",
    "n_ratio",
    "overweighting",
    "overweighting_logodds",
)


def clip_sensitivity(trials: pd.DataFrame, compared: float | None = None) -> pd.DataFrame:
    """Per model x display x advice x accuracy among the stated accuracies that either bound
    clips (a < b or a > 1 - b, b the larger bound: 100 % in the paper's design), one row per
    bound (SENSITIVITY_COLUMNS): the OUCS (`n` trials) and the overweighting ratios of sums
    of those trials (`n_ratio` trials; paper version and log-odds version, each with its
    choice-support correction estimated from all neutral trials as in the headline).

    `compared` defaults to 0 (exact Bayes), or to 0.01 when the table is itself exact.
    """
    data, bound = measure_input(trials)
    other = compared if compared is not None else (0.0 if bound > 0.0 else BAYES_CLIP)
    widest = max(bound, other)
    accuracy = data["accuracy"].to_numpy(np.float64)
    clipped = (accuracy < widest) | (accuracy > 1.0 - widest)
    if not clipped.any():
        return pd.DataFrame(columns=list(SENSITIVITY_COLUMNS))
    keys = ["model", "display", "advice", "accuracy"]
    parts: list[pd.DataFrame] = []
    for clip in dict.fromkeys((bound, other)):
        table = at_bayes_clip(data, clip)
        rows = table.loc[clipped]
        oucs = cell_stats(rows, rows["final_prob_initial"] - rows["bayes_post"], keys[1:])
        oucs = oucs[[*keys, "n", "mean"]].rename(columns={"mean": "oucs"})
        ratios: list[pd.DataFrame] = []
        versions: tuple[tuple[Scale, str], ...] = (
            ("probability", "overweighting"),
            ("logodds", "overweighting_logodds"),
        )
        for scale, name in versions:
            usable = ratio_trials(table, scale)
            usable = usable.loc[_clipped_rows(usable, widest)]
            cells: list[dict[str, Any]] = []
            for value, part in usable.groupby("accuracy"):
                for row in ratio_cells(part).to_dict("records"):
                    cells.append(
                        {
                            "model": row["model"],
                            "display": row["display"],
                            "advice": row["advice"],
                            "accuracy": _float(value),
                            f"n_{name}": row["n"],
                            name: row["ratio_of_sums"],
                        }
                    )
            ratios.append(pd.DataFrame(cells, columns=[*keys, f"n_{name}", name]))
        merged = oucs.merge(ratios[0], on=keys, how="outer").merge(ratios[1], on=keys, how="outer")
        merged["n_ratio"] = merged["n_overweighting"]
        parts.append(merged.assign(bayes_clip=clip))
    out = pd.concat(parts, ignore_index=True)
    out["n"] = out["n"].fillna(0).astype(np.int64)
    out["n_ratio"] = out["n_ratio"].fillna(0).astype(np.int64)
    return out[list(SENSITIVITY_COLUMNS)].reset_index(drop=True)


def _float(value: Any) -> float:
    return float(value)


def _clipped_rows(table: pd.DataFrame, bound: float) -> np.ndarray:
    accuracy = table["accuracy"].to_numpy(np.float64)
    return np.asarray((accuracy < bound) | (accuracy > 1.0 - bound), dtype=bool)


def _clip_entries(results: MeasureResults, model: str) -> dict[str, Any]:
    """summary.json's `clip_sensitivity`: {display: {advice: {accuracy: {bayes_clip: {n, oucs,
    overweighting, ...}}}}} of the cells the clip bites."""
    entry: dict[str, Any] = {}
    for _, row in model_rows(results.table("clip_sensitivity"), model).iterrows():
        cell = entry.setdefault(str(row["display"]), {}).setdefault(str(row["advice"]), {})
        cell.setdefault(f"{float(row['accuracy']):g}", {})[f"{float(row['bayes_clip']):g}"] = {
            "n": int(row["n"]),
            "oucs": row["oucs"],
            "n_ratio": int(row["n_ratio"]),
            "overweighting": row["overweighting"],
            "overweighting_logodds": row["overweighting_logodds"],
        }
    return {"clip_sensitivity": entry}


register(
    Measure(
        key="clip_sensitivity",
        title="How much the clip moves the a = 100 % cells",
        function=clip_sensitivity,
        compute=on_trials(clip_sensitivity),
        caption="OUCS and overweighting ratios of the trials whose stated accuracy the clip "
        "changes, under the analysis's clip and the compared one.",
        summary=_clip_entries,
        factorial=True,
    )
)
