"""XLSX workbook: a summary sheet first (counts per territory and theme), then one sheet per
territory. Text cells that a spreadsheet would run as formulas are neutralised.

The territories' sheets are *streamed*: each row's markup (inline strings, as openpyxl's
write-only mode writes them) goes straight into the sheet's member of the package as the rows
come, compressed, never kept (openpyxl took ~1 ms a row and held every text until the end).
openpyxl builds the rest when the workbook is saved: the summary sheet, styles, the workbook
and its relationships, with the territories' sheets empty; their members are replaced by the
streamed ones.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from exporter.package import ZIP_DATE, open_member
from exporter.rows import COLUMNS, RowMaker, neutralise
from exporter.source import CampaignData, Item, TerritoryInfo

SUMMARY = "Synthèse"
#: The date of a workbook without any contribution (as the documents', ``report.EPOCH``).
NO_DATA_DATE = datetime(2022, 1, 1, tzinfo=UTC)
#: Characters of markup buffered before a write to the package.
_FLUSH_CHARS = 1 << 20


def _sheet_frame() -> tuple[str, str]:
    """The markup openpyxl writes around a write-only sheet's rows (before, after)."""
    book = Workbook(write_only=True)
    book.create_sheet("frame")
    package = io.BytesIO()
    book.save(package)
    with zipfile.ZipFile(package) as zf:
        xml = zf.read("xl/worksheets/sheet1.xml").decode("utf-8")
    if "<sheetData/>" in xml:
        head, tail = xml.split("<sheetData/>")
    else:
        head, rest = xml.split("<sheetData>")
        tail = rest.split("</sheetData>", 1)[1]
    return head + "<sheetData>", "</sheetData>" + tail


#: The columns whose values many rows share (a campaign's themes, territories, profiles...):
#: their cells' markup is made once per value.
_SHARED = frozenset(
    {
        "territory_code",
        "territory",
        "theme_number",
        "theme_code",
        "theme",
        "supplementary_theme",
        "profile",
        "language",
        "channel",
        "topic_id",
        "topic",
    }
)
#: Values whose markup is kept, at most (a free-text column of unique values stops there).
_SHARED_VALUES = 10_000


def _value(value: str | int) -> str:
    """A cell's markup after its reference (``<c r="A1"``)."""
    if isinstance(value, int):
        return f' t="n"><v>{value}</v></c>'
    if not value:
        return ' t="inlineStr"></c>'
    space = ' xml:space="preserve"' if value[0].isspace() or value[-1].isspace() else ""
    return f' t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>'


def _cell(reference: str, value: str | int) -> str:
    return f'<c r="{reference}"{_value(value)}'


class XlsxWriter:
    """Write the workbook to ``path`` (opened now; complete when :meth:`save` returns)."""

    def __init__(self, campaign: CampaignData, rows: RowMaker, path: Path) -> None:
        self._campaign = campaign
        self._rows = rows
        self._package = zipfile.ZipFile(path, "w")
        self._head, self._tail = _sheet_frame()
        self._letters = [get_column_letter(k + 1) for k in range(len(COLUMNS))]
        self._keep = [name in _SHARED for name in COLUMNS]
        #: the markup of the shared columns' values met (:data:`_SHARED`)
        self._shared: dict[str | int, str] = {}
        self._sheet: IO[bytes] | None = None
        self._pending: list[str] = []
        self._size = 0
        self._row = 0
        self._counts: Counter[tuple[str, int]] = Counter()
        self._territories: list[TerritoryInfo] = []
        #: the latest contribution's date: the workbook's (never "now")
        self._latest: datetime | None = None

    def start_territory(self, territory: TerritoryInfo) -> None:
        self._close_sheet()
        self._territories.append(territory)
        # openpyxl names a sheet's member after its position (the summary is sheet1)
        info = zipfile.ZipInfo(f"xl/worksheets/sheet{len(self._territories) + 1}.xml")
        info.date_time = ZIP_DATE
        self._sheet = open_member(self._package, info)
        self._pending = [self._head]
        self._size = len(self._head)
        self._row = 0
        self._append(list(COLUMNS))

    def add(self, item: Item) -> None:
        self.add_cells(item, self._rows.cells(item))

    def add_cells(self, item: Item, cells: list[str | int]) -> None:
        """``item``'s row already made (:meth:`RowMaker.cells`)."""
        assert self._sheet is not None, "start_territory first"
        self._counts[(item.territory, item.theme_number)] += 1
        if self._latest is None or item.submitted_at > self._latest:
            self._latest = item.submitted_at
        self._append(cells)

    def _append(self, cells: list[str | int]) -> None:
        self._row += 1
        n = self._row
        parts = [f'<row r="{n}">']
        shared = self._shared
        for letter, keep, value in zip(self._letters, self._keep, cells, strict=True):
            if keep:
                markup = shared.get(value)
                if markup is None:
                    markup = _value(value)
                    if len(shared) < _SHARED_VALUES:
                        shared[value] = markup
            else:
                markup = _value(value)
            parts.append(f'<c r="{letter}{n}"{markup}')
        parts.append("</row>")
        markup = "".join(parts)
        self._pending.append(markup)
        self._size += len(markup)
        if self._size >= _FLUSH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._sheet is not None and self._pending:
            self._sheet.write("".join(self._pending).encode("utf-8"))
        self._pending.clear()
        self._size = 0

    def _close_sheet(self) -> None:
        if self._sheet is None:
            return
        self._pending.append(self._tail)
        self._flush()
        self._sheet.close()
        self._sheet = None

    def save(self) -> None:
        """Finish the workbook."""
        self._close_sheet()
        book = Workbook(write_only=True)
        summary = book.create_sheet(SUMMARY)
        themes = [f"{n} - {self._campaign.theme_label(n)}" for n in range(1, 6)]
        summary.append([self._campaign.name])
        summary.append(["Territoire", "Code", *themes, "Total"])
        totals = [0] * 5
        for t in self._territories:
            values = [self._counts[(t.code, n)] for n in range(1, 6)]
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            summary.append([neutralise(t.name), t.code, *values, sum(values)])
            book.create_sheet(t.code[:31])
        summary.append(["Total", "", *totals, sum(totals)])
        # dated like the documents: the latest contribution (UTC, to the second)
        stamp = (self._latest or NO_DATA_DATE).astimezone(UTC).replace(microsecond=0, tzinfo=None)
        book.properties.created = book.properties.modified = stamp
        skeleton = io.BytesIO()
        # openpyxl's writer itself: ``Workbook.save`` would date the workbook "now"
        ExcelWriter(book, zipfile.ZipFile(skeleton, "w", zipfile.ZIP_DEFLATED)).save()
        streamed = set(self._package.namelist())
        with zipfile.ZipFile(skeleton) as source:
            missing = streamed - set(source.namelist())
            if missing:  # openpyxl named its sheets otherwise
                raise RuntimeError(f"no such sheet in the workbook: {sorted(missing)}")
            for info in source.infolist():
                if info.filename not in streamed:
                    info.date_time = ZIP_DATE
                    self._package.writestr(
                        info, source.read(info), compress_type=info.compress_type
                    )
        self._package.close()

    def close(self) -> None:
        """Give up the workbook (an export that failed): the file is left incomplete."""
        self._close_sheet()
        self._package.close()
