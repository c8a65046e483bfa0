"""The one walk over the annex: a :class:`~exporter.report.Report` as a sequence of blocks.

:func:`document_blocks` decides what the annex says and in which order (headings, paragraphs,
lists, tables); the DOCX, ODT and Markdown writers only decide how each kind of block looks.
A change to the annex's structure is made here, once, for the three formats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from exporter.report import (
    ANNEX,
    ANNEX_COLUMNS,
    ANNEX_SEPARATOR,
    COLLECTED,
    INTRO_II,
    NO_CONTRIBUTION,
    NO_ITEM,
    PART_I,
    PART_II,
    PART_III,
    AnnexRow,
    Report,
    Sections,
    entry_text,
)

#: What stands in the annex for a selection without contribution.
NO_ANNEX_ROW = "Aucune contribution."
#: The name of the regional roll-up's table (ODT names its tables).
MATRIX_NAME = "Repartition"


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading of outline ``level`` (1: the title)."""

    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class Label:
    """A bold line introducing the list that follows ("Constats :")."""

    text: str


@dataclass(frozen=True, slots=True)
class Items:
    """A bulleted list: the items of a section (never empty)."""

    texts: list[str]


@dataclass(frozen=True, slots=True)
class Table:
    """A small table, header row first (the regional roll-up)."""

    rows: list[list[str]]
    name: str


@dataclass(frozen=True, slots=True)
class Chart:
    """The bar chart (``--charts``), as PNG."""

    png: bytes


@dataclass(frozen=True, slots=True)
class Listing:
    """The annex list, one row a contribution; it can hold hundreds of thousands of rows.

    Markdown writes it as a table; DOCX and ODT as a bold header line and one line a row, the
    cells joined by :data:`~exporter.report.ANNEX_SEPARATOR` (a real table would cost 21 XML
    elements a row in DOCX and 11 in ODT). With no row, ``empty`` stands instead.
    """

    columns: tuple[str, ...]
    rows: Sequence[AnnexRow]
    empty: str = NO_ANNEX_ROW

    @property
    def header(self) -> str:
        return ANNEX_SEPARATOR.join(self.columns)


Block = Heading | Paragraph | Label | Items | Table | Chart | Listing


def section_blocks(sections: Sections) -> Iterator[Label | Items | Paragraph]:
    """The Constats, Solutions and Propositions of a theme: each label, then its items (or
    "Aucun élément.")."""
    for label, groups in sections.as_pairs():
        yield Label(label)
        if groups:
            yield Items([entry_text(group) for group in groups])
        else:
            yield Paragraph(NO_ITEM)


def document_blocks(report: Report) -> Iterator[Block]:
    """The annex of ``report``, block after block, in the order of the national instruction."""
    yield Heading(1, report.title)
    yield Heading(2, PART_I)
    yield Heading(3, report.situation_heading)
    yield Paragraph(report.situation)
    yield Heading(3, COLLECTED)
    for line in report.stats.lines():
        yield Paragraph(line)
    if report.matrix:
        yield Table(report.matrix, MATRIX_NAME)
    if report.chart_png:
        yield Chart(report.chart_png)
    yield Heading(2, PART_II)
    yield Paragraph(INTRO_II)
    for block in report.themes:
        yield Heading(3, block.heading)
        if block.count == 0:
            yield Paragraph(NO_CONTRIBUTION)
            continue
        if block.sections is not None:
            yield from section_blocks(block.sections)
        for sub in block.subthemes:
            yield Heading(4, sub.label)
            yield from section_blocks(sub.sections)
    yield Heading(2, PART_III)
    yield Paragraph(report.perspectives)
    yield Heading(2, ANNEX)
    yield Listing(ANNEX_COLUMNS, report.annex)
