"""Free-text cleaning and validation: the same rules for every channel and every field.

:func:`clean_text` is the one text cleaner of the project (citizens' answers, moderators'
redactions and notes, console filters); :func:`one_line` is the same cleaning on one line
(a place typed at the territory step, the exported documents' texts).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The control characters that are whitespace (``str.isspace``: tabs, line, paragraph and
# record separators, form feed, NEL) become plain whitespace; other control characters
# (category Cc) and format characters (Cf: zero-width spaces and joiners, bidi overrides, BOM,
# soft hyphen...) are removed.
_WHITESPACE_CONTROLS = {
    "\t": " ",
    "\x1f": " ",
    **dict.fromkeys("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", "\n"),
}
#: A short answer (a choice or a place typed, a command's argument, a web form's field) is at
#: most this many characters; the free texts' limits are :class:`dialogs.model.Limits`.
SHORT_INPUT_MAX_CHARS = 200

#: Characters that show nothing but are not format characters (so :func:`_drop_controls` keeps
#: them): the combining grapheme joiner, Khmer's invisible vowels, variation selectors, Hangul
#: fillers (letters to ``str.isalpha``!); the blank braille pattern is a space.
_INVISIBLE = re.compile(
    "[\u034f\u17b4\u17b5\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
_BLANK_BRAILLE = "\u2800"
#: One range holding every character of :data:`_INVISIBLE` and the blank braille pattern: a
#: quicker first look (most texts have none of them).
_MAYBE_INVISIBLE = re.compile("[\u034f-\U000e01ef]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")


def clean_text(text: str) -> str:
    """Normalise (NFC), drop control and zero-width characters, fold spaces, trim."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    # Fast path (nearly every answer): ``str.isprintable`` is false for exactly the
    # characters the loop below would change (categories C* and Z* but the plain space).
    if not text.replace("\n", "").isprintable():
        text = _drop_controls(text)
    text = _drop_invisible(text)
    cleaned = _SPACES.sub(" ", text)
    cleaned = _SPACE_AROUND_NEWLINE.sub("\n", cleaned)
    cleaned = _BLANK_LINES.sub("\n\n", cleaned)
    return cleaned.strip()


def one_line(text: str) -> str:
    """:func:`clean_text` on one line: every run of whitespace, newlines too, is one space."""
    text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        return " ".join(_drop_invisible(_drop_controls(text)).split())
    # Fast path (nearly every text): the plain space is the only whitespace a printable text
    # holds, so a text without a leading, trailing or double space is on one line already
    text = _drop_invisible(text)
    if "  " in text or text.startswith(" ") or text.endswith(" "):
        return " ".join(text.split())
    return text


def _drop_controls(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in _WHITESPACE_CONTROLS:
            out.append(_WHITESPACE_CONTROLS[ch])
        elif ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def _drop_invisible(text: str) -> str:
    """Invisible characters that are printable to Python: gone (not counted in lengths)."""
    if _MAYBE_INVISIBLE.search(text) is None:
        return text
    text = _INVISIBLE.sub("", text)
    return text.replace(_BLANK_BRAILLE, " ") if _BLANK_BRAILLE in text else text


def count_letters(text: str) -> int:
    """Letters of any script (``str.isalpha`` is Unicode category L*)."""
    return sum(map(str.isalpha, text))


@dataclass(frozen=True)
class Checked:
    """The cleaned text, or the id of the message explaining what is wrong (with params)."""

    text: str
    error: str | None = None
    params: tuple[tuple[str, int], ...] = ()


def check_text(raw: str, *, min_chars: int, max_chars: int) -> Checked:
    """Clean ``raw`` and check its length and that it says something in words."""
    text = clean_text(raw)
    if not text:
        return Checked(text, "text.empty")
    count = len(text)
    if count_letters(text) == 0:
        return Checked(text, "text.no_letters")
    if count < min_chars:
        return Checked(text, "text.too_short", (("count", count), ("min", min_chars)))
    if count > max_chars:
        return Checked(text, "text.too_long", (("count", count), ("max", max_chars)))
    return Checked(text)


def fold(text: str) -> str:
    """Comparison key: case, accents, punctuation and spacing ignored ("Béthune" == "bethune")."""
    decomposed = unicodedata.normalize("NFKD", clean_text(text).casefold())
    letters = "".join(
        ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch)
    )
    return " ".join(letters.split())


#: A contribution's reference (``storage.repository.make_reference``: the campaign's prefix,
#: the territory's code, a number), as a citizen may type it back: letters, digits, dashes.
REFERENCE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")
#: No reference is longer (a longer one is not looked up: nobody's).
REFERENCE_MAX_CHARS = 64


def parse_reference(text: str) -> str | None:
    """A reference typed or carried by a button (``hdf-oise-000042`` is ``HDF-OISE-000042``),
    or None when it cannot be one (malformed, too long)."""
    candidate = clean_text(text[: REFERENCE_MAX_CHARS * 2]).upper()
    if len(candidate) > REFERENCE_MAX_CHARS or not REFERENCE.fullmatch(candidate):
        return None
    return candidate
