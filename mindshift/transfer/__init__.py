"""Logs in and out: trials files in the tidy trials schema (docs/trials-schema.md).

- `import_trials(file, run_dir)` (`mindshift import`): a CSV or parquet file of trials, every
  row checked, becomes a run directory that `mindshift analyse` reads.
- `export_run(run_dir)` (`mindshift export`): a run's trials, in that schema, and its summary
  tables as CSV.
"""

from mindshift.transfer.errors import TransferError
from mindshift.transfer.export import ExportReport, export_run
from mindshift.transfer.imported_run import ImportReport, import_trials, is_imported_run

__all__ = [
    "ExportReport",
    "ImportReport",
    "TransferError",
    "export_run",
    "import_trials",
    "is_imported_run",
]
