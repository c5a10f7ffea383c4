"""One tidy table per measure, each with a `model` column: the CSV files of every analysis.

Tidy (long) rather than wide, so a reader can filter, pivot or plot them across any number of
models without parsing; the report shows the same numbers models-side-by-side.
"""

from __future__ import annotations

import pandas as pd

from analysis.measures.results import Results


def measure_tables(results: Results) -> dict[str, pd.DataFrame]:
    """File stem -> tidy table (one row per model x cell), for every measure of the report."""
    return {
        "design": results.design,
        "accuracy": results.accuracy.reset_index(),
        "calibration_temperature": results.temperatures,
        "calibration_metrics": results.calibration,
        "com_rate": results.com,
        "com_rate_by_advice": results.com_advice,
        "com_rate_by_accuracy": results.com_accuracy,
        "com_regression": results.com_regression,
        "switching": results.switching,
        "confidence_change": results.change,
        "confidence_change_by_accuracy": results.change_accuracy,
        "choice_support": results.choice_support,
        "oucs": results.oucs,
        "oucs_by_accuracy": results.oucs_accuracy,
        "overweighting": results.overweighting,
        "overweighting_logodds": results.overweighting_logodds,
        "clip_sensitivity": results.clip_sensitivity,
        "fit": results.fit,
        "by_condition": results.by_condition,
        "sequences": results.sequences,
    }
