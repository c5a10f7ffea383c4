"""Writing an analysis to disk: summary.json, summary.md, tables/*.csv, figures, report.html.

Everything is rendered in memory first and each file is written atomically (write, then
rename), so a failure part-way leaves an earlier analysis untouched and never a half file
that a later reader would take as corrupt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from analysis.errors import AnalysisInputError
from analysis.figures import render_figures
from analysis.report import render_report
from analysis.results import Results
from analysis.summary import summary_document
from analysis.summary_md import summary_markdown
from analysis.tables import measure_tables

SUMMARY_FILE: Final = "summary.json"
REPORT_FILE: Final = "report.html"
MARKDOWN_FILE: Final = "summary.md"
TABLES_DIR: Final = "tables"
"""One CSV per measure (every model in each), beside the report."""


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, float_format="%.6g").encode("utf-8")


def write_outputs(
    results: Results,
    out: Path,
    *,
    title: str,
    facts: Mapping[str, str],
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Write the analysis of `results` into `out`; returns the summary (as summary.json).

    `extra` tables are written as CSV next to the report (file name -> table). Raises
    `AnalysisInputError` when `out` cannot be written (a read-only or full disk is the
    user's to fix: one line, not a traceback).
    """
    summary = summary_document(results)
    figures = render_figures(results)
    report = render_report(results, figures, title=title, facts=facts)
    outputs: dict[str, bytes] = {
        SUMMARY_FILE: (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode("utf-8"),
        MARKDOWN_FILE: summary_markdown(results, title).encode("utf-8"),
        **figures,
        **{name: _csv(table) for name, table in (extra or {}).items()},
        **{
            f"{TABLES_DIR}/{stem}.csv": _csv(table)
            for stem, table in measure_tables(results).items()
        },
        REPORT_FILE: report.encode("utf-8"),
    }
    try:
        (out / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        for name, data in outputs.items():
            _write_atomic(out / name, data)
    except OSError as error:
        raise AnalysisInputError(f"cannot write the analysis into {out}: {error}") from error
    return summary
