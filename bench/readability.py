"""Readability of the message catalogues: fr, « Français facile » (falc) and en.

Prints, for each catalogue, the number of messages and of sentences, the mean and longest
sentence in words, the share of sentences over 15 words (the easy-to-read limit), and two
readability scores computed by ``textstat``:

* Flesch reading ease, with its French coefficients (Kandel & Moles,
  ``textstat.set_lang("fr")``) for fr and falc and the English formula for en (syllables from
  the CMU dictionary, then Pyphen); higher is easier; French and English scores are not
  comparable with each other;
* LIX (Björnsson: words a sentence + share of words over 6 letters), the same formula in
  every language, so the three catalogues compare; lower is easier (under 30: very easy,
  40: plain, 50: hard).

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/readability.py

What a sentence and a word are (:func:`sentences`, :func:`words`) is shared with
``tests/dialogs/test_dialog_falc.py``, which holds falc to 15 words a sentence. A placeholder
(``{reference}``) is one word; for the score it is replaced by a one-syllable word, the same
in every catalogue.
"""

from __future__ import annotations

import importlib.metadata
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialogs.messages import CATALOGUES

#: The easy-to-read rules' longest sentence.
MAX_WORDS = 15
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
#: A sentence ends at . ! ? … followed by a space, and at each line (list items, labels).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
#: Abbreviations after which a full stop does not end the sentence.
_ABBREVIATIONS = ("ex.", "cf.", "M.", "Dr.", "e.g.", "i.e.")


def sentences(text: str) -> list[str]:
    """The sentences of a message: split at each line and after . ! ? …; pieces without a
    letter, digit or placeholder (a lone bullet, « ») are not sentences."""
    found: list[str] = []
    for line in text.split("\n"):
        pending = ""
        for piece in _SENTENCE_END.split(line.strip()):
            pending = f"{pending} {piece}".strip()
            if pending.endswith(_ABBREVIATIONS):
                continue
            if words(pending):
                found.append(pending)
            pending = ""
        if pending and words(pending):
            found.append(pending)
    return found


def words(sentence: str) -> list[str]:
    """The words of a sentence: whitespace-separated pieces with a letter or a digit (an
    elided "l'Agence" is one word, as a reader sees it; a placeholder is one word)."""
    return [w for w in sentence.split() if any(ch.isalnum() for ch in w)]


@dataclass(frozen=True)
class Measure:
    lang: str
    messages: int
    sentences: int
    mean_words: float
    max_words: int
    over_limit: float
    flesch: float
    lix: float


def measure(lang: str) -> Measure:
    import textstat  # the [bench] extra

    catalogue = CATALOGUES[lang]
    found = [s for text in catalogue.values() for s in sentences(text)]
    counts = [len(words(s)) for s in found]
    # One sentence a line, each ending with a full stop, so that textstat splits as we do.
    text = "\n".join(PLACEHOLDER.sub("X", s).rstrip(".!?:;…") + "." for s in found)
    textstat.set_lang("en" if lang == "en" else "fr")
    return Measure(
        lang=lang,
        messages=len(catalogue),
        sentences=len(found),
        mean_words=statistics.fmean(counts),
        max_words=max(counts),
        over_limit=sum(c > MAX_WORDS for c in counts) / len(counts),
        flesch=float(textstat.flesch_reading_ease(text)),
        lix=float(textstat.lix(text)),
    )


def main() -> None:
    version = importlib.metadata.version("textstat")
    print(f"dialogs/catalogues/*.po, scores by textstat {version}: Flesch reading ease (fr, falc:")
    print("Kandel & Moles; en: Flesch; higher is easier) and LIX (every language; lower is easier)")
    print()
    header = (
        f"{'catalogue':<10} {'messages':>8} {'sentences':>9} {'mean words':>10} "
        f"{'longest':>7} {'> ' + str(MAX_WORDS) + ' words':>11} {'Flesch':>7} {'LIX':>5}"
    )
    print(header)
    print("-" * len(header))
    for lang in ("fr", "falc", "en"):
        m = measure(lang)
        print(
            f"{m.lang:<10} {m.messages:>8} {m.sentences:>9} {m.mean_words:>10.1f} "
            f"{m.max_words:>7} {m.over_limit:>11.0%} {m.flesch:>7.1f} {m.lix:>5.1f}"
        )


if __name__ == "__main__":
    main()
