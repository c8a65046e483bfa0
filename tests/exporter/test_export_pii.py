"""The personal-data safety net: what it masks, and what it must leave alone."""

from __future__ import annotations

import itertools

import pytest

from exporter.pii import MASK, Finding, find_personal_data, mask


def _nir(body: str) -> str:
    """``body`` (13 characters, 2A/2B allowed) followed by its valid key."""
    digits = body.replace(" ", "").upper().replace("2A", "19").replace("2B", "18")
    return f"{body} {97 - int(digits) % 97:02d}"


POSITIVES: list[tuple[str, str, str]] = [
    # (text, kind, the exact span expected)
    ("Écrivez-moi à jean.dupont@example.fr svp", "email", "jean.dupont@example.fr"),
    ("contact: a_b+tag@sous.domaine.gouv.fr.", "email", "a_b+tag@sous.domaine.gouv.fr"),
    ("appelez le 06 12 34 56 78 merci", "phone", "06 12 34 56 78"),
    ("tél 06.12.34.56.78", "phone", "06.12.34.56.78"),
    ("tél 06-12-34-56-78", "phone", "06-12-34-56-78"),
    ("tél 0612345678.", "phone", "0612345678"),
    ("mobile +33 6 12 34 56 78", "phone", "+33 6 12 34 56 78"),
    ("mobile +33612345678", "phone", "+33612345678"),
    ("fixe 0033 3 20 12 34 56", "phone", "0033 3 20 12 34 56"),
    ("fixe +33 (0)3 20 12 34 56", "phone", "+33 (0)3 20 12 34 56"),
    (f"mon numéro de sécu {_nir('1 85 05 78 006 084')} voilà", "nir", _nir("1 85 05 78 006 084")),
    (f"NIR {_nir('2 93 12 2A 004 123')}", "nir", _nir("2 93 12 2A 004 123")),
    (f"NIR {_nir('1 70 01 2B 033 007')}", "nir", _nir("1 70 01 2B 033 007")),
    ("sécu 2931259350123", "nir", "2931259350123"),
    ("IBAN FR76 3000 6000 0112 3456 7890 189 merci", "iban", "FR76 3000 6000 0112 3456 7890 189"),
    ("iban FR7630006000011234567890189", "iban", "FR7630006000011234567890189"),
    ("compte GB82 WEST 1234 5698 7654 32.", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("konto DE89 3704 0044 0532 0130 00", "iban", "DE89 3704 0044 0532 0130 00"),
    ("J'habite au 12 rue de la Paix à Lille", "address", "12 rue de la Paix"),
    ("au 3 bis avenue Jean-Baptiste Lebas", "address", "3 bis avenue Jean-Baptiste Lebas"),
    ("12, boulevard Victor Hugo 59000 Lille", "address", "12, boulevard Victor Hugo 59000 Lille"),
    ("5 bd Carnot", "address", "5 bd Carnot"),
    ("7 chemin des Dames", "address", "7 chemin des Dames"),
    ("40 impasse du Moulin", "address", "40 impasse du Moulin"),
    ("2 allée des Tilleuls", "address", "2 allée des Tilleuls"),
    ("1 place de la Gare", "address", "1 place de la Gare"),
    ("12 rue de la paix et je", "address", "12 rue de la paix"),
    ("Je m'appelle Jean Dupont et j'habite ici", "name", "Jean Dupont"),
    ("je m’appelle marie et je suis malade", "name", "marie"),
    ("Mon nom est Durand-Martin.", "name", "Durand-Martin"),
    ("Hello, my name is John Smith, I live here", "name", "John Smith"),
    ("Bonjour, je suis Mme Durand.", "name", "Durand"),
    ("je suis M. Léon Blum", "name", "Léon Blum"),
    ("je suis Monsieur Martin", "name", "Martin"),
]


@pytest.mark.parametrize(("text", "kind", "span"), POSITIVES)
def test_finds_personal_data(text: str, kind: str, span: str) -> None:
    findings = find_personal_data(text)
    assert [(text[f.start : f.end], f.kind) for f in findings] == [(span, kind)]
    assert mask(text) == text.replace(span, MASK, 1)


NEGATIVES = [
    "Rendez-vous le 12/03/2022 à 8h30",
    "le 01.02.2022 puis le 2022-11-30",
    "code postal 59000, ou 62100 Calais",
    "en 2022 et 2023, puis en 1999",
    "1 500 € par an, 25,00 euros, 1 200 000 €",
    "10 000 habitants et 0,5 % de la population",
    "3 places en crèche, 2 chemins possibles, 4 routes barrées",
    "Il faut 2 médecins de plus et 15 infirmiers",
    "le numéro 15 ou le 112, le 116 117 la nuit",
    "SIRET 123 456 789 00012",  # 14 digits, not a NIR
    "FR76 3000 6000 0112 3456 7890 188",  # IBAN with a wrong checksum
    f"{_nir('1 85 05 78 006 084')[:-2]}00",  # NIR with a wrong key
    "Je suis infirmière et je m'occupe de patients",
    "je suis malade depuis 3 ans",
    "email: pas d'adresse @ ici",
    "version 1.2.3.4 du logiciel",
    "ratio 1/1000 ; 2h ; 35h par semaine ; 50 km",
    "",
    "   ",
    "🙂🙂🙂",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert find_personal_data(text) == []
    assert mask(text) == text


def test_several_findings_are_masked_in_order_without_overlap() -> None:
    text = (
        "Je m'appelle Paul Martin, 12 rue de la Paix 59000 Lille, tel 06 12 34 56 78, "
        "paul@example.org, IBAN FR7630006000011234567890189."
    )
    findings = find_personal_data(text)
    assert [f.kind for f in findings] == ["name", "address", "phone", "email", "iban"]
    for a, b in itertools.pairwise(findings):
        assert a.end <= b.start
    masked = mask(text)
    assert masked == (f"Je m'appelle {MASK}, {MASK}, tel {MASK}, {MASK}, IBAN {MASK}.")
    assert "Martin" not in masked and "06 12" not in masked


@pytest.mark.parametrize(
    "text",
    [
        "a" * 5000,
        "1 " * 2500,
        "rue " * 1250,
        "je m'appelle " * 400,
        "0" * 5000,
        "x\x00y 06 12 34 56 78",
        "\u202eمرحبا 06 12 34 56 78",
        "zero\u200bwidth jean@example.fr",
        "<script>alert(1)</script>'; DROP TABLE contributions; --",
    ],
)
def test_hostile_input_is_handled(text: str) -> None:
    findings = find_personal_data(text)
    assert all(isinstance(f, Finding) and 0 <= f.start < f.end <= len(text) for f in findings)
    masked = mask(text)
    for needle in ("06 12 34 56 78", "jean@example.fr"):
        assert needle not in masked
