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
    GROUPED,
    INTRO_II,
    MAIN_TOPICS,
    NO_CONTRIBUTION,
    NO_ITEM,
    NO_SECTION_CONTRIBUTION,
    NO_TOPIC,
    PART_I,
    PART_II,
    PART_III,
    REGION_TOPICS,
    SECTION_LABELS,
    TOPICS_LABEL,
    AnnexRow,
    Report,
    Sections,
    entry_text,
    grouped_text,
    is_long_group,
    topic_text,
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


def empty_section_blocks() -> Iterator[Label | Paragraph]:
    """The three headings of a theme without contribution: the annex's skeleton stays."""
    for label in SECTION_LABELS:
        yield Label(label)
        yield Paragraph(NO_SECTION_CONTRIBUTION)


def topic_blocks(sections: Sections) -> Iterator[Label | Items | Paragraph]:
    """ "Principaux sujets": the main topics of a theme, best supported first."""
    yield Label(TOPICS_LABEL)
    if sections.topics is None:
        yield Paragraph(REGION_TOPICS)
    elif sections.topics.topics:
        yield Items([topic_text(t) for t in sections.topics.topics[:MAIN_TOPICS]])
    else:
        yield Paragraph(NO_TOPIC)


def grouped_lines(report: Report) -> list[str]:
    """The annex lines of the groups whose references are not all shown inline."""
    lines: list[str] = []
    for block in report.themes:
        parts = [block.sections] if block.sections is not None else []
        parts += [sub.sections for sub in block.subthemes]
        for sections in parts:
            for label, groups in sections.as_pairs():
                lines += [grouped_text(g, label) for g in groups if is_long_group(g)]
    return lines


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
            yield from empty_section_blocks()
            continue
        if block.sections is not None:
            yield from topic_blocks(block.sections)
            yield from section_blocks(block.sections)
        for sub in block.subthemes:
            yield Heading(4, sub.label)
            yield from topic_blocks(sub.sections)
            yield from section_blocks(sub.sections)
    yield Heading(2, PART_III)
    yield Paragraph(report.perspectives)
    yield Heading(2, ANNEX)
    yield Listing(ANNEX_COLUMNS, report.annex)
    grouped = grouped_lines(report)
    if grouped:
        yield Label(GROUPED)
        yield Items(grouped)
