"""CSV: UTF-8, comma separated, RFC 4180 quoting, one row per contribution, columns
:data:`exporter.rows.COLUMNS`; cells that a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import csv
import io
from typing import TextIO

from exporter.rows import COLUMNS, RowMaker
from exporter.source import Item


class CsvWriter:
    def __init__(self, out: TextIO, rows: RowMaker) -> None:
        self._rows = rows
        self._out = out
        self._writer = csv.writer(out, lineterminator="\r\n")
        self._writer.writerow(COLUMNS)

    def add(self, item: Item) -> None:
        self.add_cells(self._rows.cells(item))

    def add_cells(self, cells: list[str | int]) -> None:
        """A row already made (:meth:`RowMaker.cells`): one row, several files."""
        self._writer.writerow(cells)

    def add_line(self, line: str) -> None:
        """A row already written as a line (:class:`CsvLines`): one line, several files."""
        self._out.write(line)


class CsvLines:
    """Rows as CSV lines (the same quoting as :class:`CsvWriter`), made once for the files of
    a territory and of the regional roll-up."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def line(self, cells: list[str | int]) -> str:
        self._writer.writerow(cells)
        line = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return line
