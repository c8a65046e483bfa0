"""Personal data in a text: where it looks like there is some, and of which kind (pure).

One detector for the whole project: the conversation tells a citizen who types personal data
in an answer (:mod:`dialogs.steps`), the exporter masks it (:mod:`exporter.pii`) and the
moderation console highlights it. It looks for e-mail addresses, French phone numbers, French
social security numbers (NIR, key checked), IBANs (checksum validated), French street
addresses and names introduced by "je m'appelle", "mon nom est", "my name is" or "je suis
M./Mme ..."; with ``titles=True``, also a name after a title ("Dr Martin", "Mme Durand",
"M. Dupont", "docteur Lemaire").

Titles are the citizen's guidance only: a contribution about health often names a doctor
("depuis le départ du docteur Lemaire"), which moderators judge; the export's mask keeps to the
rules above. It is deliberately conservative on numbers: dates, postal codes alone, years,
amounts and counts are not personal data and are left alone (see ``tests/test_export_pii.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["email", "phone", "nir", "iban", "address", "name"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A span ``text[start:end]`` that looks like personal data of the given ``kind``."""

    start: int
    end: int
    kind: Kind


_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.%+-]+(?:\s*\.\s*[\w%+-]+)*\s?@\s?[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}\b",
)

# 0X XX XX XX XX, +33 X XX XX XX XX, 0033 X..., +33 (0)X ..., separators: space, dot, dash.
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?[1-9]|0[1-9])(?:[ .\-]?\d{2}){4}(?!\d)"
)

# Sex (1, 2; 3, 4, 7, 8 for provisional numbers), year, month (01-12, 20-42, 50-99 when
# unknown), department (2 digits, 2A/2B, or 97x/98x with a 3-digit commune), commune, order,
# and the optional 2-digit key (checked when present).
_NIR = re.compile(
    r"(?<![\w])([1-478])[ .]?(\d{2})[ .]?(\d{2})[ .]?(\d{2}|2[AaBb])[ .]?(\d{3})[ .]?(\d{3})"
    r"(?:[ .]?(\d{2}))?(?![\w])"
)

_IBAN = re.compile(r"(?<![\w])([A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30})(?![\w])")

_VOIE = (
    r"rue|avenue|av\.|bd|boulevard|chemin|impasse|all[ée]e|place|route|quai|cours|square|"
    r"passage|r[ée]sidence|lotissement|chauss[ée]e|sentier|faubourg|cit[ée]|hameau|villa|"
    r"rond-point|parvis|esplanade|promenade|mail|voie|clos|ruelle|venelle|sente"
)
_PARTICLE = r"(?:de|du|des|la|le|les|l['’]|d['’]|aux|au|sur|en|et)"
_CAP_WORD = r"[A-ZÀ-ÖØ-Þ0-9][\w'’.\-]*"
_LOWER_WORD = r"[a-zà-öø-ÿ][\w'’\-]*"
_ADDRESS = re.compile(
    r"(?<![\w,.])\d{1,4}(?:\s?(?:bis|ter|quater|[a-dA-D]))?\b\s*,?\s+"
    r"(?i:" + _VOIE + r")(?![\w])"
    r"(?:"
    # capitalised name, particles allowed inside: "rue Jean-Baptiste Lebas", "place de la Gare"
    r"(?:\s+(?:" + _PARTICLE + r"\s*)*" + _CAP_WORD + r"(?:\s+(?:" + _PARTICLE + r"\s*)*"
    r"" + _CAP_WORD + r"){0,5})"
    r"|"
    # all lower case: "rue de la paix" (particles, then one word)
    r"(?:\s+(?:" + _PARTICLE + r"\s*){0,3}" + _LOWER_WORD + r")"
    r")"
    # optional postal code and town: "59000 Lille"
    r"(?:\s*,?\s*\d{5}\s+" + _CAP_WORD + r"(?:[ \-]" + _CAP_WORD + r"){0,3})?"
)

_NAME_STOP = frozenset(
    [
        "et",
        "je",
        "j",
        "j'",
        "mais",
        "ou",
        "donc",
        "car",
        "ni",
        "or",
        "de",
        "du",
        "des",
        "la",
        "le",
        "les",
        "un",
        "une",
        "à",
        "a",
        "au",
        "aux",
        "en",
        "dans",
        "pour",
        "par",
        "sur",
        "avec",
        "sans",
        "qui",
        "que",
        "qu",
        "j'ai",
        "j'habite",
        "and",
        "i",
        "i'm",
        "im",
        "am",
        "from",
        "the",
        "at",
        "in",
        "of",
        "with",
    ]
)
_NAME_TRIGGER = re.compile(
    r"(?i:\bje\s+m['’]\s?appelle|\bmon\s+nom\s+est|\bmy\s+name\s+is|\bmoi\s+c['’]est"
    r"|\bje\s+suis\s+(?:m\.|mr\.?|mme\.?|mlle\.?|monsieur|madame|mademoiselle|docteur|dr\.?)"
    r"|\bi\s+am\s+(?:mr\.?|mrs\.?|ms\.?|dr\.?))\s*"
)
_NAME_WORD = re.compile(r"[^\W\d_][\w'’\-]*")
_HONORIFIC = re.compile(r"(?i:m\.|mr\.?|mme\.?|mlle\.?|monsieur|madame|mademoiselle|dr\.?)\s*")


#: Every kind needs an ASCII digit or an "@" (:data:`_MAYBE_CHARS`), or a name phrase in the
#: case-folded text (:data:`_MAYBE_NAMES`): a cheap first look. Substring tests (``in``) are
#: ~10x faster than a regular expression's scan; a phrase with spaces inside is only looked
#: for (its own pattern: a literal first character keeps the scan fast) when its least
#: common word is in the text.
_MAYBE_CHARS = "0123456789@"
_MAYBE_NAMES: tuple[tuple[str, re.Pattern[str] | None], ...] = (
    ("appelle", None),
    ("c'est", None),
    ("c’est", None),
    ("suis", re.compile(r"je\s+suis")),
    ("nom", re.compile(r"nom\s+est")),
    ("name", re.compile(r"name\s+is")),
    ("am", re.compile(r"i\s+am")),
)


def _maybe_personal(text: str) -> bool:
    """False when ``text`` cannot hold any kind of personal data :func:`find_personal_data`
    looks for (no ASCII digit, no "@", no name phrase)."""
    for char in _MAYBE_CHARS:
        if char in text:
            return True
    folded = text.casefold()
    for word, pattern in _MAYBE_NAMES:
        if word in folded and (pattern is None or pattern.search(folded) is not None):
            return True
    return False


def _nir_ok(m: re.Match[str]) -> bool:
    sex, year, month, dept, commune, order, key = m.groups()
    month_i = int(month)
    if not (1 <= month_i <= 12 or 20 <= month_i <= 42 or 50 <= month_i <= 99):
        return False
    if dept.upper() == "2A":
        dept_num = "19"
    elif dept.upper() == "2B":
        dept_num = "18"
    else:
        if dept == "00":
            return False
        dept_num = dept
    if key is None:
        return True
    number = int(sex + year + month + dept_num + commune + order)
    return 97 - number % 97 == int(key)


_IBAN_LENGTHS = {
    "FR": 27, "MC": 27, "BE": 16, "DE": 22, "ES": 24, "IT": 27, "LU": 20, "CH": 21, "GB": 22,
    "NL": 18, "PT": 25, "IE": 22, "AT": 20, "PL": 28, "GP": 27, "MQ": 27, "RE": 27, "GF": 27,
}  # fmt: skip


def _iban_ok(raw: str) -> bool:
    iban = raw.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def _iban_findings(text: str) -> list[Finding]:
    out: list[Finding] = []
    for m in _IBAN.finditer(text):
        raw = m.group(1)
        # the greedy match may swallow a following word: shrink until the checksum holds
        end = len(raw)
        while end >= 15:
            candidate = raw[:end].rstrip()
            if _iban_ok(candidate):
                out.append(Finding(m.start(1), m.start(1) + len(candidate), "iban"))
                break
            end -= 1
    return out


def _name_findings(text: str) -> list[Finding]:
    out: list[Finding] = []
    for m in _NAME_TRIGGER.finditer(text):
        pos = m.end()
        hon = _HONORIFIC.match(text, pos)
        if hon:
            pos = hon.end()
        start = end = -1
        taken = 0
        while taken < 3:
            w = _NAME_WORD.match(text, pos)
            if not w:
                break
            word = w.group(0)
            if word.casefold() in _NAME_STOP or (taken and "'" in word) or (taken and "’" in word):
                break
            if taken and not word[0].isupper() and text[start].isupper():
                break
            if start < 0:
                start = w.start()
            end = w.end()
            taken += 1
            nxt = re.compile(r"[ \t]+").match(text, end)
            if not nxt:
                break
            pos = nxt.end()
        if start >= 0:
            out.append(Finding(start, end, "name"))
    return out


# A title, then one to three capitalised words: "Dr Martin", "Mme Durand-Leroy", "M. Jean
# Dupont", "docteur Lemaire". Not "Madame la ministre", "Monsieur le maire" (lower case next).
_TITLED_NAME = re.compile(
    r"(?<![\w.])(?i:docteur|dr\.?|pr\.?|professeur|madame|mme\.?|mlle\.?|mademoiselle"
    r"|monsieur|m\.|mr\.?|mrs\.?|ms\.?)[ \t]+"
    r"([A-ZÀ-ÖØ-Þ][^\W\d_][\w'’\-]*(?:[ \t]+[A-ZÀ-ÖØ-Þ][^\W\d_][\w'’\-]*){0,2})"
)


def _titled_findings(text: str) -> list[Finding]:
    return [Finding(m.start(1), m.end(1), "name") for m in _TITLED_NAME.finditer(text)]


def find_personal_data(text: str, *, titles: bool = False) -> list[Finding]:
    """Spans of ``text`` that look like personal data, sorted, without overlaps;
    ``titles``: names after a title too ("Dr Martin").

    When two candidates overlap, the one starting first wins (then the longer one).
    """
    if not text:
        return []
    found: list[Finding] = _titled_findings(text) if titles else []
    if not found and not _maybe_personal(text):
        return []  # the common case: no digit, no "@", no name phrase
    found += [Finding(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    found += _iban_findings(text)
    found += [Finding(m.start(), m.end(), "nir") for m in _NIR.finditer(text) if _nir_ok(m)]
    found += [Finding(m.start(), m.end(), "phone") for m in _PHONE.finditer(text)]
    found += [Finding(m.start(), m.end(), "address") for m in _ADDRESS.finditer(text)]
    found += _name_findings(text)
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    result: list[Finding] = []
    for f in found:
        if result and f.start < result[-1].end:
            continue
        result.append(f)
    return result
