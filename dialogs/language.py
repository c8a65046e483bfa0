"""Language of free text, with ``langdetect`` made deterministic and kept from short text.

langdetect is random unless seeded, and wrong on short phrases ("non merci" -> Italian), so
below ``min_letters`` letters the interface language stands. Only the first ``_SAMPLE`` characters
are examined: enough to tell French from English, and it bounds the cost (~1 ms per call).
"""

from __future__ import annotations

from dataclasses import dataclass

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException

from dialogs.validation import count_letters

DetectorFactory.seed = 0
_SAMPLE = 400


@dataclass(frozen=True)
class Detected:
    lang: str
    #: True when langdetect itself decided with at least the required probability.
    confident: bool


def detect_language(
    text: str, interface_lang: str, *, min_letters: int, min_confidence: float
) -> Detected:
    """The language of ``text`` (ISO 639-1), or ``interface_lang`` when it cannot be told."""
    sample = text[:_SAMPLE]
    if count_letters(sample) < min_letters:
        return Detected(interface_lang, False)
    try:
        ranked = detect_langs(sample)
    except LangDetectException:
        return Detected(interface_lang, False)
    best = ranked[0]
    if best.prob < min_confidence:
        return Detected(interface_lang, False)
    return Detected(str(best.lang), True)
