"""The annex as an OpenDocument text (odfpy): ``text:h`` headings with outline levels.

ODF is the French administration's interoperability standard (RGI). Metadata dates are the
report's stamp, never "now", so two exports of the same data have the same text and metadata.

odfpy builds the document's skeleton (styles, metadata, package) and part I (title, context,
counts, the regional table, the chart). From part II on (the themes' items and the annex list,
hundreds of thousands of paragraphs), the body is *streamed*: escaped ``text:h``/``text:p``
markup written straight into ``content.xml`` of the package odfpy saved
(:mod:`exporter.package`), never a tree in memory (odfpy also costs ~50 us per element, 35 s
for 100,000 contributions and their roll-up).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from odf import dc, meta
from odf.draw import Frame, Image
from odf.element import Element, Text
from odf.namespaces import nsdict
from odf.opendocument import OpenDocumentText
from odf.style import (
    GraphicProperties,
    ParagraphProperties,
    Style,
    TableColumnProperties,
    TextProperties,
)
from odf.table import Table, TableCell, TableColumn, TableRow
from odf.text import H, P, Span

from exporter import blocks
from exporter.package import MARKER, write_streamed
from exporter.report import PART_II, Report

ITEM_STYLE = "Contribution"
LABEL_STYLE = "Label"
ROW_STYLE = "AnnexRow"
_HEADING_SIZES = {1: "20pt", 2: "16pt", 3: "13pt", 4: "12pt"}
#: Paragraphs of a list made into one chunk of markup.
RUN = 1000


class _Styles:
    def __init__(self, doc: OpenDocumentText) -> None:
        self.heading: dict[int, Style] = {}
        for level, size in _HEADING_SIZES.items():
            style = Style(
                name=f"Heading_20_{level}",
                displayname=f"Heading {level}",
                family="paragraph",
                defaultoutlinelevel=str(level),
            )
            style.addElement(ParagraphProperties(margintop="0.4cm", marginbottom="0.2cm"))
            style.addElement(TextProperties(fontsize=size, fontweight="bold"))
            doc.styles.addElement(style)
            self.heading[level] = style
        self.bold = Style(name=LABEL_STYLE, family="text")
        self.bold.addElement(TextProperties(fontweight="bold"))
        doc.styles.addElement(self.bold)
        self.header_cell = Style(name="HeaderText", family="text")
        self.header_cell.addElement(TextProperties(fontweight="bold"))
        doc.styles.addElement(self.header_cell)
        self.column = Style(name="Column", family="table-column")
        self.column.addElement(TableColumnProperties(columnwidth="3.2cm"))
        doc.automaticstyles.addElement(self.column)
        # items and annex rows are plain paragraphs (see _Paragraphs)
        self.item = Style(name=ITEM_STYLE, family="paragraph")
        self.item.addElement(
            ParagraphProperties(marginleft="0.6cm", textindent="-0.4cm", marginbottom="0.1cm")
        )
        doc.styles.addElement(self.item)
        self.row = Style(name=ROW_STYLE, family="paragraph")
        self.row.addElement(ParagraphProperties(marginbottom="0cm"))
        doc.styles.addElement(self.row)
        self.frame = Style(name="Chart", family="graphic")
        self.frame.addElement(GraphicProperties(anchortype="paragraph"))
        doc.automaticstyles.addElement(self.frame)


class _Paragraphs(Text):  # type: ignore[misc]  # odfpy is untyped
    """A block of ``text:p`` paragraphs, escaped once and written as is by odfpy's serialiser
    (odfpy writes a node's children with ``child.toXml(level, file)``)."""

    def __init__(self) -> None:
        super().__init__("")
        self.parts: list[str] = []

    def add(self, text: str, style: str | None = None) -> None:
        attr = f' text:style-name="{quoteattr(style)[1:-1]}"' if style else ""
        self.parts.append(f"<text:p{attr}>{escape(text)}</text:p>")

    def toXml(self, level: int, f: Any) -> None:
        for part in self.parts:
            f.write(part)


def _heading(doc: OpenDocumentText, styles: _Styles, level: int, text: str) -> None:
    doc.text.addElement(H(outlinelevel=level, stylename=styles.heading[level], text=text))


def _table(doc: OpenDocumentText, styles: _Styles, rows: list[list[str]], name: str) -> None:
    header, *body = rows
    table = Table(name=name)
    table.addElement(TableColumn(numbercolumnsrepeated=len(header), stylename=styles.column))
    head = TableRow()
    for value in header:
        cell = TableCell(valuetype="string")
        p = P()
        p.addElement(Span(stylename=styles.header_cell, text=value))
        cell.addElement(p)
        head.addElement(cell)
    table.addElement(head)
    for row in body:
        tr = TableRow()
        for value in row:
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=value))
            tr.addElement(cell)
        table.addElement(tr)
    doc.text.addElement(table)


def _p(text: str, style: str | None = None) -> str:
    attr = f' text:style-name="{quoteattr(style)[1:-1]}"' if style else ""
    return f"<text:p{attr}>{escape(text)}</text:p>"


def _ps(texts: Iterable[str], style: str) -> Iterator[str]:
    """:func:`_p` of each text, :data:`RUN` paragraphs a chunk (a list or the annex list can
    hold hundreds of thousands)."""
    start = _p("", style).removesuffix("</text:p>")
    texts = iter(texts)
    while run := list(itertools.islice(texts, RUN)):
        yield "".join([f"{start}{escape(text)}</text:p>" for text in run])


def _bold(text: str, style: str | None = None) -> str:
    attr = f' text:style-name="{quoteattr(style)[1:-1]}"' if style else ""
    span = f'<text:span text:style-name="{LABEL_STYLE}">{escape(text)}</text:span>'
    return f"<text:p{attr}>{span}</text:p>"


def _markup(stream: Iterator[blocks.Block], styles: _Styles) -> Iterator[str]:
    """The streamed blocks (part II on) as ``content.xml`` markup."""
    for block in stream:
        match block:
            case blocks.Heading(level, text):
                name = quoteattr(styles.heading[level].getAttribute("name"))
                yield (
                    f'<text:h text:outline-level="{level}" text:style-name={name}>'
                    f"{escape(text)}</text:h>"
                )
            case blocks.Paragraph(text):
                yield _p(text)
            case blocks.Label(text):
                yield _bold(text)
            case blocks.Items(texts):
                yield from _ps(texts, ITEM_STYLE)
            case blocks.Listing(rows=rows, empty=empty):
                if not rows:
                    yield _p(empty)
                    continue
                yield _bold(block.header, ROW_STYLE)
                yield from _ps((row.line() for row in rows), ROW_STYLE)
            case _:  # tables and charts belong to part I
                raise ValueError(f"no streamed form for {type(block).__name__}")


def _skeleton(report: Report) -> tuple[OpenDocumentText, _Styles, Iterator[blocks.Block]]:
    """The document up to part II (odfpy), its styles, and the blocks left to stream."""
    doc = OpenDocumentText()
    stamp = report.stamp.replace(tzinfo=None).isoformat()
    doc.meta.addElement(dc.Title(text=report.title))
    doc.meta.addElement(meta.CreationDate(text=stamp))
    doc.meta.addElement(dc.Date(text=stamp))
    doc.meta.addElement(meta.InitialCreator(text="cnr-sante-bot"))
    styles = _Styles(doc)
    stream = blocks.document_blocks(report)
    for block in stream:
        if block == blocks.Heading(2, PART_II):
            return doc, styles, itertools.chain([block], stream)
        match block:
            case blocks.Heading(level, text):
                _heading(doc, styles, level, text)
            case blocks.Paragraph(text):
                doc.text.addElement(P(text=text))
            case blocks.Label(text):
                p = P()
                p.addElement(Span(stylename=styles.bold, text=text))
                doc.text.addElement(p)
            case blocks.Items(texts):
                items = _Paragraphs()
                for text in texts:
                    items.add(text, ITEM_STYLE)
                doc.text.appendChild(items)
            case blocks.Table(rows, name):
                _table(doc, styles, rows, name)
            case blocks.Chart(png):
                href = doc.addPicture("Pictures/chart.png", "image/png", png)
                frame = Frame(
                    stylename=styles.frame, width="16cm", height="9cm", anchortype="paragraph"
                )
                frame.addElement(Image(href=href))
                p = P()
                p.addElement(frame)
                doc.text.addElement(p)
            case blocks.Listing(rows=rows, empty=empty):
                if not rows:
                    doc.text.addElement(P(text=empty))
                    continue
                header = P(stylename=styles.row)
                header.addElement(Span(stylename=styles.bold, text=block.header))
                doc.text.addElement(header)
                lines = _Paragraphs()
                for row in rows:
                    lines.add(row.line(), ROW_STYLE)
                doc.text.appendChild(lines)
    return doc, styles, iter(())


def write_odt(report: Report, path: Path) -> None:
    """Write the annex to ``path``: part I built, the rest streamed."""
    _declare_every_namespace()
    doc, styles, rest = _skeleton(report)
    doc.text.addElement(P(text=MARKER))
    skeleton = io.BytesIO()
    doc.write(skeleton)
    del doc
    write_streamed(skeleton.getvalue(), path, "content.xml", "text:p", _markup(rest, styles))


def _declare_every_namespace() -> None:
    """Every part's root declares the same namespaces, in the same order, whatever the process
    wrote before: odfpy declares those *its process* has met (a dict shared by every element),
    so a console that had written another document, or the first part of this one, made
    different bytes. With every namespace odfpy knows, sorted by prefix, two exports of the
    same data are byte-identical (unused declarations are valid XML and ODF)."""
    met: dict[str, str] = Element.namespaces
    every = sorted({**met, **nsdict}.items(), key=lambda pair: (pair[1], pair[0]))
    met.clear()
    met.update(every)
