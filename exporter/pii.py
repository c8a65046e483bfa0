"""The exports' last personal-data mask: every exported text goes through :func:`mask`.

The detector is the conversation's (:mod:`dialogs.pii`, pure, one for the whole project): what
a citizen is warned about while typing, what the console highlights and what is masked here
come from the same rules (titles alone, "Dr Martin", are left to the moderators here).
"""

from __future__ import annotations

from dialogs.pii import Finding, Kind, find_personal_data

__all__ = ["MASK", "Finding", "Kind", "find_personal_data", "mask"]

MASK = "[donnée masquée]"


def mask(text: str) -> str:
    """``text`` with every finding of :func:`find_personal_data` replaced by ``MASK``."""
    findings = find_personal_data(text)
    if not findings:
        return text
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(MASK)
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)
