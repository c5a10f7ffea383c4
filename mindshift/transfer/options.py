"""The options of each row of a file to import: how many, their labels, and the check that
every choice names one of them.

A row's labels are its `labels` cell (the labels in order, separated by `|`), else the first
`n_options` capital letters (A, B, ...: how mindshift's domains label options), else A and B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mindshift.paradigms.domains.layout import MAX_OPTIONS, labels_for
from mindshift.transfer.schema import DEFAULT_OPTIONS, LABEL_SEPARATOR, LABELS
from mindshift.transfer.source import Cells, SourceTable, first, quoted

COUNT = "n_options"


@dataclass(frozen=True)
class RowOptions:
    """The options of every row of a source table."""

    source: SourceTable
    counts: np.ndarray
    """How many options each row has (int64)."""
    labels: np.ndarray
    """Each row's labels, a tuple of text, in order."""
    groups: tuple[tuple[np.ndarray, tuple[str, ...]], ...]
    """Each distinct set of labels, with the mask of the rows that have it."""

    def check(self, name: str, values: np.ndarray) -> None:
        """TransferError unless every known value of `values` is one of its row's labels."""
        known = ~pd.isna(values)
        listed = pd.Series(values, dtype=object)
        for rows, labels in self.groups:
            bad = first(rows & known & ~listed.isin(list(labels)).to_numpy(bool))
            if bad is not None:
                raise self.source.problem(
                    bad,
                    name,
                    f"{quoted(values[bad])} is not one of the options ({', '.join(labels)})",
                )

    def other(self, label: np.ndarray) -> np.ndarray:
        """For rows of two options, the label that is not `label`; None elsewhere."""
        out = np.full(len(label), None, dtype=object)
        for rows, labels in self.groups:
            if len(labels) == 2:
                one, two = labels
                out[rows & (label == one)] = two
                out[rows & (label == two)] = one
        return out

    def texts(self) -> np.ndarray:
        """Each row's labels as one text (`A|B`), for comparing rows."""
        return np.array([LABEL_SEPARATOR.join(labels) for labels in self.labels], dtype=object)


def _parse_labels(source: SourceTable, position: int, text: str) -> tuple[str, ...]:
    labels = tuple(part.strip() for part in text.split(LABEL_SEPARATOR))
    if any(not label for label in labels) or len(set(labels)) != len(labels):
        raise source.problem(
            position, LABELS, f"{text!r} is not distinct labels separated by {LABEL_SEPARATOR!r}"
        )
    if not 2 <= len(labels) <= MAX_OPTIONS:
        raise source.problem(
            position, LABELS, f"an item has 2 to {MAX_OPTIONS} options, not {len(labels)}"
        )
    return labels


def row_options(source: SourceTable, cells: Cells) -> RowOptions:
    """The options of each row (see the module doc); `n_options` and `labels` must agree."""
    size = len(source)
    has_count = source.has(COUNT)
    counts = (
        cells.whole(COUNT, default=DEFAULT_OPTIONS, low=2, high=MAX_OPTIONS)
        if has_count
        else np.full(size, DEFAULT_OPTIONS, dtype=np.int64)
    )
    labels = np.empty(size, dtype=object)
    for count in np.unique(counts):
        chosen = np.flatnonzero(counts == count)
        labels[chosen] = [labels_for(int(count))] * len(chosen)
    if source.has(LABELS):
        parsed: dict[str, tuple[str, ...]] = {}
        for position, text in enumerate(cells.text(LABELS).to_numpy(object)):
            if text is None:
                continue
            if text not in parsed:
                parsed[text] = _parse_labels(source, position, text)
            labels[position] = parsed[text]
        lengths = np.fromiter((len(one) for one in labels), dtype=np.int64, count=size)
        if has_count:
            bad = first(lengths != counts)
            if bad is not None:
                raise source.problem(
                    bad, COUNT, f"{counts[bad]} options, but labels names {lengths[bad]}"
                )
        counts = lengths
    codes, sets = pd.factorize(pd.Series(labels, dtype=object))
    groups = tuple((codes == code, tuple(one)) for code, one in enumerate(sets))
    return RowOptions(source, counts, labels, groups)
