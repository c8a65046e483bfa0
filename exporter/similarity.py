"""Near-duplicate grouping of contribution texts.

Texts are normalised (case, accents, punctuation, French and English stop words, plurals) into
the sorted set of their words, then compared with ``rapidfuzz.fuzz.ratio``: an order-insensitive
score that still counts extra words. (``token_set_ratio`` is not used: it scores 100 whenever
one text's words are a subset of the other's, so "manque de médecins" would swallow every
longer text that mentions doctors.)

Grouping is deterministic and leader-based: items are taken in reference order; the first item
not yet grouped leads a group and gathers every later ungrouped item scoring at least the
threshold against it. To scale, an item is only compared with items whose rarest words meet its
own (prefix filtering), never with every other item: the rare words two texts share are counted
by a sparse matrix product, a block of texts at a time, and texts are normalised piece by piece
through a table of the pieces already met (the texts of a consultation share most words).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from scipy import sparse

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


class _Forms(dict[str, tuple[str, ...]]):
    """A piece of text between spaces ("L'Hôpital,") -> its significant words: case-folded,
    split on anything not a letter or a digit (typographic apostrophes, dashes...), accents
    dropped (NFKD, then ASCII only), stop words dropped, plurals cut. Filled as pieces are
    met: texts share most of theirs, so a text is normalised by dictionary look-ups."""

    #: Forgotten past this many pieces (a long-running console process meets new ones).
    LIMIT = 500_000

    def __missing__(self, piece: str) -> tuple[str, ...]:
        # case folding never turns a space into a letter or a letter into a space: folding
        # piece by piece is folding the whole text (tests/exporter/test_export_similarity.py)
        folded = piece.casefold().replace("œ", "oe").replace("æ", "ae")
        folded = _NON_LETTER.sub(" ", folded)
        # NFKD splits accents off; encoding to ASCII drops them (and any non-Latin letter: a
        # text with no Latin word at all then only matches its exact twin, see group_similar)
        plain = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")
        # plurals: "médecins" and "médecin", "hôpitaux" and "hôpitau(x)" meet
        forms = tuple(
            w[:-1] if len(w) > 3 and w[-1] in "sx" else w
            for w in plain.split()
            if w not in _STOP_WORDS
        )
        if len(self) >= self.LIMIT:
            self.clear()
        self[piece] = forms
        return forms


_FORMS = _Forms()
_words_of_pieces = itertools.chain.from_iterable


def normalise(text: str) -> str:
    """The sorted set of significant words of ``text``, joined by spaces (may be empty)."""
    # spaces are no letters: splitting on them first, then each piece (:class:`_Forms`),
    # splits on every non-letter
    return " ".join(sorted(set(_words_of_pieces(map(_FORMS.__getitem__, set(text.split()))))))


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
    *,
    last_use: bool = False,
) -> list[Group]:
    """Group near-duplicate ``(reference, text)`` entries.

    ``threshold`` is a similarity in [0, 1] (``settings.similarity_threshold``); above 1
    nothing is grouped. Groups come out largest first, then by reference; the result depends
    only on the entries, not on their order. ``cache`` (text -> normalised text) saves
    normalising the same texts again (the regional roll-up after the territories); with
    ``last_use``, the entries' texts are taken out of it (their memory is reused as the
    roll-up's groups are made).
    """
    items = sorted(entries)
    n = len(items)
    if n == 0:
        return []
    cutoff = threshold * 100
    if cutoff > 100:
        return sorted((Group(text, ref) for ref, text in items), key=lambda g: g.reference)
    if cache is None:
        norms = [normalise(text) for _, text in items]
    elif last_use:
        taken: dict[str, str] = {}
        for _, text in items:
            if text not in taken:
                norm = cache.pop(text, None)
                taken[text] = normalise(text) if norm is None else norm
        norms = [taken[text] for _, text in items]
        del taken
    else:
        norms = []
        for _, text in items:
            norm = cache.get(text)
            if norm is None:
                norm = cache[text] = normalise(text)
            norms.append(norm)
    # texts with no significant word (emoji, stop words only) compare as they are
    keys = [
        norm or "\x00" + " ".join(items[idx][1].casefold().split())
        for idx, norm in enumerate(norms)
    ]
    # identical keys: the texts that are twins (in index order)
    counts = Counter(keys)
    twins: dict[str, list[int]] = defaultdict(list)
    for idx in [idx for idx, key in enumerate(keys) if counts[key] > 1]:
        twins[keys[idx]].append(idx)
    candidates = _Candidates(norms)

    grouped = [False] * n
    groups: list[Group] = []
    ratio = fuzz.ratio
    for i in range(n):
        if grouped[i]:
            continue
        grouped[i] = True
        twin = twins.get(keys[i])
        members = {j for j in twin if j > i and not grouped[j]} if twin else set()
        later = candidates.of(i)  # none for a text without significant word
        if later:
            norm = norms[i]
            pool = {j for j in later if not grouped[j]} - members
            if len(pool) > 16:
                ordered_pool = sorted(pool)
                matches = process.extract(
                    norm,
                    [norms[j] for j in ordered_pool],
                    scorer=ratio,
                    processor=None,
                    score_cutoff=cutoff,
                    limit=None,
                )
                members.update(ordered_pool[pos] for _, _, pos in matches)
            else:
                members.update(j for j in pool if ratio(norm, norms[j], score_cutoff=cutoff))
        ref, text = items[i]
        if members:
            ordered = sorted(members)
            for j in ordered:
                grouped[j] = True
            groups.append(Group(text, ref, tuple(items[j][0] for j in ordered)))
        else:
            groups.append(Group(text, ref))
    groups.sort(key=lambda g: (-len(g.similar), g.reference))
    return groups


class _Vocabulary(dict[str, int]):
    """word -> its number, numbered as met."""

    def __missing__(self, word: str) -> int:
        number = self[word] = len(self)
        return number


class _Candidates:
    """The later texts each text is compared with (prefix filtering, see the module's
    docstring), counted with sparse matrices, a block of texts at a time.

    Each text is indexed under its :data:`RARE_WORDS` rarest words (ties: alphabetical) that
    index more than one and at most :data:`MAX_POSTINGS` texts; text ``j > i`` is a candidate
    of text ``i`` when they share one such word, or two when ``i`` has
    :data:`LONG_TEXT_WORDS` words or more (long texts otherwise gather hundreds of candidates
    through one shared word)."""

    #: Texts whose candidates are counted at once (each has at most
    #: RARE_WORDS * MAX_POSTINGS of them: a block holds at most ~2 million counts).
    BLOCK = 4096

    def __init__(self, norms: Sequence[str]) -> None:
        n = len(norms)
        # Twins (same normalised text) have the same words, so the same prefix: the words are
        # read and ranked once per distinct text (``which``: each text's), counted as many
        # times as it has twins, text by text (not one list of them all: a roll-up has
        # millions)
        distinct = _Vocabulary()
        which = np.fromiter(map(distinct.__getitem__, norms), np.int64, n)
        twins = np.bincount(which)
        counted = np.fromiter(map(str.count, distinct, itertools.repeat(" ")), np.int64)
        counted += np.fromiter(map(bool, distinct), np.int64, len(distinct))
        vocabulary = _Vocabulary()
        words = itertools.chain.from_iterable(map(str.split, distinct))
        codes = np.fromiter(map(vocabulary.__getitem__, words), np.int64, int(counted.sum()))
        owner = np.repeat(np.arange(len(distinct), dtype=np.int64), counted)
        del distinct
        size = max(len(vocabulary), 1)
        frequency = np.bincount(codes, twins[owner], minlength=size)
        # words by rarity, ties alphabetical: each text's first RARE_WORDS in this order
        # index it
        alphabetical = np.empty(size, dtype=np.int64)
        alphabetical[[vocabulary[w] for w in sorted(vocabulary)]] = np.arange(len(vocabulary))
        by_rarity = np.lexsort((alphabetical, frequency))
        rarity = np.empty(size, dtype=np.int64)
        rarity[by_rarity] = np.arange(size)
        ordered = np.sort(owner * size + rarity[codes])
        starts = np.cumsum(counted) - counted
        rank = np.arange(len(ordered)) - starts[ordered // size]
        prefix = ordered[rank < RARE_WORDS]
        prefix_owners, prefix_words = prefix // size, by_rarity[prefix % size]
        postings = np.bincount(prefix_words, twins[prefix_owners], minlength=size)
        useful = (postings[prefix_words] > 1) & (postings[prefix_words] <= MAX_POSTINGS)
        by_distinct = sparse.csr_matrix(
            (
                np.ones(int(useful.sum()), dtype=np.int32),
                (prefix_owners[useful], prefix_words[useful]),
            ),
            shape=(len(twins), size),
        )
        # each text's row: its distinct text's
        self.index = by_distinct[which]
        self.index_t = self.index.T.tocsr()
        self.need = np.where(counted[which] >= LONG_TEXT_WORDS, 2, 1)
        self.block_start = -self.BLOCK
        self.kept: list[int] = []
        self.bounds: list[int] = []

    def of(self, i: int) -> list[int]:
        """The later texts text ``i`` is compared with."""
        at = i - self.block_start
        if not 0 <= at < self.BLOCK:
            self._count(i)
            at = 0
        start, stop = self.bounds[at], self.bounds[at + 1]
        return self.kept[start:stop] if start != stop else []

    def _count(self, start: int) -> None:
        stop = min(start + self.BLOCK, self.index.shape[0])
        shared = (self.index[start:stop] @ self.index_t).tocsr()
        rows = np.repeat(np.arange(start, stop), np.diff(shared.indptr))
        keep = (shared.indices > rows) & (shared.data >= self.need[rows])
        self.block_start = start
        self.kept = shared.indices[keep].tolist()
        self.bounds = np.searchsorted(rows[keep], np.arange(start, stop + 1)).tolist()
