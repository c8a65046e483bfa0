"""The annex as Markdown (CommonMark): real ``#`` heading levels, items as list entries.

Citizens' texts are escaped, so that a contribution can neither open a heading, a link, an
image or raw HTML, nor break the annex table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TextIO

from exporter import blocks
from exporter.report import Report

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~&])")
_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-+=.)])")


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text (one line)."""
    escaped = _SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def _cell(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text) or " "


def write_markdown(report: Report, out: TextIO, *, chart_file: str | None = None) -> None:
    """Write ``report`` to ``out`` (a text stream opened with ``newline=""``); the chart, if
    any, is linked as ``chart_file`` (written next to the document by the caller)."""
    for block in blocks.document_blocks(report):
        match block:
            case blocks.Heading(level, text):
                out.write(f"{'#' * level} {escape(text)}\n\n")
            case blocks.Paragraph(text):
                out.write(f"{escape(text)}\n\n")
            case blocks.Label(text):
                out.write(f"**{escape(text)}**\n\n")
            case blocks.Items(texts):
                for text in texts:
                    out.write(f"- {escape(text)}\n")
                out.write("\n")
            case blocks.Table(rows):
                _table(out, rows[0], rows[1:])
            case blocks.Chart():
                if chart_file:
                    out.write(f"![Contributions par thématique]({chart_file})\n\n")
            case blocks.Listing(columns, rows, empty):
                if not rows:
                    out.write(f"{empty}\n")
                else:
                    _table(out, list(columns), (r.cells() for r in rows))


def _table(out: TextIO, header: Sequence[str], body: Iterable[Sequence[str]]) -> None:
    """A table: ``header``, then the rows of ``body`` as they come (the annex list is never
    copied whole)."""
    out.write("| " + " | ".join(_cell(c) for c in header) + " |\n")
    out.write("|" + "---|" * len(header) + "\n")
    for row in body:
        out.write("| " + " | ".join(_cell(c) for c in row) + " |\n")
    out.write("\n")
