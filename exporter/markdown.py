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
#: Lines written at once (one write a line cost more than making the line).
_LINES = 1000


def _escape_specials(text: str) -> str:
    # most texts have no special character: one scan, and no substitution to set up
    return _SPECIAL.sub(r"\\\1", text) if _SPECIAL.search(text) else text


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text (one line)."""
    escaped = _escape_specials(text)
    start = _LINE_START.match(escaped)  # a list or heading marker can only open the text
    if start is None:
        return escaped
    return start.group(1) + "\\" + start.group(2) + escaped[start.end() :]


def _cell(text: str) -> str:
    return _escape_specials(text) or " "


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
                for start in range(0, len(texts), _LINES):
                    out.write("".join([f"- {escape(t)}\n" for t in texts[start : start + _LINES]]))
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
    lines: list[str] = []
    for row in body:
        lines.append("| " + " | ".join([_cell(c) for c in row]) + " |\n")
        if len(lines) == _LINES:
            out.write("".join(lines))
            lines.clear()
    lines.append("\n")
    out.write("".join(lines))
