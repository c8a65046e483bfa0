"""Near-duplicate grouping: French-aware normalisation, threshold, determinism, scale guard."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter

import pytest

from exporter import similarity
from exporter.similarity import _STOP_WORDS, Group, group_similar, normalise


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Il n'y a plus de médecin traitant dans mon village.",
            "PLUS DE MEDECIN TRAITANT DANS MON VILLAGE !!!",
        ),
        ("Les urgences sont saturées le week-end", "urgences saturées, le week end..."),
        ("Manque d'orthophonistes pour les enfants", "Manque d’orthophoniste pour les enfants"),
        ("We need more GPs in the village", "need more GPs in village"),
        ("Cœur de la santé : prévention", "coeur de la sante prevention"),
    ],
)
def test_variants_normalise_alike_and_group(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)
    groups = group_similar([("R2", b), ("R1", a)], 0.82)
    assert groups == [Group(a, "R1", ("R2",))]


def test_small_differences_group_and_different_needs_do_not() -> None:
    entries = [
        ("HDF-OISE-000001", "Pas de pédiatre à moins de 40 km de Beauvais."),
        ("HDF-OISE-000002", "Pas de pédiatres à moins de 40 kilomètres de Beauvais"),
        ("HDF-OISE-000003", "Les urgences de Creil ferment la nuit."),
        ("HDF-OISE-000004", "Pas de dentiste à Clermont."),
    ]
    groups = group_similar(entries, 0.82)
    assert groups[0] == Group(entries[0][1], "HDF-OISE-000001", ("HDF-OISE-000002",))
    assert [g.reference for g in groups[1:]] == ["HDF-OISE-000003", "HDF-OISE-000004"]
    assert all(g.similar == () for g in groups[1:])


def test_a_short_text_does_not_swallow_longer_ones() -> None:
    entries = [
        ("R1", "Manque de médecins."),
        ("R2", "Manque de médecins la nuit et le week-end dans tout le Clermontois."),
    ]
    assert [g.similar for g in group_similar(entries, 0.82)] == [(), ()]


def test_threshold_is_honoured() -> None:
    entries = [("R1", "Fermeture de la maternité de Creil"), ("R2", "Fermeture maternité Creil")]
    entries += [("R3", "Fermeture de la maternité de Senlis")]
    assert [len(g.similar) for g in group_similar(entries, 0.82)] == [1, 0]
    assert [len(g.similar) for g in group_similar(entries, 0.5)] == [2]
    assert [len(g.similar) for g in group_similar(entries, 1.0)] == [1, 0]
    higher = group_similar([("R1", "abc déf"), ("R2", "abc def")], 1.01)
    assert [g.similar for g in higher] == [(), ()]


def test_grouping_is_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(7)
    phrases = [
        "Attente de six mois pour un ophtalmologue",
        "Six mois d'attente pour un ophtalmologiste",
        "Pas de transport vers l'hôpital d'Amiens",
        "Aucun transport pour aller à l'hôpital d'Amiens",
        "Il faut une maison de santé à Péronne",
    ]
    entries = [(f"R{i:03d}", rng.choice(phrases)) for i in range(200)]
    first = group_similar(entries, 0.82)
    shuffled = entries[:]
    rng.shuffle(shuffled)
    assert group_similar(shuffled, 0.82) == first
    assert sum(1 + len(g.similar) for g in first) == 200
    sizes = [len(g.similar) for g in first]
    assert sizes == sorted(sizes, reverse=True)
    # a group's leader is its smallest reference
    assert all(g.reference < min(g.similar, default="R999") for g in first)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "🏥🚑", "de la le les", "\x00\x00", "\u202e\u200b", "مرحبا بكم", "a" * 5000],
)
def test_texts_without_significant_words_only_group_with_their_twin(text: str) -> None:
    groups = group_similar([("R1", text), ("R2", text), ("R3", "Autre chose de précis")], 0.82)
    assert Group(text, "R1", ("R2",)) in groups
    assert len(groups) == 2


def test_many_distinct_texts_scale_without_pairwise_comparison() -> None:
    """6,000 distinct texts sharing common words: only rare words select candidates."""
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choice(letters) for _ in range(7)) for _ in range(4000)]
    entries = [
        (
            f"R{i:05d}",
            "les patients attendent un rendez-vous " + " ".join(rng.sample(vocabulary, 6)),
        )
        for i in range(6000)
    ]
    groups = group_similar(entries, 0.82)
    assert sum(1 + len(g.similar) for g in groups) == 6000
    assert len(groups) > 5900


def test_long_near_duplicates_still_group() -> None:
    base = (
        "Depuis le départ à la retraite du docteur Lemaire en mars, plus aucun médecin "
        "généraliste ne consulte à Crèvecœur-le-Grand ; les patients âgés doivent aller jusqu'à "
        "Beauvais ou Breteuil, sans transport en commun, et beaucoup renoncent à se soigner."
    )
    variant = (
        "Depuis le depart en retraite du docteur Lemaire en mars plus aucun medecin generaliste "
        "ne consulte a Crevecoeur-le-Grand, les patients ages doivent aller jusqu'a Beauvais ou "
        "Breteuil sans transports en commun et beaucoup renoncent a se soigner !!"
    )
    other = (
        "Le centre hospitalier de Beauvais manque de sages-femmes et la maternité de Creil a "
        "fermé ses portes la nuit ; les futures mères doivent faire plus d'une heure de route "
        "pour accoucher, ce qui inquiète beaucoup de familles du Clermontois."
    )
    groups = group_similar([("R1", base), ("R2", variant), ("R3", other)], 0.82)
    assert groups == [Group(base, "R1", ("R2",)), Group(other, "R3")]


def _normalise_whole_text(text: str) -> str:
    """The normalisation as first written (the whole text at once), to compare with."""
    folded = re.sub(r"[\W_]+", " ", text.casefold().replace("œ", "oe").replace("æ", "ae"))
    plain = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")
    words = set(plain.split()) - _STOP_WORDS
    return " ".join(sorted({w[:-1] if len(w) > 3 and w[-1] in "sx" else w for w in words}))


def test_normalising_piece_by_piece_is_normalising_the_whole_text() -> None:
    rng = random.Random(11)
    alphabet = (
        "aàâäéèêëîïôöùûüçœæ AÉÈ'’-_.,;:!?0123456789²½ﬁ ǅ ß ﬀ e\u0301 مرحبا 日本 İ ı ſ Ω ⅷ ① "
        "\u00a0\u2002\u200b\x00 ÆŒ s x Σ ς K ﬅ Å ǈ ẞ ᾈ"
    )
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += ["Les hôpitaux d'Amiens ; l’œil du médecin — 2 kinés", "L'ŒUVRE des CŒURS"]
    assert [normalise(t) for t in texts] == [_normalise_whole_text(t) for t in texts]


def test_candidates_counted_by_blocks_give_the_same_groups_as_one_block() -> None:
    """Near-duplicates across a block boundary still meet."""
    rng = random.Random(5)
    words = [f"mot{k}" for k in range(300)]
    base = [" ".join(rng.sample(words, 20)) for _ in range(40)]
    entries = []
    for i in range(600):
        text = rng.choice(base).split()
        text[rng.randrange(len(text))] = rng.choice(words)
        entries.append((f"R{i:04d}", " ".join(text)))
    whole = group_similar(entries, 0.82)
    block = similarity._Candidates.BLOCK
    try:
        similarity._Candidates.BLOCK = 7
        assert group_similar(entries, 0.82) == whole
    finally:
        similarity._Candidates.BLOCK = block
    assert sum(len(g.similar) for g in whole) > 400


def test_a_last_use_takes_the_texts_out_of_the_cache_and_groups_alike() -> None:
    entries = [
        ("R1", "Fermeture de la maternité de Creil"),
        ("R2", "Fermeture maternité Creil"),
        ("R3", "Fermeture de la maternité de Senlis"),
        ("R4", "Fermeture maternité Creil"),
    ]
    cache: dict[str, str] = {}
    first = group_similar(entries[:2], 0.82, cache)
    assert set(cache) == {entries[0][1], entries[1][1]}
    cache["autre"] = normalise("autre")
    assert group_similar(entries, 0.82, cache, last_use=True) == group_similar(entries, 0.82)
    assert set(cache) == {"autre"}
    assert first == [Group(entries[0][1], "R1", ("R2",))]


def _candidates_as_defined(norms: list[str]) -> list[list[int]]:
    """The candidates of :class:`similarity._Candidates`, text by text, as its docstring says."""
    frequency = Counter(w for norm in norms for w in norm.split())
    prefixes = [
        sorted(norm.split(), key=lambda w: (frequency[w], w))[: similarity.RARE_WORDS]
        for norm in norms
    ]
    postings = Counter(w for prefix in prefixes for w in prefix)
    useful = [{w for w in p if 1 < postings[w] <= similarity.MAX_POSTINGS} for p in prefixes]
    need = [2 if len(n.split()) >= similarity.LONG_TEXT_WORDS else 1 for n in norms]
    return [
        [j for j in range(i + 1, len(norms)) if len(useful[i] & useful[j]) >= need[i]]
        for i in range(len(norms))
    ]


def test_candidates_are_counted_once_per_distinct_text_as_defined_text_by_text() -> None:
    """Twins (same normalised text) share their words and prefix: read once, counted as many
    times as there are twins, the candidates are those of the definition."""
    rng = random.Random(8)
    words = [f"mot{k}" for k in range(60)]
    distinct = [" ".join(sorted(set(rng.sample(words, rng.randint(1, 24))))) for _ in range(80)]
    norms = [rng.choice(distinct) for _ in range(400)] + [""] * 5
    rng.shuffle(norms)
    found = similarity._Candidates(norms)
    assert [sorted(found.of(i)) for i in range(len(norms))] == _candidates_as_defined(norms)
