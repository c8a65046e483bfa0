"""Personal data highlighted in a text, safely: escape every piece, then wrap the findings.

The detector is the exporter's (``exporter.pii.find_personal_data``), so what the moderator sees
highlighted is what the export would mask.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from exporter.pii import find_personal_data

KIND_LABELS = {
    "email": "adresse électronique",
    "phone": "numéro de téléphone",
    "nir": "numéro de sécurité sociale",
    "iban": "IBAN",
    "address": "adresse postale",
    "name": "nom de personne",
}


#: Invisible or direction-changing characters, shown as visible markers (and so neutralised).
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")


def _escape(text: str) -> str:
    """Escape, then show each invisible/bidi control character as a visible marker."""
    return _INVISIBLE.sub(
        lambda m: (
            f'<span class="invisible" title="caractère invisible">U+{ord(m.group()):04X}</span>'
        ),
        str(escape(text)),
    )


def highlight(text: str | None) -> Markup:
    """``text`` escaped, with each personal-data finding in ``<mark class="pii">``."""
    if not text:
        return Markup("")
    findings = sorted(find_personal_data(text), key=lambda f: (f.start, -f.end))
    out: list[str] = []
    pos = 0
    for f in findings:
        start, end = max(int(f.start), pos), min(int(f.end), len(text))
        if start >= end:
            continue  # overlaps a previous finding
        out.append(_escape(text[pos:start]))
        label = KIND_LABELS.get(str(f.kind), str(f.kind))
        out.append(
            f'<mark class="pii" title="Donnée personnelle probable : {escape(label)}">'
            f"{_escape(text[start:end])}</mark>"
        )
        pos = end
    out.append(_escape(text[pos:]))
    return Markup("".join(out))  # noqa: S704 (every piece escaped)


def count_findings(text: str | None) -> int:
    return len(find_personal_data(text)) if text else 0
