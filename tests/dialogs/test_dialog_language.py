"""Language detection: deterministic, right on real answers, silent on short or odd text."""

from __future__ import annotations

import pytest

from dialogs.language import detect_language

FRENCH = [
    "Il n'y a plus de médecin traitant dans notre village depuis deux ans, il faut faire 30 km.",
    "Ouvrir une maison de santé avec des consultations avancées de spécialistes.",
    "Les urgences sont saturées le week-end, il faudrait une permanence de soins.",
    "Manque de pédiatres : 3 mois d'attente pour un rendez-vous, les parents vont aux urgences.",
    "Pas de dentiste qui accepte les nouveaux patients, même avec la CMU c'est impossible.",
    "Ma mère de 85 ans n'a plus de médecin, personne ne vient à domicile.",
    "Créer un bus santé qui passe dans les villages une fois par semaine avec une infirmière.",
    "Le week-end, le SAMU met 40 minutes à arriver dans notre commune rurale.",
]
ENGLISH = [
    "There has been no family doctor in our village for two years; we must drive 30 km.",
    "Open a health centre with regular visits from specialists and nurses every week.",
    "The emergency department is always full at weekends, we need an out-of-hours service.",
    "No dentist accepts new patients here, even with state health cover it is impossible.",
    "My mother is 85 and has no doctor any more, nobody makes home visits.",
    "Free transport to the hospital for elderly people without a car.",
]
OTHERS = [
    (
        "de",
        "Es gibt in unserem Dorf seit zwei Jahren keinen Hausarzt mehr, wir müssen weit fahren.",
    ),
    (
        "es",
        "No hay médico de cabecera en nuestro pueblo desde hace dos años, hay que conducir lejos.",
    ),
    ("ar", "مرحبا، لا يوجد طبيب في قريتنا منذ عامين وهذا صعب جدا على كبار السن"),
]


def _detect(text: str, interface: str = "fr") -> tuple[str, bool]:
    found = detect_language(text, interface, min_letters=40, min_confidence=0.9)
    return found.lang, found.confident


@pytest.mark.parametrize("text", FRENCH)
def test_french_answers_are_french(text: str) -> None:
    assert _detect(text, "en") == ("fr", True)


@pytest.mark.parametrize("text", ENGLISH)
def test_english_answers_are_english(text: str) -> None:
    assert _detect(text, "fr") == ("en", True)


@pytest.mark.parametrize(("lang", "text"), OTHERS)
def test_other_languages_are_recorded(lang: str, text: str) -> None:
    assert _detect(text) == (lang, True)


@pytest.mark.parametrize(
    ("lang", "text"),
    [("fr", t.upper()) for t in FRENCH]
    + [("en", t.upper()) for t in ENGLISH]
    + [(lang, t.upper()) for lang, t in OTHERS]
    + [
        ("fr", "AMÉLIORER LA PRÉVENTION, LE REPÉRAGE ET LA PRISE EN CHARGE DE LA SANTÉ MENTALE"),
        ("fr", "Il faut plus de médecins à l'HÔPITAL de SAINT-QUENTIN, les URGENCES débordent."),
    ],
)
def test_text_typed_in_capitals_keeps_its_language(lang: str, text: str) -> None:
    """Caps lock on a phone: langdetect skips words in capitals, so without care French
    in capitals came out as German or English (and a language switch was offered)."""
    assert _detect(text, "en" if lang == "fr" else "fr") == (lang, True)


@pytest.mark.parametrize(
    "text", ["non merci", "ok", "merci beaucoup docteur", "12345 67890 !!!", ""]
)
def test_short_or_letterless_text_keeps_the_interface_language(text: str) -> None:
    assert _detect(text, "en") == ("en", False)


def test_deterministic() -> None:
    text = "Les délais pour un ophtalmologiste dépassent un an dans le Cambrésis."
    assert {_detect(text) for _ in range(20)} == {("fr", True)}
