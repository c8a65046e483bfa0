"""``--into WORKSHOP.docx``: citizens' contributions next to a workshop restitution.

The workshop document follows the annex, but real ones vary: numbering ("1-", "2 —", "3 -",
"II."), heading styles (Heading 2, Titre 2, or plain paragraphs with bold runs) and labels.
Theme headings are therefore found by their wording (normalised: case, accents, punctuation,
numbering, "(s)"), and each theme gets, at the end of its own Constats/Solutions/Propositions, a
"Contributions citoyennes (messagerie)" block. A copy is written; the original is never touched.
A document whose title names another territory of the campaign is refused (unless forced): the
contributions of one territory never land in another's restitution by a slip of ``--territory``.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.text.paragraph import Paragraph
from rapidfuzz import fuzz

from exporter.blocks import Items, Label, section_blocks
from exporter.report import Report, Sections, ThemeBlock
from exporter.source import ExportError

BLOCK_TITLE = "Contributions citoyennes (messagerie)"
NO_CITIZEN = "Aucune contribution citoyenne approuvée sur cette thématique."
#: Minimum wording similarity (0-100) between a heading and an annex theme label.
MATCH_SCORE = 88

_NUMBERING = re.compile(r"^\s*(?:[0-9]{1,2}|[ivx]{1,4})\s*(?:[-–—.):]+\s*|\s+)")
_PART = re.compile(r"^\s*(?:i{1,3}|iv)\s*[-–—.)]|^\s*(?:perspectives|annexe)\b", re.IGNORECASE)
_LABELS = ("constats", "solutions", "propositions")
_LEVEL = re.compile(r"(?:heading|titre)\s*(\d)", re.IGNORECASE)


def normalise_heading(text: str) -> str:
    """Wording of a heading without case, accents, numbering, "(s)" or punctuation."""
    text = text.casefold().replace("(s)", "").replace("’", "'")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _NUMBERING.sub("", text, count=1)
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def _level(paragraph: Paragraph) -> int | None:
    """Outline level from the style (Title = 0, Heading N = N); None when not a heading."""
    name = paragraph.style.name if paragraph.style is not None else ""
    if name and name.casefold() in ("title", "titre"):
        return 0
    m = _LEVEL.search(name or "")
    return int(m.group(1)) if m else None


def _is_bold_line(paragraph: Paragraph) -> bool:
    runs = [r for r in paragraph.runs if r.text.strip()]
    return bool(runs) and all(r.bold for r in runs) and len(paragraph.text) < 300


def _is_heading_like(paragraph: Paragraph) -> bool:
    if _level(paragraph) is not None:
        return True
    text = paragraph.text.strip().casefold()
    return _is_bold_line(paragraph) and not text.startswith(_LABELS)


def _matches(paragraph_text: str, label: str) -> bool:
    """Whether a heading's wording is the annex label's, after normalisation: it starts with
    the label (a workshop may add words: "... au choix des parties prenantes"), is a long
    enough beginning of it (a shortened label), or is close to it (typos, OCR)."""
    para, wanted = normalise_heading(paragraph_text), normalise_heading(label)
    if not para or not wanted:
        return False
    if para.startswith(wanted) or (wanted.startswith(para) and len(para) > 0.6 * len(wanted)):
        return len(para) <= len(wanted) + 80
    if len(para) > 2 * len(wanted) + 80:
        return False
    return (
        fuzz.partial_ratio(wanted, para) >= MATCH_SCORE
        and fuzz.ratio(wanted[: len(para)], para[: len(wanted)]) >= MATCH_SCORE - 10
    )


def find_theme_headings(document: DocxDocument, report: Report) -> dict[int, int]:
    """Paragraph index of each theme heading found (theme number -> index)."""
    paragraphs = document.paragraphs
    found: dict[int, int] = {}
    for block in report.themes:
        label = block.heading.split(" - ", 1)[1]
        for idx, paragraph in enumerate(paragraphs):
            if idx in found.values() or not _is_heading_like(paragraph):
                continue
            if _matches(paragraph.text, label):
                found[block.number] = idx
                break
    return found


def _style(document: DocxDocument, name: str) -> str | None:
    try:
        document.styles[name]
    except KeyError:
        return None
    return name


class _Inserter:
    """Inserts paragraphs before ``anchor`` (or at the end when there is none)."""

    def __init__(self, document: DocxDocument, anchor: Paragraph | None) -> None:
        self.document = document
        self.anchor = anchor
        self.bullet = _style(document, "List Bullet")

    def add(self, text: str, *, bold: bool = False, bullet: bool = False) -> None:
        style = self.bullet if bullet else None
        if self.anchor is not None:
            paragraph = self.anchor.insert_paragraph_before(style=style)
        else:
            paragraph = self.document.add_paragraph(style=style)
        if bullet and style is None:
            text = "– " + text
        run = paragraph.add_run(text)
        run.bold = bold or None


def _sections(ins: _Inserter, sections: Sections) -> None:
    for block in section_blocks(sections):
        if isinstance(block, Label):
            ins.add(block.text, bold=True)
        elif isinstance(block, Items):
            for text in block.texts:
                ins.add(text, bullet=True)
        else:
            ins.add(block.text)


def _citizen_block(ins: _Inserter, block: ThemeBlock) -> None:
    ins.add(BLOCK_TITLE, bold=True)
    if block.count == 0:
        ins.add(NO_CITIZEN)
        return
    if block.sections is not None:
        _sections(ins, block.sections)
    for sub in block.subthemes:
        ins.add(f"Thématique : {sub.label}", bold=True)
        _sections(ins, sub.sections)


def document_title(document: DocxDocument) -> str:
    """The workshop document's title: its Title paragraph (or first heading, or first line),
    else its metadata title."""
    paragraphs = [p for p in document.paragraphs if p.text.strip()]
    for paragraph in paragraphs[:20]:
        if _level(paragraph) in (0, 1):
            return paragraph.text.strip()
    if paragraphs:
        return paragraphs[0].text.strip()
    return (document.core_properties.title or "").strip()


def check_territory(
    workshop: Path, title: str, territory: str, others: Sequence[str], *, force: bool
) -> None:
    """Refuse a workshop document whose title names another territory than ``territory``
    (and not this one), unless ``force``."""
    framed = f" {normalise_heading(title)} "
    if force or f" {normalise_heading(territory)} " in framed:
        return
    named = [o for o in others if o != territory and f" {normalise_heading(o)} " in framed]
    if named:
        raise ExportError(
            f"{workshop.name} is titled « {title} », which names {named[0]}, not {territory}: "
            "its contributions would land in another territory's restitution. Check --territory, "
            "or add --force to merge anyway"
        )


def merge_into(
    workshop: Path,
    report: Report,
    out: Path,
    *,
    territory: str | None = None,
    others: Sequence[str] = (),
    force: bool = False,
) -> None:
    """Write to ``out`` a copy of ``workshop`` with the citizens' blocks inserted.

    With ``territory`` (the contributions' territory) and ``others`` (the campaign's
    territory names), a workshop document titled for another territory is refused unless
    ``force``."""
    try:
        document = docx.Document(str(workshop))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExportError(f"{workshop} is not a readable Word document (.docx): {exc}") from exc
    if territory is not None:
        check_territory(workshop, document_title(document), territory, others, force=force)
    paragraphs = document.paragraphs
    found = find_theme_headings(document, report)
    missing = [b.heading for b in report.themes if b.number not in found]
    if missing:
        listed = "\n".join(f"  - « {m} »" for m in missing)
        raise ExportError(
            f"{workshop.name} does not follow the annex: theme headings not found:\n{listed}"
        )
    starts = sorted(found.values())
    for block in report.themes:
        start = found[block.number]
        level = _level(paragraphs[start])
        anchor: Paragraph | None = None
        for idx in range(start + 1, len(paragraphs)):
            p = paragraphs[idx]
            other = _level(p)
            if (
                idx in starts
                or (_is_heading_like(p) and _PART.match(p.text))
                or (level is not None and other is not None and other <= level)
            ):
                anchor = p
                break
        _citizen_block(_Inserter(document, anchor), block)
    document.core_properties.comments = (
        (document.core_properties.comments or "")
        + " Contributions citoyennes (messagerie) ajoutées par cnr-sante-bot."
    ).strip()
    document.save(str(out))
