"""The one personal-data detector (dialogs.pii): names after a title, for the citizen's
guidance; the exporter's mask keeps its own narrower rules (tests/exporter/test_export_pii.py)."""

from __future__ import annotations

import pytest

from dialogs.pii import find_personal_data
from exporter.pii import mask

TITLED = [
    ("Le Dr Martin ne prend plus de nouveaux patients", "Martin"),
    ("Mme Durand-Leroy, l'infirmière, part à la retraite", "Durand-Leroy"),
    ("j'ai vu M. Jean Dupont hier", "Jean Dupont"),
    ("depuis le départ du docteur Lemaire en mars", "Lemaire"),
    ("Dr. House", "House"),
    ("Pr Bernard à l'hôpital", "Bernard"),
    ("Mademoiselle Petit", "Petit"),
]


@pytest.mark.parametrize(("text", "name"), TITLED)
def test_a_name_after_a_title_is_found_for_the_guidance_only(text: str, name: str) -> None:
    found = find_personal_data(text, titles=True)
    assert [(text[f.start : f.end], f.kind) for f in found] == [(name, "name")]
    assert find_personal_data(text) == []  # the exporter's rules: left to the moderators
    assert mask(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Madame la ministre doit agir",
        "Monsieur le maire a promis",
        "les MME et les PME",
        "Il faut des médecins, des infirmiers et une CPTS",
        "M. ",
        "Dr",
    ],
)
def test_titles_without_a_name_are_left_alone(text: str) -> None:
    assert find_personal_data(text, titles=True) == []


def test_titles_add_to_the_other_kinds() -> None:
    text = "Appelez le Dr Martin au 06 12 34 56 78"
    kinds = [(text[f.start : f.end], f.kind) for f in find_personal_data(text, titles=True)]
    assert kinds == [("Martin", "name"), ("06 12 34 56 78", "phone")]
