"""XLSX workbook (openpyxl, write-only mode: rows are streamed to disk, not kept).

A summary sheet first (counts per territory and theme), then one sheet per territory. Text cells
that a spreadsheet would run as formulas are neutralised.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from openpyxl import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from exporter.rows import COLUMNS, RowMaker, neutralise
from exporter.source import CampaignData, Item, TerritoryInfo

SUMMARY = "Synthèse"


class XlsxWriter:
    def __init__(self, campaign: CampaignData, rows: RowMaker) -> None:
        self._campaign = campaign
        self._rows = rows
        self._book = Workbook(write_only=True)
        self._summary: WriteOnlyWorksheet = self._book.create_sheet(SUMMARY)
        self._sheet: WriteOnlyWorksheet | None = None
        self._counts: Counter[tuple[str, int]] = Counter()
        self._territories: list[TerritoryInfo] = []

    def start_territory(self, territory: TerritoryInfo) -> None:
        self._territories.append(territory)
        self._sheet = self._book.create_sheet(territory.code[:31])
        self._sheet.append(list(COLUMNS))

    def add(self, item: Item) -> None:
        self.add_cells(item, self._rows.cells(item))

    def add_cells(self, item: Item, cells: list[str | int]) -> None:
        """``item``'s row already made (:meth:`RowMaker.cells`)."""
        assert self._sheet is not None, "start_territory first"
        self._counts[(item.territory, item.theme_number)] += 1
        self._sheet.append(cells)

    def save(self, path: Path) -> None:
        themes = [f"{n} - {self._campaign.theme_label(n)}" for n in range(1, 6)]
        self._summary.append([self._campaign.name])
        self._summary.append(["Territoire", "Code", *themes, "Total"])
        totals = [0] * 5
        for t in self._territories:
            values = [self._counts[(t.code, n)] for n in range(1, 6)]
            totals = [a + b for a, b in zip(totals, values, strict=True)]
            self._summary.append([neutralise(t.name), t.code, *values, sum(values)])
        self._summary.append(["Total", "", *totals, sum(totals)])
        self._book.save(str(path))
