"""A table to import, as read from its file (CSV or parquet), and the parsing of its cells.

Every cell is parsed here, with one rule per kind of column (text, number, whole number,
flag), and a cell that does not parse is a `TransferError` naming the file, the row and the
column. Rows are numbered as the file's own viewers number them: in a CSV file the header is
row 1 and the first trial row 2 (a spreadsheet's numbering, and an editor's line number when
no cell spans lines); in a parquet file the first row is row 1.

A CSV file is read as text, every cell a string, so nothing is guessed: an item id "007"
stays "007", and a number is parsed only in the columns that hold numbers. A missing value is
an empty cell; in a column of numbers or flags also `NA`, `NaN`, `null` or `None`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mindshift.transfer.errors import TransferError

PARQUET_MAGIC: Final = b"PAR1"
"""The first bytes of every parquet file: how a parquet file is told from a CSV one."""
MISSING_WORDS: Final = frozenset({"", "na", "n/a", "nan", "null", "none"})
"""Cells (lower-cased) that mean "unknown" in a column of numbers or flags."""
TRUE_WORDS: Final = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS: Final = frozenset({"false", "f", "no", "n", "0"})

Format = Literal["csv", "parquet"]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


@dataclass(frozen=True)
class SourceTable:
    """The rows of a file to import, as read, with the file's identity."""

    path: Path
    frame: pd.DataFrame
    """One row per row of the file, indexed 0, 1, ...; a CSV file's cells are all text."""
    format: Format
    sha256: str
    """SHA-256 of the file's bytes (the imported run's manifest records it)."""

    def row_name(self, position: int) -> str:
        """The row at `position` (0-based) as the file numbers it (see the module doc)."""
        return f"row {position + 2}" if self.format == "csv" else f"row {position + 1}"

    def problem(self, position: int, column: str, why: str) -> TransferError:
        """The error of one bad cell: file, row and column, then why."""
        return TransferError(
            f"{self.path.name} {self.row_name(position)}, column {column!r}: {why}"
        )

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def __len__(self) -> int:
        return len(self.frame)


def read_source(path: Path) -> SourceTable:
    """The file's rows: parquet when it starts with parquet's magic bytes, CSV otherwise.
    TransferError when it cannot be read, is not a table, repeats a column or has no rows."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TransferError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TransferError(f"{path} is a directory, not a CSV or parquet file") from None
    except OSError as error:
        raise TransferError(f"cannot read {path}: {error.strerror or error}") from None
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(PARQUET_MAGIC):
        frame, kind = _read_parquet(path, data), "parquet"
    elif path.suffix.lower() in (".parquet", ".pq"):
        raise TransferError(f"{path.name} is named like a parquet file but is not one")
    else:
        frame, kind = _read_csv(path, data), "csv"
    if frame.empty:
        raise TransferError(f"{path.name} holds no rows")
    frame.columns = [str(name).strip() for name in frame.columns]
    return SourceTable(path, frame.reset_index(drop=True), kind, digest)  # type: ignore[arg-type]


def _read_parquet(path: Path, data: bytes) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    # pyarrow reports a damaged file as ArrowInvalid (a ValueError), an OSError, or
    # ArrowNotImplementedError (a NotImplementedError) for a type it cannot read.
    except (OSError, ValueError, NotImplementedError, TypeError) as error:
        raise TransferError(f"{path.name} cannot be read as parquet: {_one_line(error)}") from None


def _read_csv(path: Path, data: bytes) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (spreadsheet exports) is no column
    except UnicodeDecodeError as error:
        raise TransferError(
            f"{path.name} is neither parquet nor UTF-8 text (byte {error.start + 1} is not "
            "UTF-8): save it as CSV in UTF-8"
        ) from None
    header = next(csv.reader(io.StringIO(text)), [])
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TransferError(f"{path.name}: column {repeated[0]!r} appears more than once")
    try:
        # Every cell as text, nothing read as missing: the columns parse their own cells.
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise TransferError(f"{path.name} is empty: no header, no rows") from None
    except (pd.errors.ParserError, ValueError) as error:
        raise TransferError(f"{path.name} is not a CSV table: {_one_line(error)}") from None


def quoted(value: object) -> str:
    """A value as an error message quotes it: text in quotes, a number as Python writes it
    (not numpy's `np.float64(...)`)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def first(mask: Iterable[bool] | np.ndarray | pd.Series) -> int | None:
    """The position of the first True of a mask; None when there is none."""
    flags = np.asarray(mask, dtype=bool)
    hits = np.flatnonzero(flags)
    return int(hits[0]) if hits.size else None


def _all_text(values: pd.Series) -> bool:
    """Whether every cell that is not null is text (a CSV column always is)."""
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


@dataclass(frozen=True)
class _TextCells:
    """A column of text cells, stripped and classified once (a large file's columns are read
    by several checks): parsed by pyarrow's vectorised kernels, not cell by cell."""

    stripped: pa.Array
    """The cells without surrounding blanks (null stays null)."""
    missing: np.ndarray
    """Null, blank, or a missing word."""

    @classmethod
    def of(cls, values: pd.Series) -> _TextCells:
        cells = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
        stripped = pc.utf8_trim_whitespace(cells)
        words = pc.is_in(pc.utf8_lower(stripped), value_set=pa.array(sorted(MISSING_WORDS)))
        missing = pc.or_(pc.is_null(stripped), pc.fill_null(words, True))
        return cls(stripped, np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool))

    def texts(self) -> np.ndarray:
        """The stripped cells as Python text (None where null)."""
        return np.asarray(self.stripped.to_numpy(zero_copy_only=False), dtype=object)


def _missing_cell(cell: object) -> bool:
    """A cell of a column of several types holds no value: null, NaN or a missing word."""
    if isinstance(cell, str):
        return cell.strip().lower() in MISSING_WORDS
    return cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell))


def _among(words: pa.Array, allowed: frozenset[str]) -> np.ndarray:
    found = pc.fill_null(pc.is_in(words, value_set=pa.array(sorted(allowed))), False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


class Cells:
    """Typed columns of a source table; each method raises on the first cell that does not
    parse, naming its row and column."""

    def __init__(self, source: SourceTable) -> None:
        self.source = source
        self._text_cells: dict[str, _TextCells | None] = {}

    def _column(self, name: str) -> pd.Series:
        return self.source.frame[name]

    def _text(self, name: str) -> _TextCells | None:
        """The column's text cells; None when some cell is no text (a parquet column of
        numbers, flags, or of several types)."""
        if name not in self._text_cells:
            values = self._column(name)
            self._text_cells[name] = _TextCells.of(values) if _all_text(values) else None
        return self._text_cells[name]

    def _missing(self, name: str) -> np.ndarray:
        """Cells that hold no value: null, NaN, or text that is blank or a missing word."""
        text = self._text(name)
        if text is not None:
            return text.missing
        values = self._column(name)
        if pd.api.types.is_object_dtype(values):
            return np.asarray(values.map(_missing_cell).to_numpy(bool), dtype=bool)
        return np.asarray(values.isna().to_numpy(bool), dtype=bool)

    def known(self, name: str) -> np.ndarray:
        """Where the column's cells hold a value (not empty, not a missing word)."""
        return ~self._missing(name)

    def text(self, name: str) -> pd.Series:
        """The column as stripped text; None where a cell is empty (or null in parquet)."""
        text = self._text(name)
        if text is not None:
            cells = text.texts()
        else:
            values = self._column(name).astype(object)
            mapped = values.map(lambda cell: str(cell).strip(), na_action="ignore")
            cells = np.asarray(mapped.to_numpy(object), dtype=object)
        blank = pd.isna(cells) | (cells == "")
        cells = cells.copy()
        cells[blank] = None
        return pd.Series(cells, dtype=object)

    def number(self, name: str) -> np.ndarray:
        """The column as float64; NaN where a cell is missing."""
        raw = self._column(name)
        if pd.api.types.is_bool_dtype(raw):
            raise self.source.problem(0, name, f"holds flags ({raw.iloc[0]}), not numbers")
        if pd.api.types.is_numeric_dtype(raw):
            return np.asarray(raw.to_numpy(np.float64, na_value=np.nan), dtype=np.float64)
        missing = self._missing(name)
        text = self._text(name)
        if text is not None:
            kept = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text.stripped)
            try:
                parsed = pc.cast(kept, pa.float64()).to_numpy(zero_copy_only=False)
                return np.asarray(parsed, dtype=np.float64)
            except pa.ArrowInvalid:
                pass  # a cell that is no number: found, and named, below
            cells = pd.Series(text.texts(), dtype=object)
        else:
            flags = raw.map(lambda cell: isinstance(cell, bool | np.bool_)).to_numpy(bool)
            bad_flag = first(flags & ~missing)
            if bad_flag is not None:
                raise self.source.problem(bad_flag, name, f"{raw.iloc[bad_flag]} is not a number")
            cells = raw.astype(object).map(lambda cell: str(cell).strip(), na_action="ignore")
        cells = cells.where(~missing, None)
        parsed = pd.to_numeric(cells, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = first(np.isnan(parsed) & ~missing)
        if bad is not None:
            raise self.source.problem(bad, name, f"{str(raw.iloc[bad]).strip()!r} is not a number")
        return np.asarray(parsed, dtype=np.float64)

    def probability(self, name: str) -> np.ndarray:
        """A column of probabilities: numbers in [0, 1], NaN where missing."""
        values = self.number(name)
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(values) & ((values < 0.0) | (values > 1.0))
        bad = first(outside)
        if bad is not None:
            raise self.source.problem(
                bad, name, f"{quoted(values[bad])} is not a probability (outside [0, 1])"
            )
        return values

    def whole(self, name: str, *, default: int, low: int, high: int | None = None) -> np.ndarray:
        """A column of whole numbers in [low, high], `default` where a cell is missing."""
        values = self.number(name)
        known = ~np.isnan(values)
        with np.errstate(invalid="ignore"):
            fractional = known & ((values != np.round(values)) | ~np.isfinite(values))
        bad = first(fractional)
        if bad is not None:
            raise self.source.problem(bad, name, f"{quoted(values[bad])} is not a whole number")
        top = np.inf if high is None else float(high)
        with np.errstate(invalid="ignore"):
            outside = known & ((values < low) | (values > top))
        bad = first(outside)
        if bad is not None:
            limit = f"at least {low}" if high is None else f"from {low} to {high}"
            raise self.source.problem(bad, name, f"{int(values[bad])} is not {limit}")
        return np.where(known, values, float(default)).astype(np.int64)

    def flag(self, name: str, *, default: bool) -> np.ndarray:
        """A column of flags (true/false, yes/no, 1/0), `default` where a cell is missing."""
        raw = self._column(name)
        if pd.api.types.is_bool_dtype(raw) and not raw.isna().any():
            return np.asarray(raw.to_numpy(bool), dtype=bool)
        out = np.full(len(raw), default, dtype=bool)
        text = self._text(name)
        if text is not None:
            # A flag stored as a float by a spreadsheet reads 1.0 or 0.0.
            words = pc.replace_substring_regex(pc.utf8_lower(text.stripped), r"\.0$", "")
            true = _among(words, TRUE_WORDS)
            false = _among(words, FALSE_WORDS)
            bad = first(~true & ~false & ~text.missing)
            if bad is not None:
                cell = str(raw.iloc[bad]).strip()
                raise self.source.problem(bad, name, f"{cell!r} is not a flag (true or false)")
            out[true] = True
            out[false] = False
            return out
        for position, cell in enumerate(raw.to_numpy(object)):
            if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
                continue
            if isinstance(cell, bool | np.bool_):
                out[position] = bool(cell)
                continue
            word = str(cell).strip().lower()
            if word.endswith(".0"):  # a flag stored as a float by a spreadsheet: 1.0, 0.0
                word = word[:-2]
            if word in TRUE_WORDS:
                out[position] = True
            elif word in FALSE_WORDS:
                out[position] = False
            elif word not in MISSING_WORDS:
                raise self.source.problem(
                    position, name, f"{str(cell).strip()!r} is not a flag (true or false)"
                )
        return out
