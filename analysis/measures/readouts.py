"""One model under several readouts: how the readouts compare (issue 12, Deliver 4).

A run may hold one model several times, each entry reading its confidence another way
(`logprobs`, `sampling`, `verbal`, ...). Entries of one model form a group: the trials' `spec`
column when the table has one; without it, every entry of the run is taken for one model
(the comparison is then only meaningful for runs built that way, and the group is named
"run"). A group with at least two readouts is compared against its reference entry (the
`logprobs` one when there is one, else the first by id):
- calibration of each entry's turn-1 confidence, as read (ECE, Brier, AUROC;
  `analysis.measures.calibration`'s functions), one value per item and repeat;
- agreement with the reference, trial by trial: rows matched on item, condition, repeat and
  turn; the share with the same initial choice, and the Pearson correlation and mean absolute
  difference of the initial confidence;
- in summary.json, each entry's OUCS cells, overweighting ratios (ratio of sums per display x
  advice) and fitted weights minus the reference's, read from those measures' tables.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from mindshift.analysis.measures.calibration import auroc, brier_score, expected_calibration_error
from mindshift.analysis.measures.registry import Measure, MeasureResults, register

GROUP_COLUMN: Final = "spec"
WHOLE_RUN: Final = "run"
REFERENCE_READOUT: Final = "logprobs"
MATCH_ON: Final = ("item_id", "condition", "repeat", "turn")
COLUMNS: Final = (
    "group",
    "model",
    "readout",
    "reference",
    "n_initial",
    "ece",
    "brier",
    "auroc",
    "n_matched",
    "same_initial_choice",
    "confidence_corr",
    "confidence_mad",
)
WEIGHTS: Final = ("choice_support", "w_same", "w_opposite")


def _readout_of(rows: pd.DataFrame) -> str:
    if "readout" not in rows.columns:
        return REFERENCE_READOUT
    return "+".join(sorted({str(value) for value in rows["readout"].dropna().unique()}))


def _groups(trials: pd.DataFrame) -> dict[str, list[str]]:
    key = trials[GROUP_COLUMN] if GROUP_COLUMN in trials.columns else WHOLE_RUN
    grouped = trials.assign(_group=key).groupby("_group", sort=True)["model"]
    return {str(group): sorted(map(str, models.unique())) for group, models in grouped}


def _turn_one(rows: pd.DataFrame) -> pd.DataFrame:
    # The initial answer repeats on every later turn of an item and repeat: count it once.
    return rows.drop_duplicates(["item_id", "repeat"])


def _confidence(rows: pd.DataFrame) -> pd.Series:
    # The readout as read, before any temperature scaling.
    column = "initial_confidence_raw" if "initial_confidence_raw" in rows else "initial_confidence"
    return rows[column].astype(np.float64)


def _agreement(rows: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    keys = list(MATCH_ON)
    left = rows.assign(_c=_confidence(rows))[[*keys, "initial_choice", "_c"]]
    right = reference.assign(_c=_confidence(reference))[[*keys, "initial_choice", "_c"]]
    matched = left.merge(right, on=keys, suffixes=("", "_ref"))
    nan = float("nan")
    if matched.empty:
        return {
            "n_matched": 0,
            "same_initial_choice": nan,
            "confidence_corr": nan,
            "confidence_mad": nan,
        }
    both = matched[["_c", "_c_ref"]].dropna()
    spread = len(both) > 1 and both["_c"].std() > 0 and both["_c_ref"].std() > 0
    return {
        "n_matched": len(matched),
        "same_initial_choice": float(
            (matched["initial_choice"] == matched["initial_choice_ref"]).mean()
        ),
        "confidence_corr": float(np.corrcoef(both["_c"], both["_c_ref"])[0, 1]) if spread else nan,
        "confidence_mad": float((both["_c"] - both["_c_ref"]).abs().mean()) if len(both) else nan,
    }


def readout_comparison(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per model entry of every group holding at least two readouts (module doc)."""
    rows: list[dict[str, Any]] = []
    for group, models in _groups(trials).items():
        by_model = {model: trials.loc[trials["model"] == model] for model in models}
        readouts = {model: _readout_of(rows) for model, rows in by_model.items()}
        if len(set(readouts.values())) < 2:
            continue
        logprobs = [model for model in models if readouts[model] == REFERENCE_READOUT]
        reference = (logprobs or models)[0]
        for model in models:
            first = _turn_one(by_model[model])
            confidence = _confidence(first).to_numpy()
            correct = first["initial_correct"].astype(np.float64).to_numpy()
            agreement = (
                _agreement(by_model[model], by_model[reference])
                if model != reference
                else dict.fromkeys(COLUMNS[-4:], float("nan"))
            )
            rows.append(
                {
                    "group": group,
                    "model": model,
                    "readout": readouts[model],
                    "reference": reference,
                    "n_initial": len(first),
                    "ece": expected_calibration_error(confidence, correct),
                    "brier": brier_score(confidence, correct),
                    "auroc": auroc(confidence, correct),
                    **agreement,
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _minus(table: pd.DataFrame, model: str, reference: str, value: str) -> dict[str, Any]:
    """`value` per display x advice cell of `model` minus the reference's, nested."""
    cells = ["display", "advice"]
    mine = table.loc[table["model"] == model].set_index(cells)[value]
    theirs = table.loc[table["model"] == reference].set_index(cells)[value]
    nested: dict[str, Any] = {}
    differences = (mine - theirs).dropna()
    for (display, advice), difference in zip(
        differences.index.tolist(), differences.tolist(), strict=True
    ):
        nested.setdefault(str(display), {})[str(advice)] = float(difference)
    return nested


def _fit_minus(fit: pd.DataFrame, model: str, reference: str) -> dict[str, float]:
    estimate = fit.set_index(["model", "term"])["estimate"]
    return {
        term: float(estimate.get((model, term), np.nan) - estimate.get((reference, term), np.nan))
        for term in WEIGHTS
    }


def _readouts_entry(results: MeasureResults, model: str) -> dict[str, Any]:
    table = results.table("readouts")
    mine = table.loc[table["model"] == model]
    if mine.empty:
        return {}
    row = mine.iloc[0]
    reference = str(row["reference"])
    entry: dict[str, Any] = {
        "group": str(row["group"]),
        "reference": reference,
        "compared_with": sorted(
            str(other)
            for other in table.loc[table["group"] == row["group"], "model"]
            if other != model
        ),
        "calibration": {name: float(row[name]) for name in ("ece", "brier", "auroc")},
        "n_initial": int(row["n_initial"]),
    }
    if model != reference:
        entry["agreement"] = {
            "n_matched": int(row["n_matched"]),
            **{name: float(row[name]) for name in COLUMNS[-3:]},
        }
        entry["minus_reference"] = {
            "oucs": _minus(results.table("oucs"), model, reference, "mean"),
            "overweighting": _minus(
                results.table("overweighting"), model, reference, "ratio_of_sums"
            ),
            "fit": _fit_minus(results.table("fit"), model, reference),
        }
    return {"readouts": entry}


register(
    Measure(
        key="readouts",
        title="Readouts compared",
        function=readout_comparison,
        compute=lambda data: readout_comparison(data.trials),
        caption="One model under several confidence readouts: per entry, the calibration of "
        "its turn-1 confidence as read (ECE, Brier, AUROC) and its agreement with the "
        "reference entry (logprobs where there is one) on trials matched by item, condition, "
        "repeat and turn (same initial choice, correlation and mean absolute difference of "
        "the initial confidence). summary.json adds how OUCS, overweighting and the fitted "
        "weights differ from the reference's.",
        summary=_readouts_entry,
    )
)
