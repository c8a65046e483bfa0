"""The annex as a Word document (python-docx), with real heading levels for the outline pane.

Headings, tables and pictures go through python-docx's API. Item paragraphs, which can number
hundreds of thousands, are built with python-docx's own XML parser (``docx.oxml.parse_xml``)
and appended before the section properties in one step: the API's ``add_paragraph`` searches
the body for ``w:sectPr`` on every call (quadratic; 55 s for 30,000 styled items here) while
this costs ~15 µs an item.
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import docx
from docx.document import Document as DocxDocument
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from docx.shared import Cm

from exporter.report import (
    ANNEX,
    ANNEX_COLUMNS,
    COLLECTED,
    INTRO_II,
    NO_CONTRIBUTION,
    NO_ITEM,
    PART_I,
    PART_II,
    PART_III,
    Report,
    Sections,
    entry_text,
)

_W = nsdecls("w")
AUTHOR = "cnr-sante-bot"


class _Body:
    """Appends paragraphs and table rows at the end of the document body, fast."""

    def __init__(self, document: DocxDocument) -> None:
        self.document = document
        self.sect_pr = document.element.body.sectPr
        self.bullet = document.styles["List Bullet"].style_id

    def _append(self, xml: str) -> None:
        element = parse_xml(xml)
        if self.sect_pr is not None:
            self.sect_pr.addprevious(element)
        else:
            self.document.element.body.append(element)

    def item(self, text: str) -> None:
        self._append(
            f'<w:p {_W}><w:pPr><w:pStyle w:val="{self.bullet}"/></w:pPr>'
            f'<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        )

    def text(self, text: str) -> None:
        self._append(f'<w:p {_W}><w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>')

    def label(self, text: str) -> None:
        self._append(
            f"<w:p {_W}><w:r><w:rPr><w:b/></w:rPr>"
            f'<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        )

    def table(self, rows: list[list[str]]) -> None:
        header, *body = rows
        table = self.document.add_table(rows=1, cols=len(header))
        table.style = self.document.styles["Table Grid"]
        for cell, value in zip(table.rows[0].cells, header, strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(value).bold = True
        tbl = table._tbl
        for row in body:
            cells = "".join(
                f'<w:tc><w:p><w:r><w:t xml:space="preserve">{escape(v)}</w:t></w:r></w:p></w:tc>'
                for v in row
            )
            tbl.append(parse_xml(f"<w:tr {_W}>{cells}</w:tr>"))


def _sections(body: _Body, sections: Sections) -> None:
    for label, groups in sections.as_pairs():
        body.label(label)
        if not groups:
            body.text(NO_ITEM)
        for group in groups:
            body.item(entry_text(group))


def build_docx(report: Report) -> DocxDocument:
    document = docx.Document()
    props = document.core_properties
    props.title = report.title
    props.subject = "Contributions citoyennes (messagerie)"
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.comments = ""
    props.revision = 1
    stamp = report.stamp.replace(tzinfo=None)
    props.created = stamp
    props.modified = stamp
    props.last_printed = stamp
    body = _Body(document)

    document.add_heading(report.title, level=1)
    document.add_heading(PART_I, level=2)
    document.add_heading(report.situation_heading, level=3)
    body.text(report.situation)
    document.add_heading(COLLECTED, level=3)
    for line in report.stats.lines():
        body.text(line)
    if report.matrix:
        body.table(report.matrix)
    if report.chart_png:
        document.add_picture(io.BytesIO(report.chart_png), width=Cm(16))
    document.add_heading(PART_II, level=2)
    body.text(INTRO_II)
    for block in report.themes:
        document.add_heading(block.heading, level=3)
        if block.count == 0:
            body.text(NO_CONTRIBUTION)
            continue
        if block.sections is not None:
            _sections(body, block.sections)
        for sub in block.subthemes:
            document.add_heading(sub.label, level=4)
            _sections(body, sub.sections)
    document.add_heading(PART_III, level=2)
    body.text(report.perspectives)
    document.add_heading(ANNEX, level=2)
    if report.annex:
        body.table([list(ANNEX_COLUMNS)] + [list(r.cells()) for r in report.annex])
    else:
        body.text("Aucune contribution.")
    return document


def write_docx(report: Report, path: Path) -> None:
    build_docx(report).save(str(path))
