"""The annex as Markdown (CommonMark): real ``#`` heading levels, items as list entries.

Citizens' texts are escaped, so that a contribution can neither open a heading, a link, an
image or raw HTML, nor break the annex table.
"""

from __future__ import annotations

import re
from typing import TextIO

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

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~&])")
_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-+=.)])")


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text (one line)."""
    escaped = _SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def _cell(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text) or " "


def _sections(out: TextIO, sections: Sections) -> None:
    for label, groups in sections.as_pairs():
        out.write(f"**{escape(label)}**\n\n")
        if not groups:
            out.write(f"{NO_ITEM}\n\n")
            continue
        for group in groups:
            out.write(f"- {escape(entry_text(group))}\n")
        out.write("\n")


def write_markdown(report: Report, out: TextIO, *, chart_file: str | None = None) -> None:
    """Write ``report`` to ``out`` (a text stream opened with ``newline=""``)."""
    out.write(f"# {escape(report.title)}\n\n")
    out.write(f"## {PART_I}\n\n")
    out.write(f"### {escape(report.situation_heading)}\n\n{escape(report.situation)}\n\n")
    out.write(f"### {COLLECTED}\n\n")
    for line in report.stats.lines():
        out.write(f"{escape(line)}\n\n")
    if report.matrix:
        _table(out, report.matrix)
    if chart_file:
        out.write(f"![Contributions par thématique]({chart_file})\n\n")
    out.write(f"## {PART_II}\n\n{escape(INTRO_II)}\n\n")
    for block in report.themes:
        out.write(f"### {escape(block.heading)}\n\n")
        if block.count == 0:
            out.write(f"{NO_CONTRIBUTION}\n\n")
            continue
        if block.sections is not None:
            _sections(out, block.sections)
        for sub in block.subthemes:
            out.write(f"#### {escape(sub.label)}\n\n")
            _sections(out, sub.sections)
    out.write(f"## {PART_III}\n\n{escape(report.perspectives)}\n\n")
    out.write(f"## {escape(ANNEX)}\n\n")
    if not report.annex:
        out.write("Aucune contribution.\n")
        return
    _table(out, [list(ANNEX_COLUMNS)] + [list(r.cells()) for r in report.annex])


def _table(out: TextIO, rows: list[list[str]]) -> None:
    header, *body = rows
    out.write("| " + " | ".join(_cell(c) for c in header) + " |\n")
    out.write("|" + "---|" * len(header) + "\n")
    for row in body:
        out.write("| " + " | ".join(_cell(c) for c in row) + " |\n")
    out.write("\n")
