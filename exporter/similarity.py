"""Near-duplicate grouping of contribution texts.

Texts are normalised (case, accents, punctuation, French and English stop words, plurals) into
the sorted set of their words, then compared with ``rapidfuzz.fuzz.ratio``: an order-insensitive
score that still counts extra words. (``token_set_ratio`` is not used: it scores 100 whenever
one text's words are a subset of the other's, so "manque de médecins" would swallow every
longer text that mentions doctors.)

Grouping is deterministic and leader-based: items are taken in reference order; the first item
not yet grouped leads a group and gathers every later ungrouped item scoring at least the
threshold against it. To scale, an item is only compared with items whose rarest words meet its
own (prefix filtering on an inverted index), never with every other item.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

#: How many of a text's rarest words index it (its "prefix").
RARE_WORDS = 4
#: From this many significant words, a candidate must share two of the rarest words (long
#: texts otherwise gather hundreds of candidates through one shared word).
LONG_TEXT_WORDS = 16
#: A word indexing more texts than this is too common to select comparison candidates.
MAX_POSTINGS = 128

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
_NON_LETTER = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """The sorted set of significant words of ``text``, joined by spaces (may be empty)."""
    # split on any non-letter first (typographic apostrophes, dashes...), then fold accents
    folded = _NON_LETTER.sub(" ", text.casefold().replace("œ", "oe").replace("æ", "ae"))
    # NFKD splits accents off; encoding to ASCII drops them (and any non-Latin letter: a text
    # with no Latin word at all then only matches its exact twin, see group_similar)
    plain = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")
    words = set(plain.split()) - _STOP_WORDS
    # plurals: "médecins" and "médecin", "hôpitaux" and "hôpitau(x)" meet
    return " ".join(sorted({w[:-1] if len(w) > 3 and w[-1] in "sx" else w for w in words}))


@dataclass(frozen=True, slots=True)
class Group:
    """A text shown once, its reference, and the references of the similar ones."""

    text: str
    reference: str
    similar: tuple[str, ...] = ()


def group_similar(
    entries: Sequence[tuple[str, str]],
    threshold: float,
    cache: dict[str, str] | None = None,
) -> list[Group]:
    """Group near-duplicate ``(reference, text)`` entries.

    ``threshold`` is a similarity in [0, 1] (``settings.similarity_threshold``); above 1
    nothing is grouped. Groups come out largest first, then by reference; the result depends
    only on the entries, not on their order. ``cache`` (text -> normalised text) saves
    normalising the same texts again (the regional roll-up after the territories).
    """
    items = sorted(entries)
    n = len(items)
    if n == 0:
        return []
    cutoff = threshold * 100
    if cache is None:
        norms = [normalise(text) for _, text in items]
    else:
        norms = []
        for _, text in items:
            norm = cache.get(text)
            if norm is None:
                norm = cache[text] = normalise(text)
            norms.append(norm)
    words = [norm.split() for norm in norms]
    freq: Counter[str] = Counter()
    for ws in words:
        freq.update(ws)
    # Prefix filtering: each text is indexed under its RARE_WORDS rarest words only, and two
    # texts are compared only when these meet (near-duplicates share most of their words, so
    # they share their rare ones). A word indexing more than MAX_POSTINGS texts is too common
    # to select candidates; texts made only of common words meet their exact twins instead.
    postings: dict[str, list[int]] = defaultdict(list)
    prefixes: list[list[str]] = []
    for idx, ws in enumerate(words):
        # ws is in alphabetical order and sorted() is stable: ties stay alphabetical
        prefix = sorted(ws, key=freq.__getitem__)[:RARE_WORDS]
        prefixes.append(prefix)
        for w in prefix:
            postings[w].append(idx)
    twins: dict[str, list[int]] = defaultdict(list)
    # texts with no significant word (emoji, stop words only) compare as they are
    keys = [
        norm or "\x00" + " ".join(items[idx][1].casefold().split())
        for idx, norm in enumerate(norms)
    ]
    for idx, key in enumerate(keys):
        twins[key].append(idx)

    grouped = [False] * n
    groups: list[Group] = []
    ratio = fuzz.ratio
    for i in range(n):
        if grouped[i]:
            continue
        grouped[i] = True
        if cutoff > 100:
            groups.append(Group(items[i][1], items[i][0]))
            continue
        twin = twins[keys[i]]
        members = {j for j in twin if j > i and not grouped[j]} if len(twin) > 1 else set()
        norm = norms[i]
        if norm:
            hits: Counter[int] = Counter()
            for w in prefixes[i]:
                posting = postings[w]
                if 1 < len(posting) <= MAX_POSTINGS:
                    # postings are in index order: only later texts can join this group
                    hits.update(posting[bisect_right(posting, i) :])
            # a long text's near-duplicate shares at least two of its rarest words
            need = 2 if len(words[i]) >= LONG_TEXT_WORDS else 1
            pool = {j for j, h in hits.items() if h >= need and not grouped[j]} - members
            if len(pool) > 16:
                candidates = sorted(pool)
                matches = process.extract(
                    norm,
                    [norms[j] for j in candidates],
                    scorer=ratio,
                    processor=None,
                    score_cutoff=cutoff,
                    limit=None,
                )
                members.update(candidates[pos] for _, _, pos in matches)
            else:
                members.update(j for j in pool if ratio(norm, norms[j], score_cutoff=cutoff))
        ordered = sorted(members)
        for j in ordered:
            grouped[j] = True
        ref, text = items[i]
        groups.append(Group(text, ref, tuple(items[j][0] for j in ordered)))
    groups.sort(key=lambda g: (-len(g.similar), g.reference))
    return groups
