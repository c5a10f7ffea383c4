"""One tidy table per measure, each with a `model` column: the CSV files of every analysis.

Tidy (long) rather than wide, so a reader can filter, pivot or plot them across any number of
models without parsing; the report shows the same numbers models-side-by-side. Every
registered measure with `csv` set is written under its key, in the registry's order, and the
update fit as `fit`.
"""

from __future__ import annotations

import pandas as pd

from mindshift.analysis.measures.results import FIT, Results


def measure_tables(results: Results) -> dict[str, pd.DataFrame]:
    """File stem -> tidy table (one row per model x cell), for every measure of the report."""
    tables = {m.key: results.table(m.key) for m in results.measures if m.csv}
    tables[FIT] = results.fit
    return tables
