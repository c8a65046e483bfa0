"""The words of a contribution for the topic engine (:mod:`exporter.topics`): lower case,
``œ``/``æ`` spelled out, SMS spellings spelled out, stop words dropped, French stems with their
accents folded (see the engine's docstring, step 1). Pure, with tables of the pieces of text
already met (contributions share most of theirs)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import snowballstemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from stop_words import get_stop_words

__all__ = [
    "FOLDED",
    "PAIRS",
    "STOP",
    "WORD",
    "fold",
    "folded_of",
    "pieces",
    "stem",
    "stems",
    "stems_of",
    "words",
]

WORD = re.compile(r"[^\W\d_]+")

#: SMS spellings and abbreviations citizens type, spelled out before stemming.
_SPELLED_OUT = {
    "rdv": "rendez vous",
    "rdvs": "rendez vous",
    "bcp": "beaucoup",
    "pr": "pour",
    "ds": "dans",
    "qd": "quand",
    "pq": "pourquoi",
    "tjs": "toujours",
    "ado": "adolescent",
    "ados": "adolescents",
    "ophtalmo": "ophtalmologue",
    "kiné": "kinésithérapeute",
    "kine": "kinésithérapeute",
    "psy": "psychologue",
}

#: Words the maintained lists miss: contractions and fillers of written-as-spoken French.
_EXTRA_STOP = """
cest nest ya faut falloir fait faire etc svp stp merci bonjour oui non aujourd hui tres
trop beaucoup toujours jamais rien tout tous toute toutes aussi plus moins chose choses
"""


class _FoldTable(dict[int, str]):
    """Code point -> its NFKD form without combining marks, filled as characters are met
    (``str.translate`` then folds a text in C: a character folds alone)."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = self[code] = "".join(c for c in decomposed if not unicodedata.combining(c))
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` without accents (NFKD, combining marks dropped)."""
    return text.translate(_FOLD)


def _stop_words() -> frozenset[str]:
    words = set(get_stop_words("french")) | set(ENGLISH_STOP_WORDS) | set(_EXTRA_STOP.split())
    return frozenset(fold(w.casefold()) for w in words)


STOP = _stop_words()
#: Longer than any French word ("anticonstitutionnellement": 25 letters).
_LONGEST_WORD = 30
#: Snowball's French stemmer: ``snowballstemmer`` runs PyStemmer's C build of it when that is
#: installed (a dependency: ~40 times faster on the words a theme meets first), its own Python
#: one otherwise; both are generated from the same Snowball source and give the same stems.
_STEMMER = snowballstemmer.stemmer("french")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The folded stem of a lower-case word, or "" for a stop word, a word too short, or a
    "word" too long to be one (a key held down)."""
    plain = fold(word)
    if plain in STOP or not 3 <= len(plain) <= _LONGEST_WORD:
        return ""
    return fold(_STEMMER.stemWord(word))


def words(text: str) -> list[str]:
    """The lower-case words of ``text``, SMS spellings spelled out."""
    lowered = text.casefold().replace("œ", "oe").replace("æ", "ae")
    out: list[str] = []
    for word in WORD.findall(lowered):
        out.extend(_SPELLED_OUT.get(word, word).split())
    return out


class _Pieces(dict[str, str]):
    """A piece of lower-case text between spaces ("l'hôpital,") -> what a text of it gives
    (:meth:`of`), filled as pieces are met: texts share most of their pieces, so a text is
    analysed by dictionary look-ups. Spaces are no letters: a text's words are its pieces'
    words, in order."""

    #: Forgotten past this many pieces (a long-running console process meets new ones).
    LIMIT = 500_000

    def __init__(self, of: Callable[[str], str]) -> None:
        super().__init__()
        self.of = of

    def __missing__(self, piece: str) -> str:
        value = self.of(piece)
        if len(self) >= self.LIMIT:
            self.clear()
        self[piece] = value
        return value

    def words(self, text: str) -> list[str]:
        """The words the pieces of ``text`` give, in order."""
        return " ".join(map(self.__getitem__, text.casefold().split())).split()


#: piece -> its stems, space-separated
_STEMS = _Pieces(lambda piece: " ".join(s for s in map(stem, words(piece)) if s))
#: piece -> its words without accents, space-separated
FOLDED = _Pieces(lambda piece: " ".join(fold(w) for w in WORD.findall(piece)))


class _Pairs(dict[str, tuple[tuple[str, str], ...]]):
    """A piece of lower-case text between spaces -> its (word, stem) pairs, for the words
    that have a stem (as :class:`_Pieces`)."""

    def __missing__(self, piece: str) -> tuple[tuple[str, str], ...]:
        pairs = tuple((w, s) for w in words(piece) if (s := stem(w)))
        if len(self) >= _Pieces.LIMIT:
            self.clear()
        self[piece] = pairs
        return pairs


PAIRS = _Pairs()


def stems(text: str) -> list[str]:
    """The significant words of ``text`` as folded French stems, in order."""
    return _STEMS.words(text)


def pieces(text: str) -> list[str]:
    """``text`` in lower case, cut at its spaces: what the tables of pieces read."""
    return text.casefold().split()


def stems_of(text_pieces: list[str]) -> list[str]:
    """:func:`stems` of a text given as its :func:`pieces` (a text cut once serves twice)."""
    return " ".join(map(_STEMS.__getitem__, text_pieces)).split()


def folded_of(text_pieces: list[str]) -> str:
    """The words of a text given as its :func:`pieces`, without accents or punctuation, single
    spaces: the form in which a key phrase is looked for in a text."""
    return " ".join(" ".join(map(FOLDED.__getitem__, text_pieces)).split())
