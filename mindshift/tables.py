"""The CLI's tables, fitted to where they are printed.

On a terminal a table fits the terminal's width. A number is never folded onto two lines or
cut: when the columns do not all fit, the optional ones are left out, the least useful
first, and a line under the table says which. Written to a pipe or a file, a table has
every column and every row on one line however wide it is, so that `grep`, `less -S` or a
file read later see it whole (rich would otherwise wrap it at 80 columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

PLAIN_WIDTH = 1000
"""Line width of tables written to a pipe or a file: wide enough never to wrap a row."""


@dataclass(frozen=True)
class Column:
    """One column of a `FittedTable`."""

    header: str
    number: bool = False
    """Right-aligned, and never folded or cut."""
    optional: int | None = None
    """None: always shown. Otherwise the column may be left out on a narrow terminal, the
    lowest number first."""


class FittedTable:
    """A titled table of text cells that prints itself to fit its console (see above)."""

    def __init__(self, title: str, columns: Sequence[Column]) -> None:
        headers = [column.header for column in columns]
        if len(set(headers)) != len(headers):
            raise ValueError(f"column headers repeat: {headers}")
        self.title = title
        self.columns = list(columns)
        self.rows: list[tuple[str | Text, ...]] = []

    def add_row(self, *cells: str | Text) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def print(self, console: Console) -> None:
        if not console.is_terminal:
            plain = Console(
                file=console.file, width=PLAIN_WIDTH, highlight=False, color_system=None
            )
            plain.print(self._table(self.columns))
            return
        shown = list(self.columns)
        droppable = sorted(
            (column for column in self.columns if column.optional is not None),
            key=lambda column: column.optional or 0,
        )
        table = self._table(shown)
        while droppable and _natural_width(console, table) > console.width:
            shown.remove(droppable.pop(0))
            table = self._table(shown)
        console.print(table)
        left_out = [column.header for column in self.columns if column not in shown]
        if left_out:
            console.print(
                f"left out to fit {console.width} columns: {', '.join(left_out)} (widen the "
                "terminal, or send the output to a pipe or a file, to see them)",
                style="dim",
                markup=False,
                highlight=False,
            )

    def _table(self, columns: Sequence[Column]) -> Table:
        table = Table(title=self.title)
        for column in columns:
            if column.number:
                table.add_column(column.header, justify="right", no_wrap=True)
            else:
                # Only when even the fewest columns do not fit: text is folded, never numbers.
                table.add_column(column.header, overflow="fold")
        indices = [self.columns.index(column) for column in columns]
        for row in self.rows:
            table.add_row(*(row[index] for index in indices))
        return table


def _natural_width(console: Console, table: Table) -> int:
    """How wide `table` is when nothing in it is folded."""
    options = console.options.update_width(PLAIN_WIDTH)
    return console.measure(table, options=options).maximum
