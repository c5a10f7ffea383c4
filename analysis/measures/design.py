"""The design actually run, per model, as read back from the data (not from the config).

What the report's first section shows: how many questions, which displays, advice types and
accuracies, how many trials — counted from the trials and stage-1 calls themselves, so a run
that stopped early, or a model whose calls partly failed, is described as it is.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.data.prepare import answered
from mindshift.analysis.data.schema import ADVICE_TYPES, CALIBRATION, DISPLAYS, canonical_order
from mindshift.analysis.measures.registry import Measure, register

DESIGN_COLUMNS: Final = (
    "model",
    "items",
    "repeats",
    "displays",
    "advice",
    "accuracies",
    "conditions",
    "trials",
    "trials_with_confidence",
    "calibration_items",
)


def design_table(trials: pd.DataFrame, stage1: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per model: the factor levels present and the counts (DESIGN_COLUMNS).

    Factor levels are listed as comma-separated text (displays and advice in canonical order,
    accuracies as percentages); `trials` counts answered stage-2 trials.
    """
    done = answered(trials)
    calibration: dict[str, int] = {}
    if stage1 is not None and "split" in stage1.columns:
        split = stage1.loc[stage1["split"] == CALIBRATION]
        calibration = {
            str(k): int(v) for k, v in split.groupby("model")["item_id"].nunique().items()
        }
    rows: list[dict[str, Any]] = []
    for model, group in trials.groupby("model", sort=True):
        finished = done.loc[done["model"] == model]
        confident = np.isfinite(finished["initial_confidence"].to_numpy(np.float64)) & np.isfinite(
            finished["final_prob_initial"].to_numpy(np.float64)
        )
        accuracies = sorted({float(a) for a in group["accuracy"].dropna()})
        rows.append(
            {
                "model": str(model),
                "items": int(group["item_id"].nunique()),
                "repeats": int(group["repeat"].nunique()),
                "displays": ", ".join(canonical_order(group["display"].dropna(), DISPLAYS)),
                "advice": ", ".join(canonical_order(group["advice"].dropna(), ADVICE_TYPES)),
                "accuracies": ", ".join(f"{100 * a:g} %" for a in accuracies),
                "conditions": int(group["condition"].nunique()),
                "trials": len(finished),
                "trials_with_confidence": int(confident.sum()),
                "calibration_items": calibration.get(str(model), 0),
            }
        )
    return pd.DataFrame(rows, columns=list(DESIGN_COLUMNS))


register(
    Measure(
        key="design",
        title="Design",
        function=design_table,
        compute=lambda data: design_table(data.trials, data.prepared.stage1),
        caption="Per model, the design as read back from the data: questions, repeats, the "
        "displays, advice types and accuracies present, conditions and trials.",
    )
)
