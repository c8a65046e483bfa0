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

    def add_encoded(self, lines: bytes) -> None:
        """Rows already written as lines (:class:`CsvLines`) and encoded in UTF-8, as one
        write: lines encoded once for the territory's file and the roll-up's (the file is
        one opened by ``open``, with ``newline=""``)."""
        self._out.flush()
        self._out.buffer.write(lines)


#: What :mod:`csv`'s minimal quoting (``QUOTE_MINIMAL``, comma, double quote doubled, line
#: terminator ``\r\n``) quotes a field for: the delimiter, the quote, a character of the line
#: terminator.
_QUOTED = (",", "\r", "\n")


def _field(value: str | int) -> str:
    """A cell as :mod:`csv` writes it with :class:`CsvWriter`'s dialect."""
    if isinstance(value, int):
        return str(value)
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    for char in _QUOTED:
        if char in value:
            return '"' + value + '"'
    return value


class CsvLines:
    """Rows as CSV lines, made once for the files of a territory and of the regional roll-up:
    the bytes :class:`CsvWriter` writes (tested against :mod:`csv`), ~8 times faster (the
    ``csv`` writer looks each character up in the line terminator, twice: ~35 us for a row of
    two 500-character texts)."""

    def line(self, cells: list[str | int]) -> str:
        if len(cells) == 1 and cells[0] == "":
            return '""\r\n'  # csv quotes a row's only field when empty (else: an empty line)
        return ",".join([_field(value) for value in cells]) + "\r\n"
