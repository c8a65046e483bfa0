"""Near-duplicate grouping of contribution texts.

Texts are normalised (case, accents, punctuation, French and English stop words, plurals) into
the sorted set of their words, then compared with ``rapidfuzz.fuzz.ratio``: an order-insensitive
score that still counts extra words. (``token_set_ratio`` is not used: it scores 100 whenever
one text's words are a subset of the other's, so "manque de médecins" would swallow every
longer text that mentions doctors.)

Grouping is deterministic and leader-based: items are taken in reference order; the first item
not yet grouped leads a group and gathers every later ungrouped item scoring at least the
threshold against it. To scale, an item is only compared with items sharing one of its rarest
words (an inverted index): near-duplicates share most of their words, so they share those.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

#: How many of a leader's rarest words select its comparison candidates.
RARE_WORDS = 4

#: French and English stop words, without accents (texts are compared without them).
_STOP_TEXT = """
a ai aie ait as au aucun aupres aussi autre aux avait avec avoir c ca ce ceci cela celle
celles celui ces cet cette ceux chaque chez ci comme comment d dans de des deja donc dont du
elle elles en encore entre est et etait ete etre eu fait faire faut il ils j je jusqu l la
le les leur leurs lui m ma mais me meme mes moi mon n ne ni nos notre nous on ont ou par pas
peu peut plus pour pourquoi qu quand que quel quelle quelles quels qui s sa sans se ses si
son sont sous souvent sur t ta te tes toi ton tous tout toute toutes tres tu un une vos
votre vous y etc afin alors bien car cest
about above after again all also am an and any are as at be been being but by can could did
do does doing for from had has have having he her here hers him his how i if in into is it
its just me more most my no nor not now of off on once only or other our out over own same
she should so some such than that the their them then there these they this those through
to too under until up very was we were what when where which while who why will with would
you your
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """The sorted set of significant words of ``text``, joined by spaces (may be empty)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = set()
    for word in _NON_WORD.split(plain.replace("œ", "oe").replace("æ", "ae")):
        if not word or word in _STOP_WORDS:
            continue
        if len(word) > 3 and word[-1] in "sx":
            word = word[:-1]
        words.add(word)
    return " ".join(sorted(words))


@dataclass(frozen=True, slots=True)
class Group:
    """A text shown once, its reference, and the references of the similar ones."""

    text: str
    reference: str
    similar: tuple[str, ...] = ()


def group_similar(entries: Sequence[tuple[str, str]], threshold: float) -> list[Group]:
    """Group near-duplicate ``(reference, text)`` entries.

    ``threshold`` is a similarity in [0, 1] (``settings.similarity_threshold``); above 1
    nothing is grouped, at 0 everything sharing a rare word is. Groups come out largest first,
    then by reference; the result depends only on the entries, not on their order.
    """
    items = sorted(entries)
    n = len(items)
    if n == 0:
        return []
    cutoff = threshold * 100
    norms = [normalise(text) for _, text in items]
    words = [norm.split() for norm in norms]
    freq: Counter[str] = Counter()
    for ws in words:
        freq.update(ws)
    postings: dict[str, list[int]] = defaultdict(list)
    for idx, ws in enumerate(words):
        for w in ws:
            postings[w].append(idx)
    # texts with no significant word (emoji, stop words only) only match their exact twin
    exact: dict[str, list[int]] = defaultdict(list)
    for idx, norm in enumerate(norms):
        if not norm:
            exact[" ".join(items[idx][1].casefold().split())].append(idx)

    grouped = [False] * n
    groups: list[Group] = []
    for i in range(n):
        if grouped[i]:
            continue
        grouped[i] = True
        members: list[int] = []
        if not norms[i]:
            members = [j for j in exact[" ".join(items[i][1].casefold().split())] if not grouped[j]]
        elif cutoff <= 100:
            rare = sorted(words[i], key=lambda w: (freq[w], w))[:RARE_WORDS]
            candidates = sorted({j for w in rare for j in postings[w] if j > i and not grouped[j]})
            if candidates:
                matches = process.extract(
                    norms[i],
                    [norms[j] for j in candidates],
                    scorer=fuzz.ratio,
                    processor=None,
                    score_cutoff=cutoff,
                    limit=None,
                )
                members = sorted(candidates[pos] for _, _, pos in matches)
        for j in members:
            grouped[j] = True
        ref, text = items[i]
        groups.append(Group(text, ref, tuple(items[j][0] for j in members)))
    groups.sort(key=lambda g: (-len(g.similar), g.reference))
    return groups
