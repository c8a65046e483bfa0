"""The annex as a Word document (python-docx), with real heading levels for the outline pane.

Part I (title, context, counts, the regional table and the chart) is built with python-docx's
API. From part II on (the themes' items and the annex list, hundreds of thousands of
paragraphs), the body is *streamed*: escaped markup written straight into ``word/document.xml``
of the package python-docx saved (:mod:`exporter.package`), so the document is never a tree in
memory. (The API's ``add_paragraph`` also searches the body for ``w:sectPr`` on every call:
quadratic, 55 s for 30,000 styled items here.)
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import docx
from docx.document import Document as DocxDocument
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from docx.shared import Cm

from exporter import blocks
from exporter.package import MARKER, write_streamed
from exporter.report import PART_II, Report

_W = nsdecls("w")
AUTHOR = "cnr-sante-bot"
#: Paragraphs of a list made into one chunk of markup.
RUN = 1000
_CLOSE = "</w:t></w:r></w:p>"


class _Body:
    """Appends paragraphs and table rows at the end of the document body, fast: paragraphs
    are buffered as markup and parsed by blocks (one parse per ``BLOCK`` paragraphs)."""

    BLOCK = 1000

    def __init__(self, document: DocxDocument) -> None:
        self.document = document
        self.bullet = document.styles["List Bullet"].style_id
        self.pending: list[str] = []
        # looked up once: finding it scans every child of the body
        self.sect_pr = document.element.body.sectPr

    def flush(self) -> None:
        """Append the buffered paragraphs (call before any python-docx API addition)."""
        if not self.pending:
            return
        wrapper = parse_xml(f"<w:body {_W}>{''.join(self.pending)}</w:body>")
        self.pending.clear()
        body = self.document.element.body
        for element in list(wrapper):
            if self.sect_pr is not None:
                self.sect_pr.addprevious(element)
            else:
                body.append(element)

    def _append(self, xml: str) -> None:
        self.pending.append(xml)
        if len(self.pending) >= self.BLOCK:
            self.flush()

    def item(self, text: str) -> None:
        self._append(
            f'<w:p><w:pPr><w:pStyle w:val="{self.bullet}"/></w:pPr>'
            f'<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        )

    def text(self, text: str) -> None:
        self._append(f'<w:p><w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>')

    def label(self, text: str) -> None:
        self._append(
            "<w:p><w:r><w:rPr><w:b/></w:rPr>"
            f'<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        )

    def heading(self, text: str, level: int) -> None:
        self.flush()
        self.document.add_heading(text, level=level)

    def table(self, rows: list[list[str]]) -> None:
        self.flush()
        header, *body = rows
        table = self.document.add_table(rows=1, cols=len(header))
        table.style = self.document.styles["Table Grid"]
        for cell, value in zip(table.rows[0].cells, header, strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(value).bold = True
        tbl = table._tbl
        for start in range(0, len(body), self.BLOCK):
            rows_xml = "".join(
                "<w:tr>"
                + "".join(
                    f'<w:tc><w:p><w:r><w:t xml:space="preserve">{escape(v)}</w:t></w:r></w:p>'
                    "</w:tc>"
                    for v in row
                )
                + "</w:tr>"
                for row in body[start : start + self.BLOCK]
            )
            for tr in list(parse_xml(f"<w:tbl {_W}>{rows_xml}</w:tbl>")):
                tbl.append(tr)


class _Markup:
    """The markup of the streamed blocks (the styles' ids taken from the skeleton)."""

    def __init__(self, document: DocxDocument) -> None:
        self.bullet = document.styles["List Bullet"].style_id
        self.headings = {
            level: document.styles[f"Heading {level}"].style_id for level in range(1, 5)
        }

    @staticmethod
    def _open(style: str | None, bold: bool) -> str:
        """A paragraph's markup before its text."""
        props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
        run = "<w:rPr><w:b/></w:rPr>" if bold else ""
        return f'<w:p>{props}<w:r>{run}<w:t xml:space="preserve">'

    def paragraph(self, text: str, style: str | None = None, *, bold: bool = False) -> str:
        return f"{self._open(style, bold)}{escape(text)}{_CLOSE}"

    def paragraphs(self, texts: Iterable[str], style: str | None = None) -> Iterator[str]:
        """Paragraphs of one style, :data:`RUN` at a time (a list or the annex list can hold
        hundreds of thousands)."""
        start = self._open(style, False)
        texts = iter(texts)
        while run := list(itertools.islice(texts, RUN)):
            yield "".join([f"{start}{escape(text)}{_CLOSE}" for text in run])

    def blocks(self, stream: Iterator[blocks.Block]) -> Iterator[str]:
        for block in stream:
            match block:
                case blocks.Heading(level, text):
                    yield self.paragraph(text, self.headings[level])
                case blocks.Paragraph(text):
                    yield self.paragraph(text)
                case blocks.Label(text):
                    yield self.paragraph(text, bold=True)
                case blocks.Items(texts):
                    yield from self.paragraphs(texts, self.bullet)
                case blocks.Listing(rows=rows, empty=empty):
                    if not rows:
                        yield self.paragraph(empty)
                        continue
                    yield self.paragraph(block.header, bold=True)
                    yield from self.paragraphs(row.line() for row in rows)
                case _:  # tables and charts belong to part I
                    raise ValueError(f"no streamed form for {type(block).__name__}")


def _skeleton(report: Report) -> tuple[DocxDocument, Iterator[blocks.Block]]:
    """The document up to part II (python-docx), and the blocks left to stream."""
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
    stream = blocks.document_blocks(report)
    for block in stream:
        if block == blocks.Heading(2, PART_II):
            body.flush()
            return document, itertools.chain([block], stream)
        match block:
            case blocks.Heading(level, text):
                body.heading(text, level)
            case blocks.Paragraph(text):
                body.text(text)
            case blocks.Label(text):
                body.label(text)
            case blocks.Items(texts):
                for text in texts:
                    body.item(text)
            case blocks.Table(rows):
                body.table(rows)
            case blocks.Chart(png):
                body.flush()
                document.add_picture(io.BytesIO(png), width=Cm(16))
            case blocks.Listing(rows=rows, empty=empty):
                if not rows:
                    body.text(empty)
                    continue
                body.label(block.header)
                for row in rows:
                    body.text(row.line())
    body.flush()
    return document, iter(())


def write_docx(report: Report, path: Path) -> None:
    """Write the annex to ``path``: part I built, the rest streamed."""
    document, rest = _skeleton(report)
    document.add_paragraph(MARKER)
    skeleton = io.BytesIO()
    document.save(skeleton)
    markup = _Markup(document)
    del document
    write_streamed(skeleton.getvalue(), path, "word/document.xml", "w:p", markup.blocks(rest))
