"""CSV: UTF-8, comma separated, RFC 4180 quoting, one row per contribution, columns
:data:`exporter.rows.COLUMNS`; cells that a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import csv
from typing import TextIO

from exporter.rows import COLUMNS, RowMaker
from exporter.source import Item


class CsvWriter:
    def __init__(self, out: TextIO, rows: RowMaker) -> None:
        self._rows = rows
        self._writer = csv.writer(out, lineterminator="\r\n")
        self._writer.writerow(COLUMNS)

    def add(self, item: Item) -> None:
        self.add_cells(self._rows.cells(item))

    def add_cells(self, cells: list[str | int]) -> None:
        """A row already made (:meth:`RowMaker.cells`): one row, several files."""
        self._writer.writerow(cells)
