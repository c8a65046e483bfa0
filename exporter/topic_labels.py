"""Labels of the topics of :mod:`exporter.topics` (its docstring, step 4): key phrases found by
YAKE in a topic's most central texts, scored against the whole theme, and the frequent words of
a few texts for the topics YAKE does not label."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np
import yake_rust
from scipy import sparse

from exporter.topic_words import FOLDED, PAIRS, STOP, fold, stems

#: Key phrases YAKE proposes for a topic (they are then scored against the theme).
KEY_PHRASE_CANDIDATES = 40

if TYPE_CHECKING:
    from exporter.topics import Contribution, TopicSettings, _Terms

__all__ = ["Draft", "Labeller"]

#: Texts whose frequent words label a topic that YAKE does not (TopicSettings.labelled_topics).
_FALLBACK_TEXTS = 3


@dataclass(frozen=True, slots=True)
class Draft:
    label_choices: tuple[str, ...]
    contributions: tuple[str, ...]
    participants: int


class Labeller:
    """Key phrases of a topic, scored against the whole theme."""

    def __init__(
        self,
        items: Sequence[tuple[Contribution, list[str], list[str]]],
        phrase_texts: Sequence[str],
        vectors: sparse.csr_matrix,
        terms: _Terms,
        fixes: dict[str, str],
        settings: TopicSettings,
    ) -> None:
        self.items = items
        self.vectors = vectors
        self.fixes = fixes
        self.settings = settings
        self.terms = terms
        #: row -> its need and solution as a phrase form (:func:`_phrase_form`), " "-framed
        self.phrase_texts = phrase_texts
        #: YAKE (yake-rust: the reference algorithm ported to Rust, the same key phrases as
        #: the ``yake`` package's but for rare ties, ~4.5 x faster)
        self.extractor = yake_rust.Yake(language="fr", ngrams=3, deduplication_threshold=0.95)

    def draft(self, rows: list[int], *, full: bool = True) -> Draft:
        """A topic of ``rows``: labelled by YAKE when ``full``, else by its frequent words."""
        contributions = tuple(sorted(self.items[r][0].id for r in rows))
        participants = len({self.items[r][0].participant for r in rows})
        if not full:
            texts = [self._text(r) for r in rows[:_FALLBACK_TEXTS]]
            return Draft(tuple(_fallback_label(texts)), contributions, participants)
        centre = np.asarray(self.vectors[rows].mean(axis=0)).ravel()
        closeness = self.vectors[rows] @ centre
        # the most central texts first (ties: id order, rows are sorted by id)
        central = [r for _, r in sorted(zip((-closeness).tolist(), rows, strict=True))]
        texts = [self._text(r) for r in central[: self.settings.label_texts]]
        phrases = self._key_phrases(texts, set(rows))
        return Draft(tuple(phrases), contributions, participants)

    def _text(self, row: int) -> str:
        c = self.items[row][0]
        return f"{_sentence(c.need)} {_sentence(c.solution)}".strip()[: self.settings.label_chars]

    def _rows_saying(self, words: str, among: Iterable[int]) -> set[int]:
        """The rows among ``among`` whose text holds the phrase ``words`` (folded, spaced).
        ``among`` is narrowed beforehand to the rows with the phrase's stems (the TF-IDF's
        columns), so only their texts are read."""
        if not words.strip():
            return set()
        needle = f" {words} "
        return {r for r in among if needle in self.phrase_texts[r]}

    def _key_phrases(self, texts: list[str], rows: set[int]) -> list[str]:
        """YAKE's candidates on the topic's central texts, scored by the share of the topic's
        contributions that say them (as written, accents aside) times the log of how much
        more than the whole theme does; the spelling the texts use most. The first has 2 to
        4 words when such a phrase is said at least twice."""
        blob = "\n".join(texts)
        try:
            found = self.extractor.get_n_best(blob, n=KEY_PHRASE_CANDIDATES) if blob.strip() else []
        except (ValueError, ZeroDivisionError, IndexError, KeyError):  # degenerate text
            found = []
        lowered = blob.casefold()
        spellings: dict[str, tuple[int, int, str]] = {}
        clauses: list[str] = []  # "urgences sont saturées": a label only when nothing better
        for surface, _ in found:
            phrase = _readable(str(surface))
            if not phrase:
                clause = _readable(str(surface), strict=False)
                if 2 <= len(clause.split()) <= 4:
                    clauses.append(clause)
                continue
            words = _phrase_form(phrase)
            # the spelling most used, accents preferred (then alphabetical)
            rank = (lowered.count(phrase.casefold()), sum(ord(ch) > 127 for ch in phrase))
            seen = spellings.get(words)
            if seen is None or rank > seen[:2] or (rank == seen[:2] and phrase < seen[2]):
                spellings[words] = (*rank, phrase)
        total = len(self.items)
        scored: list[tuple[float, int, str]] = []
        for words, (_, _, phrase) in spellings.items():
            key = [self.fixes.get(s, s) for s in stems(phrase)]
            maybe = self.terms.rows_with(key[0]) if key else set()
            for stem in key[1:]:
                maybe &= self.terms.rows_with(stem)
            saying = self._rows_saying(words, maybe)
            inside = len(saying & rows)
            if inside == 0:
                continue
            share = inside / len(rows)
            lift = share / (len(saying) / total)
            scored.append((share * float(np.log1p(lift)), inside, phrase))
        scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
        phrases: list[str] = []
        for _, _, phrase in scored:
            # a phrase within a better one says nothing more ("traitant" after "médecin
            # traitant"); a phrase holding a better one may be the label
            if not any(_contains(p, phrase) and len(p) > len(phrase) for p in phrases):
                phrases.append(phrase)
        # the label: a phrase of 2 to 4 words said twice at least, scored with its words
        # (a phrase of the topic's own words, "conditions de travail", over a phrase with one
        # of them, "améliorer les conditions")
        word_score = {_phrase_form(p): score for score, _, p in scored if " " not in p}
        multi: list[tuple[float, str]] = []
        for score, inside, phrase in scored:
            if 2 <= len(phrase.split()) <= 4 and inside >= 2 and phrase in phrases:
                content = [w for w in _phrase_form(phrase).split() if w not in STOP]
                own = sum(word_score.get(w, 0.0) for w in content) / max(len(content), 1)
                multi.append((score + own, phrase))
        label = min(multi, key=lambda t: (-t[0], t[1]))[1] if multi else None
        if label is None and clauses:
            label = clauses[0]  # YAKE's best
        if label is not None:
            phrases = [label, *[p for p in phrases if not _contains(label, p)]]
        return phrases or _fallback_label(texts)


def _contains(longer: str, shorter: str) -> bool:
    """Whether the phrase ``longer`` holds the words of ``shorter``."""
    return f" {_key_form(shorter)} " in f" {_key_form(longer)} "


@lru_cache(maxsize=50_000)
def _key_form(phrase: str) -> str:
    """:func:`_phrase_form` of a key phrase, remembered (phrases are compared pairwise)."""
    return _phrase_form(phrase)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


#: Elided articles and pronouns that start a word ("l'hôpital", "d'école", "s'installe").
_ELISION = re.compile(r"^(?:[ldjmtsc]|qu|jusqu|lorsqu|puisqu)['’]", re.IGNORECASE)
#: Stop words that may stand inside a key phrase.
_LINKS = frozenset(
    "de du des a au aux en la le les et pour sur chez par sans avec dans".split()  # noqa: SIM905
)
#: A phrase with a negation or an elided pronoun is a clause, not a subject.
_CLAUSE = re.compile(r"(?:^|\s)(?:ne|pas|n['’]\S*|s['’]\S*|qu['’]\S*|j['’]\S*)(?:\s|$)", re.I)


def _readable(phrase: str, *, strict: bool = True) -> str:
    """A key phrase as a label: lower case except acronyms (CMP, CPTS), no leading elided
    article ("l'installation" -> "installation"); "" for a negation ("n'est organisée") or
    an elided pronoun ("médecin s'installe"), and, when ``strict``, for a verb inside
    ("urgences sont saturées")."""
    if _CLAUSE.search(phrase):
        return ""
    words = [w if len(w) > 1 and w.isupper() else w.lower() for w in phrase.split()]
    words[0] = _ELISION.sub("", words[0])
    # no article or preposition at either end ("un médecin traitant", "urgences de")
    while words and (not words[0] or fold(words[0]) in STOP):
        words.pop(0)
    while words and fold(words[-1]) in STOP:
        words.pop()
    # inside, only the little words of a noun phrase ("maison de santé", "visites à
    # domicile"), not a verb ("urgences sont saturées")
    for word in words[1:-1] if strict else ():
        plain = fold(_ELISION.sub("", word) or word)
        if plain in STOP and plain not in _LINKS and not _ELISION.match(word):
            return ""
    return " ".join(words)


def _phrase_form(text: str) -> str:
    """``text`` folded to its words (no accents, no punctuation), single spaces."""
    return " ".join(FOLDED.words(text))


def _fallback_label(texts: list[str]) -> list[str]:
    """When YAKE finds nothing: the most frequent significant words, as written."""
    # (word, stem) pairs in the texts' order ("a b".casefold().split() is a's pieces, then b's)
    pairs = list(chain.from_iterable(map(PAIRS.__getitem__, " ".join(texts).casefold().split())))
    counts = Counter(map(itemgetter(1), pairs))
    # most frequent first, then alphabetical (a reversed sort keeps the order of ties)
    top = sorted(sorted(counts), key=counts.__getitem__, reverse=True)[:3]
    if not top:
        return ["sans titre"]
    # the spelling most used (first met at a tie: a Counter keeps the order first met)
    said = Counter(pairs)
    best: dict[str, tuple[int, str]] = {}
    for (word, stem), n in said.items():
        if n > best.get(stem, (0, ""))[0]:
            best[stem] = (n, word)
    return [" ".join(best[stem][1] for stem in top)]
