"""Personal data highlighted in a text, safely: escape every piece, then wrap the findings.

The detector is the exporter's (``exporter.pii.find_personal_data``), so what the moderator sees
highlighted is what the export would mask.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

KIND_LABELS = {
    "email": "adresse électronique",
    "phone": "numéro de téléphone",
    "nir": "numéro de sécurité sociale",
    "iban": "IBAN",
    "address": "adresse postale",
    "name": "nom de personne",
}


@dataclass(frozen=True)
class _Finding:
    start: int
    end: int
    kind: str


_FALLBACK = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("phone", re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")),
]


def _fallback_find(text: str) -> list[_Finding]:
    """Used only while ``exporter.pii`` is not available (e-mail and phone only)."""
    return [_Finding(m.start(), m.end(), kind) for kind, rx in _FALLBACK for m in rx.finditer(text)]


def _detector() -> Callable[[str], Sequence[Any]]:
    try:
        from exporter.pii import find_personal_data
    except ImportError:
        return _fallback_find
    return find_personal_data


def detector_available() -> bool:
    return _detector() is not _fallback_find


def highlight(text: str | None) -> Markup:
    """``text`` escaped, with each personal-data finding in ``<mark class="pii">``."""
    if not text:
        return Markup("")
    findings = sorted(_detector()(text), key=lambda f: (f.start, -f.end))
    out: list[str] = []
    pos = 0
    for f in findings:
        start, end = max(int(f.start), pos), min(int(f.end), len(text))
        if start >= end:
            continue  # overlaps a previous finding
        out.append(str(escape(text[pos:start])))
        label = KIND_LABELS.get(str(f.kind), str(f.kind))
        out.append(
            f'<mark class="pii" title="Donnée personnelle probable : {escape(label)}">'
            f"{escape(text[start:end])}</mark>"
        )
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))  # noqa: S704 (every piece escaped)


def count_findings(text: str | None) -> int:
    return len(_detector()(text)) if text else 0
