"""The one personal-data detector (dialogs.pii): names after a title, for the citizen's
guidance; the exporter's mask keeps its own narrower rules (tests/exporter/test_export_pii.py)."""

from __future__ import annotations

import itertools
import re

import pytest

from dialogs.pii import _maybe_personal, find_personal_data
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


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Je m'appelle\nJean Dupont", "Jean Dupont"),
        ("JE M’APPELLE Jean", "Jean"),
        ("je m’appelle Jean", "Jean"),
        ("I\tam Mr Smith", "Smith"),
        ("I AM DR Who", "Who"),
        ("MON  NOM\tEST Durand", "Durand"),
        ("My NAME\nIS Bob", "Bob"),
        ("MOI C’EST Paul qui écrit", "Paul"),
        ("moi\tc'est Paul", "Paul"),
        ("je\u00a0suis Mme Petit", "Petit"),
        ("Je\u2003Suis monsieur Leroy", "Leroy"),
        ("Moi c’est Inès", "Inès"),
    ],
)
def test_name_phrases_pass_the_first_look_whatever_their_case_and_spaces(
    text: str, name: str
) -> None:
    # the cheap first look (substrings of the case-folded text) lets every phrase through
    found = find_personal_data(text)
    assert [(text[f.start : f.end], f.kind) for f in found] == [(name, "name")]


@pytest.mark.parametrize(
    "text",
    ["", "Ⅰ", "١٢٣ rue de la Paix", "＠", "am", "iam", "nomest", "suis", "name", "appel"],
)
def test_texts_without_a_digit_an_at_or_a_name_phrase_are_left_alone(text: str) -> None:
    assert find_personal_data(text) == []


def test_the_first_look_agrees_with_the_patterns_it_stands_for() -> None:
    # _maybe_personal stands for: re.search(r"[0-9@]", text) or re.search(r"appelle|nom\s+est
    # |name\s+is|c['’]est|je\s+suis|i\s+am", text.casefold()); the same on hostile texts
    chars = re.compile(r"[0-9@]")
    names = re.compile(r"appelle|nom\s+est|name\s+is|c['’]est|je\s+suis|i\s+am")
    spaces = [" ", "\t", "\n", "\u00a0", "\u2003", "\x1c", "  ", ""]
    phrases = ["je suis", "i am", "nom est", "name is", "c'est", "c’est", "appelle", "IŞ"]
    texts = [
        f"x{p.replace(' ', s)}y".upper() if upper else f"x{p.replace(' ', s)}y"
        for p, s, upper in itertools.product(phrases, spaces, [False, True])
    ]
    texts += ["name iß", "NAME ISS", "je ſuis", "İ am", "ı am", "c‘est", "٣", "０", "a@b"]
    texts += [chr(cp) + tail for cp in range(0x3000) for tail in ("am", "")]
    for text in texts:
        expected = bool(chars.search(text) or names.search(text.casefold()))
        assert _maybe_personal(text) is expected, text
