"""The topic engine (exporter/topics.py) on the labelled synthetic set and on edge cases.

Measures on tests/data/topics_labelled.json (360 contributions, 4 themes, 4 topics per theme
plus off-topic ones; written by tests/data/make_topics_labelled.py), per theme:

- purity: of the contributions placed in a topic, the share whose truth label is the majority
  truth label of their topic (1.0: no topic mixes subjects);
- coverage: of the on-topic contributions (truth label not "hors sujet"), the share placed in a
  topic whose majority truth label is their own (1.0: every contribution sits with its
  subject; a contribution left unassigned, or in a topic of another subject, does not count);
- topics found against true topics: purity and coverage alone would reward cutting each subject
  into many small topics, so the number of topics is bounded too.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import Stemmer
from snowballstemmer.french_stemmer import FrenchStemmer

from exporter.topic_labels import _fallback_label, _phrase_form
from exporter.topic_words import _STEMMER, STOP, folded_of, pieces, stem, stems_of
from exporter.topics import (
    Contribution,
    Topics,
    TopicSettings,
    _Terms,
    find_topics,
    fold,
    stems,
)
from tests.data.make_topics_labelled import OFF_TOPIC, purity_and_coverage

DATA = Path(__file__).parents[1] / "data" / "topics_labelled.json"


def _labelled() -> list[dict[str, str]]:
    items: list[dict[str, str]] = json.loads(DATA.read_text(encoding="utf-8"))
    return items


def _contributions(items: list[dict[str, str]]) -> list[Contribution]:
    return [Contribution(i["id"], i["participant"], i["need"], i["solution"]) for i in items]


def _themes() -> list[str]:
    return sorted({i["theme"] for i in _labelled()})


def _measures(result: Topics, truth: dict[str, str]) -> tuple[float, float]:
    """Purity and coverage of the module docstring."""
    return purity_and_coverage((t.contributions for t in result.topics), truth)


def test_the_labelled_set_is_large_varied_and_labelled() -> None:
    items = _labelled()
    assert len(items) >= 300
    assert len(_themes()) == 4
    for theme in _themes():
        topics = {i["topic"] for i in items if i["theme"] == theme} - {OFF_TOPIC}
        assert len(topics) >= 3
    assert sum(i["topic"] == OFF_TOPIC for i in items) >= 10
    # paraphrased: far more distinct needs than topics; typos: some accents dropped
    assert len({i["need"] for i in items}) > 200
    assert any("medecin" in i["need"] for i in items)


@pytest.mark.parametrize("theme", _themes())
def test_topics_match_the_labelled_subjects(theme: str) -> None:
    items = [i for i in _labelled() if i["theme"] == theme]
    truth = {i["id"]: i["topic"] for i in items}
    result = find_topics(_contributions(items))
    purity, coverage = _measures(result, truth)
    assert purity >= 0.7, purity
    assert coverage >= 0.7, coverage
    true_topics = len(set(truth.values()) - {OFF_TOPIC})
    assert true_topics - 1 <= len(result.topics) <= 2 * true_topics, result.topics
    # every contribution is either in exactly one topic or unassigned
    placed = [c for t in result.topics for c in t.contributions]
    assert len(placed) == len(set(placed))
    assert sorted(placed + list(result.unassigned)) == sorted(truth)
    for topic in result.topics:
        for cid in topic.contributions:
            assert result.topic_of(cid) is topic
    for cid in result.unassigned:
        assert result.topic_of(cid) is None


@pytest.mark.parametrize("theme", _themes())
def test_shuffled_input_gives_the_same_topics(theme: str) -> None:
    contributions = _contributions([i for i in _labelled() if i["theme"] == theme])
    first = find_topics(contributions)
    for seed in (1, 2):
        shuffled = contributions[:]
        random.Random(seed).shuffle(shuffled)
        again = find_topics(shuffled)
        assert again.topics == first.topics
        assert again.unassigned == first.unassigned


def test_ids_follow_the_rank_and_the_rank_counts_distinct_citizens() -> None:
    result = find_topics(_contributions(_labelled()))
    assert [t.id for t in result.topics] == [f"T{k}" for k in range(1, len(result.topics) + 1)]
    keys = [(-t.participants, -t.size) for t in result.topics]
    assert keys == sorted(keys)


def test_one_citizen_posting_ten_times_does_not_outrank_five_citizens() -> None:
    flood = [
        Contribution(
            f"A-{k:02d}",
            "same-citizen",
            f"Les urgences de l'hôpital sont saturées, {k + 2} heures d'attente hier soir.",
            "Ouvrir plus de lits aux urgences.",
        )
        for k in range(10)
    ]
    many = [
        Contribution(f"B-{k:02d}", f"citizen-{k}", need, solution)
        for k, (need, solution) in enumerate(
            [
                ("Impossible de trouver un médecin traitant.", "Plus de médecins généralistes."),
                ("Je n'ai plus de médecin traitant depuis deux ans.", ""),
                ("Aucun médecin traitant ne prend de nouveaux patients.", "Obliger à prendre."),
                ("Mon médecin traitant est parti à la retraite.", "Un remplaçant."),
                ("Pas de médecin traitant pour mes enfants.", "Une liste d'attente."),
            ]
        )
    ]
    result = find_topics(flood + many)
    assert len(result.topics) == 2
    first, second = result.topics
    assert first.participants == 5 and set(first.contributions) == {c.id for c in many}
    assert second.participants == 1 and second.size == 10
    assert "médecin traitant" in first.label
    assert "urgences" in second.label


def test_labels_are_readable_french_words_of_the_texts() -> None:
    items = _labelled()
    by_id = {i["id"]: i for i in items}
    accented = 0
    for theme in _themes():
        result = find_topics(_contributions([i for i in items if i["theme"] == theme]))
        labels = [t.label for t in result.topics]
        assert len(set(labels)) == len(labels)  # distinct within a theme
        for topic in result.topics:
            assert 2 <= len(topic.label.split()) <= 4, topic.label
            assert topic.key_phrases[0] == topic.label
            assert len(topic.key_phrases) >= 2
            texts = " ".join(
                f"{by_id[c]['need']} {by_id[c]['solution']}" for c in topic.contributions
            ).casefold()
            for word in re.findall(r"[^\W\d_]+", topic.label):
                assert word.casefold() in texts, (topic.label, word)
            # words, not stems: each label word is longer than its stem or a whole word
            assert all(len(w) >= len(stems(w)[0]) for w in topic.label.split() if stems(w))
            accented += topic.label != fold(topic.label)
    assert accented >= 4  # accents kept (the folded forms are only for matching)


def test_expected_subjects_are_named() -> None:
    items = [i for i in _labelled() if i["theme"] == "acces-medecin-traitant"]
    labels = [t.label for t in find_topics(_contributions(items)).topics]
    assert "médecin traitant" in labels
    assert "maison de santé" in labels


# --- edge cases ---------------------------------------------------------------------------


def test_no_contribution_no_topic() -> None:
    assert find_topics([]) == Topics()


def test_one_contribution_is_unassigned() -> None:
    result = find_topics([Contribution("R1", "p1", "Plus de médecin traitant au village.")])
    assert result.topics == () and result.unassigned == ("R1",)


def test_two_contributions_on_one_subject_make_a_topic() -> None:
    result = find_topics(
        [
            Contribution("R1", "p1", "Plus de médecin traitant au village.", ""),
            Contribution("R2", "p2", "Impossible de trouver un médecin traitant.", ""),
        ]
    )
    assert len(result.topics) == 1
    assert result.topics[0].contributions == ("R1", "R2")
    assert result.topics[0].participants == 2
    assert "médecin traitant" in result.topics[0].label


def test_two_unrelated_contributions_make_no_topic() -> None:
    result = find_topics(
        [
            Contribution("R1", "p1", "Plus de médecin traitant au village.", ""),
            Contribution("R2", "p2", "Le dépistage du cancer du sein est mal connu.", ""),
        ]
    )
    assert result.topics == () and result.unassigned == ("R1", "R2")


def test_identical_texts_make_one_topic() -> None:
    same = [
        Contribution(f"R{k}", f"p{k}", "Les urgences sont saturées.", "Plus de lits.")
        for k in range(12)
    ]
    result = find_topics(same)
    assert len(result.topics) == 1
    assert result.topics[0].size == 12 and result.topics[0].participants == 12
    assert result.topics[0].label in {"urgences saturées", "urgences sont saturées"}


def test_texts_without_words_are_unassigned() -> None:
    odd = [
        Contribution("E1", "p1", "", ""),
        Contribution("E2", "p2", "😀😀😀", "🙏"),
        Contribution("E3", "p3", "!!! ???", "..."),
        Contribution("E4", "p4", "ok", "a"),
        Contribution("E5", "p5", "12 34", "2022"),
        Contribution("E6", "p6", "a" * 5000, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
    ]
    result = find_topics(odd)
    assert result.topics == ()
    assert result.unassigned == ("E1", "E2", "E3", "E4", "E5", "E6")
    # mixed with real ones, they stay out of the topics
    real = [
        Contribution(f"R{k}", f"q{k}", f"Pas de médecin traitant depuis {k + 1} ans.", "")
        for k in range(3)
    ]
    result = find_topics(odd + real)
    assert len(result.topics) == 1 and result.topics[0].size == 3
    assert result.unassigned == ("E1", "E2", "E3", "E4", "E5", "E6")


def test_one_huge_text_among_short_ones() -> None:
    huge = " ".join(["Les urgences sont saturées et personne ne vient la nuit."] * 2000)
    items = [
        Contribution("H1", "p0", huge, "Plus de lits. " * 500),
        *[
            Contribution(f"R{k}", f"p{k + 1}", f"Urgences saturées, {k + 3} heures d'attente.", "")
            for k in range(4)
        ],
    ]
    result = find_topics(items)
    assert len(result.topics) == 1 and result.topics[0].size == 5
    assert len(result.topics[0].label.split()) <= 4


def test_a_contribution_listed_twice_counts_once() -> None:
    one = Contribution("R1", "p1", "Plus de médecin traitant au village.", "")
    other = Contribution("R2", "p2", "Impossible de trouver un médecin traitant.", "")
    assert find_topics([one, one, other]) == find_topics([one, other])


def test_min_size_is_a_setting() -> None:
    items = [
        Contribution("R1", "p1", "Plus de médecin traitant au village.", ""),
        Contribution("R2", "p2", "Impossible de trouver un médecin traitant.", ""),
    ]
    assert find_topics(items, TopicSettings(min_size=3)).topics == ()


def test_normalisation_folds_case_accents_typos_and_stop_words() -> None:
    assert stems("Les MÉDECINS") == stems("le médecin") == stems("medecin") == ["medecin"]
    assert stems("un rdv chez le spécialiste") == stems("rendez-vous spécialistes")
    assert stems("de la et ou 😀 42") == []


def test_large_inputs_cluster_a_sample_and_place_the_rest() -> None:
    """Above max_clustered, the rest joins its nearest sampled contribution's topic, and a
    contribution sharing nothing with the sample stays unassigned."""
    items = [i for i in _labelled() if i["theme"] == "prevention"]
    contributions = _contributions(items)
    # sorted right after the first contribution: row 1, which the sample of 40 rows out of 91
    # (evenly spread, rows 0, 2, 5...) leaves out
    first = min(c.id for c in contributions)
    lonely = Contribution(f"{first}-b", "p-lonely", "Xylophone quadrichromie.", "Zeppelin.")
    settings = TopicSettings(max_clustered=40)
    assert 1 not in np.linspace(0, len(items), 40).round().astype(int)
    result = find_topics([*contributions, lonely], settings)
    truth = {i["id"]: i["topic"] for i in items} | {lonely.id: OFF_TOPIC}
    purity, coverage = _measures(result, truth)
    assert purity >= 0.7 and coverage >= 0.7, (purity, coverage)
    assert result.topic_of(lonely.id) is None
    assert find_topics(list(reversed(contributions)), settings) == find_topics(
        contributions, settings
    )


def test_labelling_only_the_main_topics_keeps_the_topics_and_their_order() -> None:
    """``labelled_topics`` (the export's setting): the same topics, ranked by support; the
    labelled ones are the best supported (ties: by contributions, not by label) and keep
    YAKE's labels, the others get their frequent words."""
    theme = _themes()[0]
    contributions = _contributions([i for i in _labelled() if i["theme"] == theme])
    full = find_topics(contributions)
    cheap = find_topics(contributions, TopicSettings(labelled_topics=1))
    assert sorted(t.contributions for t in cheap.topics) == sorted(
        t.contributions for t in full.topics
    )
    keys = [(-t.participants, -t.size) for t in cheap.topics]
    assert keys == sorted(keys)
    assert [t.id for t in cheap.topics] == [f"T{k}" for k in range(1, len(cheap.topics) + 1)]
    # the first has the full engine's label for the same contributions
    same = next(t for t in full.topics if t.contributions == cheap.topics[0].contributions)
    assert cheap.topics[0].label == same.label
    assert len(cheap.topics) > 1
    for topic in cheap.topics[1:]:
        assert topic.label and len(topic.label.split()) <= 3
    assert cheap.unassigned == full.unassigned


def test_every_term_has_its_own_column_counted_as_documented() -> None:
    """The need's stems twice, the solution's once, each neighbouring pair once: the counts
    of every distinct term, each in a column of its own (no hashing: no two terms share)."""
    rng = random.Random(4)
    words = [f"mot{k}" for k in range(40)]
    rows = []
    for k in range(200):
        need = rng.choices(words, k=rng.randint(0, 12))
        solution = rng.choices(words, k=rng.randint(0, 12))
        rows.append((Contribution(f"C{k}", "p", " ".join(need)), need, solution))
    terms = _Terms(rows)
    expected: list[Counter[str]] = []
    for _, need, solution in rows:
        counted = Counter(need + need + solution)
        counted.update(f"{a} {b}" for part in (need, solution) for a, b in pairwise(part))
        expected.append(counted)
    distinct = set().union(*expected)
    counts = terms.counts.toarray()
    assert counts.shape == (len(rows), len(distinct))
    # each column holds one term: its counts in every row
    columns = {tuple(counts[:, j]) for j in range(counts.shape[1])}
    assert columns == {tuple(e[t] for e in expected) for t in distinct}
    assert terms.rows_with("mot3") == {k for k, (_, n, s) in enumerate(rows) if "mot3" in n + s}
    assert terms.rows_with("absent") == set()


def test_the_stemmer_is_snowballs_french_one_in_c() -> None:
    """PyStemmer (C) stems as snowballstemmer's Python French stemmer does: same stems on
    every word of the labelled set, so the topics do not depend on which one runs."""
    assert isinstance(_STEMMER, Stemmer.Stemmer)
    reference = FrenchStemmer()
    words = {
        w
        for i in _labelled()
        for w in re.findall(r"[^\W\d_]+", f"{i['need']} {i['solution']}".casefold())
    }
    assert len(words) > 300
    for word in sorted(words):
        if fold(word) not in STOP and 3 <= len(fold(word)) <= 30:
            assert stem(word) == fold(reference.stemWord(word)), word


def test_the_fallback_label_is_the_most_frequent_words_as_written() -> None:
    """Without YAKE: the three most frequent stems (ties: alphabetical), each in the spelling
    the texts use most (ties: the first met); stop words count for nothing."""
    texts = [
        "Les Urgences, les urgences : l'urgence !",
        "Un médecin, des médecins, deux médecins.",
        "Pharmacie fermée ; zèbre, abeille.",
    ]
    # urgenc x3 (urgences x2), medecin x3 (médecins x2), then 1 each: abeill < ferm < pharmac
    assert _fallback_label(texts) == ["médecins urgences abeille"]
    assert _fallback_label(["Médecin médecins", "médecins Médecin"]) == ["médecin"]
    assert _fallback_label(["le la les", ""]) == ["sans titre"]


def test_a_text_cut_once_gives_its_stems_and_its_phrase_form() -> None:
    """find_topics cuts each need and solution into pieces once: their stems and the phrase
    form of the two together are those of the texts themselves."""
    odd = {"need": "L'Hôpital,  ŒUVRE\tà\n42 rdv!", "solution": ""}
    for item in [*_labelled()[:80], odd]:
        need, solution = item["need"], item["solution"]
        assert stems_of(pieces(need)) == stems(need)
        assert folded_of(pieces(need) + pieces(solution)) == _phrase_form(f"{need} {solution}")
    assert folded_of(pieces("L'Hôpital,  ŒUVRE à 42")) == "l hopital œuvre a"


def test_the_clustering_is_scikit_learns_average_linkage_cut_at_the_threshold() -> None:
    """SciPy's tree, cut strictly below the threshold, groups the rows as scikit-learn's
    ``AgglomerativeClustering`` (average linkage, precomputed cosine distances, the same
    threshold) does, on random sparse vectors of two shapes and three thresholds."""
    from scipy import sparse
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.preprocessing import normalize

    from exporter.topics import TopicSettings, _agglomerate

    def partition(labels: Sequence[int]) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for row, label in enumerate(labels):
            groups.setdefault(int(label), []).append(row)
        return sorted(groups.values())

    rng = np.random.default_rng(7)
    cases = [
        sparse.random(300, 80, density=0.05, random_state=rng, format="csr"),
        sparse.random(120, 15, density=0.2, random_state=rng, format="csr"),
    ]
    nontrivial = 0  # cases where some rows merged and some did not: the cut was tested
    for threshold in (0.5, 0.95, 1.2):
        for matrix in cases:
            vectors = sparse.csr_matrix(normalize(matrix))
            distance = 1.0 - (vectors @ vectors.T).toarray()
            np.clip(distance, 0.0, 2.0, out=distance)
            np.fill_diagonal(distance, 0.0)
            expected = AgglomerativeClustering(
                n_clusters=None,
                metric="precomputed",
                linkage="average",
                distance_threshold=threshold,
            ).fit_predict(distance)
            ours = _agglomerate(vectors, TopicSettings(distance_threshold=threshold))
            assert partition(ours) == partition(expected), threshold
            nontrivial += 1 < len(set(ours.tolist())) < vectors.shape[0]
    assert nontrivial >= 3
