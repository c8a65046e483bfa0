"""Topics found in the contributions of one theme of one territory.

Pure: no I/O, no database. The exporter (or the console) gives the approved contributions of a
theme; :func:`find_topics` groups them by what they talk about and labels each group:

1. Normalisation (:mod:`exporter.topic_words`): lower case, ``œ``/``æ`` spelled out, words
   split on anything not a letter, SMS spellings spelled out ("rdv"), French stop words dropped
   (the ``stop-words`` package's maintained French list, plus scikit-learn's English list for
   the odd contribution in English, plus a few fillers of written-as-spoken French), each word
   stemmed by the Snowball French stemmer (``snowballstemmer``) and its accents folded, so
   "médecins", "Médecin" and "medecin" meet (a text is analysed piece by piece, between its
   spaces, through a table of the pieces already met: contributions share most of theirs). A
   stem seen once or twice that is one edit away from a stem of the theme seen three times or
   more is taken for a typo of it ("medcin", "urgneces").
2. TF-IDF (scikit-learn) over the stems and the pairs of neighbouring stems; the need counts
   twice (it says what the contribution is about, the solution often says how). Each term has
   a column of its own: stems are numbered as met and a pair by its two stems' numbers, with
   numpy (no hashing, so no two terms share a column; a theme of long texts has hundreds of
   thousands of distinct pairs, and no vocabulary of strings is sorted).
3. Agglomerative clustering (SciPy's ``hierarchy``, which scikit-learn's ``AgglomerativeClustering``
   runs; average linkage, cosine distance) cut at a distance
   threshold: the number of topics follows the data, not a number chosen in advance. Average
   linkage merges two groups when their contributions share enough words *on average*, which
   does not depend on how many contributions there are, so one threshold suits 10 or 5,000.
   A group smaller than :attr:`TopicSettings.min_size` is no topic: its contributions are
   "unassigned" (off-topic, alone on their subject, or without any word). A latent semantic
   analysis (truncated SVD) can be asked for; it is off by default: on the labelled set it
   did not help and it costs most of the time.
4. Labels (:mod:`exporter.topic_labels`): YAKE (``yake-rust``, French) extracts key phrases from a
   topic's most central texts; each is scored by the share of the topic's contributions that
   say it times the log of how much more they say it than the whole theme (a phrase every
   contribution says names nothing). A label is a phrase of 2 to 4 words as citizens wrote it
   (the spelling the texts use most, accents kept), without a leading article, a negation or a
   verb inside: "maison de santé", "visites à domicile", "médecin traitant".
5. Ranking: by distinct citizens supporting the topic (one citizen posting ten times counts
   once), then by the number of contributions, then by label; ids "T1", "T2"... follow that
   order.

Deterministic: contributions are sorted by id before anything else, the SVD has a fixed seed,
and every tie is broken by label or id, so the same contributions in any order give the same
topics with the same ids.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize as l2_normalise

from exporter.topic_labels import Draft, Labeller
from exporter.topic_words import fold, folded_of, pieces, stems, stems_of

__all__ = ["Contribution", "Topic", "TopicSettings", "Topics", "find_topics", "fold", "stems"]

#: A stem seen in at most this many contributions may be a typo of a stem seen in at least
#: _TYPO_MIN_FREQUENT.
_TYPO_MAX_RARE = 2
_TYPO_MIN_FREQUENT = 3


@dataclass(frozen=True, slots=True)
class Contribution:
    """What the topic engine reads of a contribution (texts as exported: moderated, masked)."""

    id: str
    #: Who wrote it, as a key (pseudonymised id): only compared, to count distinct citizens.
    participant: str
    need: str
    solution: str = ""


@dataclass(frozen=True, slots=True)
class Topic:
    """A group of contributions about one subject."""

    #: "T1", "T2"... in rank order; stable within one run (same input, same ids).
    id: str
    #: 2 to 4 words of the contributions, e.g. "médecin traitant".
    label: str
    #: The topic's key phrases, best first (the label is the first).
    key_phrases: tuple[str, ...]
    #: The contributions' ids, sorted.
    contributions: tuple[str, ...]
    #: How many distinct citizens wrote them.
    participants: int

    @property
    def size(self) -> int:
        return len(self.contributions)


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one theme, best supported first, and the contributions in none."""

    topics: tuple[Topic, ...] = ()
    #: Contributions in no topic (alone on their subject, off-topic, or with no word), sorted.
    unassigned: tuple[str, ...] = ()
    _by_contribution: dict[str, Topic] = field(default_factory=dict, repr=False, compare=False)

    def topic_of(self, contribution_id: str) -> Topic | None:
        """The topic of a contribution, or None when it is in none."""
        return self._by_contribution.get(contribution_id)


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """The engine's knobs (defaults tuned on tests/data/topics_labelled.json)."""

    #: Cosine distance (0-2) under which groups merge: higher gives fewer, broader topics.
    distance_threshold: float = 0.95
    #: A group of fewer contributions is no topic.
    min_size: int = 2
    #: Dimensions kept by a latent semantic analysis before clustering (0: none).
    dimensions: int = 0
    #: Texts of a topic given to YAKE (the most central ones).
    label_texts: int = 30
    #: Characters of each such text given to YAKE (a huge text does not slow the labels down).
    label_chars: int = 600
    #: Key phrases kept per topic.
    key_phrases: int = 5
    #: Above this many contributions, the clustering runs on a deterministic sample of this
    #: size and every other contribution joins the topic of its nearest clustered neighbour
    #: (average linkage costs n² memory and time).
    max_clustered: int = 3000
    #: Topics labelled by YAKE, best supported first (None: all). The others are labelled
    #: by their most frequent words: YAKE costs ~25 ms a topic, and an export shows only the
    #: main topics of a theme in its documents.
    labelled_topics: int | None = None


# --- the engine ---------------------------------------------------------------------------


def find_topics(
    contributions: Iterable[Contribution], settings: TopicSettings | None = None
) -> Topics:
    """Group the contributions of one theme into topics (see the module's docstring)."""
    settings = settings or TopicSettings()
    items = sorted({c.id: c for c in contributions}.values(), key=lambda c: c.id)
    analysed = []
    for c in items:
        need, solution = pieces(c.need), pieces(c.solution)
        # the stems of each part, and the whole text's words as key phrases are looked for
        analysed.append((c, stems_of(need), stems_of(solution), folded_of(need + solution)))
    with_words = [(c, need, sol) for c, need, sol, _ in analysed if need or sol]
    phrase_texts = [f" {text} " for _, need, sol, text in analysed if need or sol]
    without_words = [c.id for c, need, sol, _ in analysed if not (need or sol)]
    if len(with_words) < max(settings.min_size, 2):
        return _assemble([], [c.id for c, _, _ in with_words] + without_words, settings)

    fixes = _typo_fixes(with_words)
    corrected = [
        (c, list(map(fixes.get, need, need)), list(map(fixes.get, sol, sol)))
        for c, need, sol in with_words
    ]
    terms = _Terms(corrected)
    tfidf = TfidfTransformer(sublinear_tf=True, norm="l2").fit_transform(terms.counts)
    vectors = _reduce(tfidf, settings)

    labels = _cluster(vectors, settings)
    members: dict[int, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        members[int(label)].append(row)
    groups = [rows for rows in members.values() if len(rows) >= settings.min_size]
    grouped = {row for rows in groups for row in rows}
    unassigned = [with_words[row][0].id for row in range(len(with_words)) if row not in grouped]

    labeller = Labeller(corrected, phrase_texts, vectors, terms, fixes, settings)
    if settings.labelled_topics is None:
        drafts = [labeller.draft(rows) for rows in groups]
    else:
        # rank first (distinct citizens, size, ids), then label the best ones with YAKE
        groups.sort(
            key=lambda rows: (
                -len({corrected[r][0].participant for r in rows}),
                -len(rows),
                min(corrected[r][0].id for r in rows),
            )
        )
        cut = settings.labelled_topics
        drafts = [labeller.draft(rows, full=k < cut) for k, rows in enumerate(groups)]
    return _assemble(drafts, unassigned + without_words, settings)


class _Vocabulary(dict[str, int]):
    """stem -> its number, numbered as met."""

    def __missing__(self, stem: str) -> int:
        number = self[stem] = len(self)
        return number


class _Terms:
    """The terms of each contribution counted (rows: contributions, columns: terms): the
    need's stems count twice, the solution's once, and each pair of neighbouring stems of the
    need or of the solution once. Stems are numbered as met (the first columns), a pair by its
    two stems' numbers: every term has its own column (no hashing, no collision)."""

    def __init__(self, items: Sequence[tuple[Contribution, list[str], list[str]]]) -> None:
        self.stems = _Vocabulary()
        n = len(items)
        rows: list[np.ndarray] = []
        columns: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        pairs: list[np.ndarray] = []
        pair_rows: list[np.ndarray] = []
        needs = [need for _, need, _ in items]
        solutions = [solution for _, _, solution in items]
        for parts, weight in ((needs, 2.0), (solutions, 1.0)):
            flat = [stem for part in parts for stem in part]
            codes = np.fromiter(map(self.stems.__getitem__, flat), np.int64, len(flat))
            lengths = np.fromiter(map(len, parts), np.int64, n)
            owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
            rows.append(owner)
            columns.append(codes)
            weights.append(np.full(len(codes), weight))
            # neighbours within one contribution's part
            inside = owner[1:] == owner[:-1]
            pairs.append(np.stack((codes[:-1][inside], codes[1:][inside]), axis=1))
            pair_rows.append(owner[1:][inside])
        size = len(self.stems)
        pair_codes = np.concatenate(pairs)
        pair_numbers = np.unique(pair_codes[:, 0] * size + pair_codes[:, 1], return_inverse=True)[
            1
        ].reshape(-1)
        rows.append(np.concatenate(pair_rows))
        columns.append(size + pair_numbers)
        weights.append(np.ones(len(pair_numbers)))
        width = size + (int(pair_numbers.max()) + 1 if len(pair_numbers) else 0)
        self.counts = sparse.csr_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(columns))),
            shape=(n, max(width, 1)),
        )
        self.counts.sum_duplicates()
        #: stem columns -> the rows that say them (the need or the solution)
        self.by_stem = self.counts[:, :size].tocsc()

    def rows_with(self, stem: str) -> set[int]:
        """The rows whose need or solution has ``stem``."""
        column = self.stems.get(stem)
        if column is None:
            return set()
        start, stop = self.by_stem.indptr[column], self.by_stem.indptr[column + 1]
        return set(self.by_stem.indices[start:stop].tolist())


def _typo_fixes(items: list[tuple[Contribution, list[str], list[str]]]) -> dict[str, str]:
    """Rare stems -> a frequent stem one edit away ("medcin" -> "medecin", "urgnec" ->
    "urgenc"): the theme's own vocabulary corrects its typos."""
    counts = Counter(chain.from_iterable({*need, *sol} for _, need, sol in items))
    frequent = sorted(s for s, n in counts.items() if n >= _TYPO_MIN_FREQUENT and len(s) >= 4)
    rare = sorted(s for s, n in counts.items() if n <= _TYPO_MAX_RARE and len(s) >= 5)
    fixes: dict[str, str] = {}
    if not frequent or not rare:
        return fixes
    distances = process.cdist(rare, frequent, scorer=Levenshtein.distance, workers=1)
    for i, word in enumerate(rare):
        row = distances[i]
        best = int(row.argmin())
        # one edit, two for long words; ties go to the more frequent word, then alphabetical
        allowed = 1 if len(word) < 8 else 2
        if row[best] <= allowed:
            candidates = [j for j in np.flatnonzero(row == row[best])]
            chosen = min(candidates, key=lambda j: (-counts[frequent[j]], frequent[j]))
            fixes[word] = frequent[chosen]
    return fixes


def _reduce(tfidf: sparse.csr_matrix, settings: TopicSettings) -> sparse.csr_matrix:
    """The rows to cluster, L2-normalised: the TF-IDF itself, or its latent semantic analysis
    when :attr:`TopicSettings.dimensions` asks for it."""
    n_rows, n_cols = tfidf.shape
    k = min(settings.dimensions, n_rows - 1, n_cols - 1)
    if k < 2:
        return sparse.csr_matrix(l2_normalise(tfidf))
    svd = TruncatedSVD(n_components=k, algorithm="arpack", random_state=0)
    return sparse.csr_matrix(l2_normalise(svd.fit_transform(tfidf)))


def _cluster(vectors: sparse.csr_matrix, settings: TopicSettings) -> np.ndarray:
    """A cluster number per row (agglomerative, average linkage, cosine distance)."""
    n = vectors.shape[0]
    if n <= settings.max_clustered:
        return _agglomerate(vectors, settings)
    # an evenly spread sample (rows are in id order); every other row joins its most similar
    # sampled row's cluster
    sample = np.linspace(0, n - 1, settings.max_clustered).round().astype(int)
    sample_labels = _agglomerate(vectors[sample], settings)
    nearest = np.empty(n, dtype=int)
    closest = np.empty(n)
    sampled = vectors[sample].T.tocsc()
    for start in range(0, n, 1024):
        similarity = (vectors[start : start + 1024] @ sampled).toarray()
        nearest[start : start + 1024] = similarity.argmax(axis=1)
        closest[start : start + 1024] = similarity.max(axis=1)
    labels = sample_labels[nearest]
    # a row near no sampled row (nothing in common within the threshold) stays alone
    alone = np.flatnonzero(1.0 - closest > settings.distance_threshold)
    labels[alone] = -1 - alone
    labels[sample] = sample_labels
    return labels


def _agglomerate(vectors: sparse.csr_matrix, settings: TopicSettings) -> np.ndarray:
    """A cluster number per row: average linkage on cosine distances, cut where groups are
    :attr:`TopicSettings.distance_threshold` apart or more. SciPy directly, as scikit-learn's
    ``AgglomerativeClustering(metric="precomputed", linkage="average", distance_threshold=...)``
    runs it (the same tree and the same cut: merges below the threshold; average linkage never
    merges at a lower distance than before), without its validation and index copies."""
    # one n x n matrix, turned from similarities into distances in place (n = 3,000: 72 MB)
    distance = (vectors @ vectors.T).toarray()
    np.subtract(1.0, distance, out=distance)
    np.clip(distance, 0.0, 2.0, out=distance)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    del distance
    below = np.nextafter(settings.distance_threshold, -np.inf)  # strictly below the threshold
    return np.asarray(fcluster(tree, below, criterion="distance"))


# --- ranking -------------------------------------------------------------------------------


def _assemble(drafts: list[Draft], unassigned: list[str], settings: TopicSettings) -> Topics:
    """Rank the topics, give them distinct labels and their ids. Equal support: by label; with
    :attr:`TopicSettings.labelled_topics`, by contributions (the order they were labelled in,
    so that the best-supported topics are those YAKE labelled)."""
    if settings.labelled_topics is None:
        ordered = sorted(
            drafts,
            key=lambda d: (
                -d.participants,
                -len(d.contributions),
                d.label_choices[0],
                d.contributions,
            ),
        )
    else:
        ordered = sorted(drafts, key=lambda d: (-d.participants, -len(d.contributions)))
    topics: list[Topic] = []
    used: set[str] = set()
    for number, draft in enumerate(ordered, start=1):
        label = next((c for c in draft.label_choices if c not in used), None)
        if label is None:
            label = f"{draft.label_choices[0]} ({number})"
        used.add(label)
        phrases = (label, *[p for p in draft.label_choices if p != label])
        topics.append(
            Topic(
                id=f"T{number}",
                label=label,
                key_phrases=phrases[: settings.key_phrases],
                contributions=draft.contributions,
                participants=draft.participants,
            )
        )
    by_contribution = {cid: topic for topic in topics for cid in topic.contributions}
    return Topics(tuple(topics), tuple(sorted(unassigned)), by_contribution)
