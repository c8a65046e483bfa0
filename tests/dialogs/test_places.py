"""Places typed at the territory step: postal codes, departments, communes, territories."""

from __future__ import annotations

import pytest

from dialogs.model import CampaignView
from dialogs.places import (
    DEPARTMENTS,
    MAX_INPUT_CHARS,
    PlaceMatch,
    department_of_postal_code,
    fold,
    resolve,
)
from storage.campaign_file import builtin_campaign_path, read_campaign_file

HDF = read_campaign_file(builtin_campaign_path("hauts-de-france-2022")).to_view()
FRANCE = read_campaign_file(builtin_campaign_path("france-departements")).to_view()
CAMPAIGNS = {"hdf": HDF, "france": FRANCE}

NORD_TAS = ("ARTOIS-DOUAISIS", "HAINAUT", "METROPOLE-FLANDRES", "LITTORAL-NORD")
PAS_DE_CALAIS_TAS = ("ARTOIS-DOUAISIS", "SOMME-LITTORAL-SUD", "LITTORAL-NORD")
SOMME_TAS = ("SOMME-LITTORAL-SUD", "AISNE-HAUTE-SOMME")


def test_101_departments() -> None:
    assert len(DEPARTMENTS) == 101
    assert DEPARTMENTS["2A"] == "Corse-du-Sud"
    assert DEPARTMENTS["974"] == "La Réunion"
    assert "20" not in DEPARTMENTS
    assert "975" not in DEPARTMENTS


@pytest.mark.parametrize(
    ("code", "department"),
    [
        ("59000", "59"),
        ("01000", "01"),
        ("95000", "95"),
        ("20000", "2A"),
        ("20090", "2A"),
        ("20199", "2A"),
        ("20200", "2B"),
        ("20600", "2B"),
        ("20999", "2B"),
        ("2A004", "2A"),
        ("2b033", "2B"),
        ("97100", "971"),
        ("97200", "972"),
        ("97300", "973"),
        ("97400", "974"),
        ("97600", "976"),
        ("59 000", "59"),
        # not departments, or impossible
        ("97500", None),  # Saint-Pierre-et-Miquelon
        ("97133", None),  # Saint-Barthélemy
        ("97150", None),  # Saint-Martin
        ("98000", None),  # Monaco
        ("98800", None),  # Nouvelle-Calédonie
        ("97700", None),
        ("96000", None),
        ("00000", None),
        ("99999", None),
        ("2C004", None),
        ("5900", None),
        ("590000", None),
        ("ABCDE", None),
        ("", None),
        ("５９０００", None),  # full-width digits are not a postal code here
    ],
)
def test_department_of_postal_code(code: str, department: str | None) -> None:
    assert department_of_postal_code(code) == department


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Béthune", "bethune"),
        ("  PAS-DE-CALAIS ", "pas de calais"),
        ("L'Oise", "oise"),
        ("l’Oise", "oise"),
        ("St-Omer", "saint omer"),
        ("Œuf", "oeuf"),
        ("la", "la"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


# campaign, typed text, expected status, expected territories, expected label (None: any)
CASES: list[tuple[str, str, str, tuple[str, ...], str | None]] = [
    # postal codes settled by the communes the campaign lists
    ("hdf", "59000", "one", ("METROPOLE-FLANDRES",), "Lille (59000)"),
    ("hdf", "59800", "one", ("METROPOLE-FLANDRES",), "Lille (59800)"),
    ("hdf", "59 000", "one", ("METROPOLE-FLANDRES",), "Lille (59000)"),
    ("hdf", "59140", "one", ("LITTORAL-NORD",), "Dunkerque (59140)"),
    ("hdf", "59300", "one", ("HAINAUT",), "Valenciennes (59300)"),
    ("hdf", "59500", "one", ("ARTOIS-DOUAISIS",), "Douai (59500)"),
    ("hdf", "62100", "one", ("LITTORAL-NORD",), "Calais (62100)"),
    ("hdf", "62600", "one", ("SOMME-LITTORAL-SUD",), "Berck (62600)"),
    ("hdf", "80200", "one", ("AISNE-HAUTE-SOMME",), "Péronne (80200)"),
    ("hdf", "80000", "one", ("SOMME-LITTORAL-SUD",), "Amiens (80000)"),
    # postal codes settled by a whole department
    ("hdf", "60200", "one", ("OISE",), None),
    ("hdf", "60999", "one", ("OISE",), "60999 (Oise)"),
    ("hdf", "02190", "one", ("AISNE-HAUTE-SOMME",), "02190 (Aisne)"),
    ("hdf", "02500", "one", ("AISNE-HAUTE-SOMME",), "Hirson (02500)"),
    # postal codes of a split department not listed: the candidates
    ("hdf", "59999", "several", NORD_TAS, "59999 (Nord)"),
    ("hdf", "62999", "several", PAS_DE_CALAIS_TAS, "62999 (Pas-de-Calais)"),
    ("hdf", "80999", "several", SOMME_TAS, "80999 (Somme)"),
    # departments
    ("hdf", "59", "several", NORD_TAS, "Nord (59)"),
    ("hdf", "Nord", "several", NORD_TAS, "Nord (59)"),
    ("hdf", "nord", "several", NORD_TAS, "Nord (59)"),
    ("hdf", "pas de calais", "several", PAS_DE_CALAIS_TAS, "Pas-de-Calais (62)"),
    ("hdf", "Pas-de-Calais", "several", PAS_DE_CALAIS_TAS, "Pas-de-Calais (62)"),
    ("hdf", "62", "several", PAS_DE_CALAIS_TAS, "Pas-de-Calais (62)"),
    ("hdf", "somme", "several", SOMME_TAS, "Somme (80)"),
    ("hdf", "la Somme", "several", SOMME_TAS, "Somme (80)"),
    ("hdf", "02", "one", ("AISNE-HAUTE-SOMME",), "Aisne (02)"),
    ("hdf", "Aisne", "one", ("AISNE-HAUTE-SOMME",), "Aisne (02)"),
    ("hdf", "60", "one", ("OISE",), "Oise (60)"),
    # communes listed by the campaign
    ("hdf", "bethune", "one", ("ARTOIS-DOUAISIS",), "Béthune"),
    ("hdf", "BÉTHUNE", "one", ("ARTOIS-DOUAISIS",), "Béthune"),
    ("hdf", "Lille", "one", ("METROPOLE-FLANDRES",), "Lille"),
    ("hdf", "boulogne sur mer", "one", ("LITTORAL-NORD",), "Boulogne-sur-Mer"),
    ("hdf", "St Omer", "one", ("LITTORAL-NORD",), "Saint-Omer"),
    ("hdf", "chateau-thierry", "one", ("AISNE-HAUTE-SOMME",), "Château-Thierry"),
    ("hdf", "henin beaumont", "one", ("ARTOIS-DOUAISIS",), "Hénin-Beaumont"),
    ("hdf", "armentieres", "one", ("METROPOLE-FLANDRES",), "Armentières"),
    ("hdf", "59000 Lille", "one", ("METROPOLE-FLANDRES",), "Lille (59000)"),
    # territories, by name or code
    ("hdf", "oise", "one", ("OISE",), "Oise"),
    ("hdf", "littoral nord", "one", ("LITTORAL-NORD",), "Littoral Nord"),
    ("hdf", "Métropole - Flandres", "one", ("METROPOLE-FLANDRES",), "Métropole-Flandres"),
    ("hdf", "metropole flandres", "one", ("METROPOLE-FLANDRES",), "Métropole-Flandres"),
    ("hdf", "HAINAUT", "one", ("HAINAUT",), "Hainaut"),
    ("hdf", "SOMME-LITTORAL-SUD", "one", ("SOMME-LITTORAL-SUD",), "Somme Littoral Sud"),
    # outside the campaign
    ("hdf", "75001", "outside", (), "75001 (Paris)"),
    ("hdf", "Paris", "outside", (), "Paris (75)"),
    ("hdf", "75", "outside", (), "Paris (75)"),
    ("hdf", "2A004", "outside", (), "2A004 (Corse-du-Sud)"),
    ("hdf", "97400", "outside", (), "97400 (La Réunion)"),
    ("hdf", "97500", "outside", (), "Saint-Pierre-et-Miquelon (97500)"),
    ("hdf", "98000", "outside", (), "Monaco (98000)"),
    # the 101 departments
    ("france", "2A004", "one", ("D2A",), "2A004 (Corse-du-Sud)"),
    ("france", "2B033", "one", ("D2B",), "2B033 (Haute-Corse)"),
    ("france", "20000", "one", ("D2A",), "20000 (Corse-du-Sud)"),
    ("france", "20200", "one", ("D2B",), "20200 (Haute-Corse)"),
    ("france", "2A", "one", ("D2A",), "Corse-du-Sud (2A)"),
    ("france", "corse", "several", ("D2A", "D2B"), None),
    ("france", "97400", "one", ("D974",), "97400 (La Réunion)"),
    ("france", "la réunion", "one", ("D974",), "La Réunion"),
    ("france", "reunion", "one", ("D974",), "La Réunion"),
    ("france", "974", "one", ("D974",), "La Réunion (974)"),
    ("france", "97600", "one", ("D976",), "97600 (Mayotte)"),
    ("france", "97133", "outside", (), "Saint-Barthélemy (97133)"),
    ("france", "97150", "outside", (), "Saint-Martin (97150)"),
    ("france", "975", "outside", (), "Saint-Pierre-et-Miquelon (975)"),
    ("france", "Nouvelle-Calédonie", "outside", (), "Nouvelle-Calédonie"),
    ("france", "75001", "one", ("D75",), "75001 (Paris)"),
    ("france", "59", "one", ("D59",), "Nord (59)"),
    ("france", "nord", "one", ("D59",), "Nord"),
    ("france", "cotes d'armor", "one", ("D22",), "Côtes-d'Armor"),
    ("france", "val d'oise", "one", ("D95",), "Val-d'Oise"),
    ("france", "D971", "one", ("D971",), "Guadeloupe"),
    ("france", "bethune", "unknown", (), ""),  # no commune listed in this campaign
    # unknown
    ("hdf", "00000", "unknown", (), ""),
    ("hdf", "99999", "unknown", (), ""),
    ("hdf", "ABCDE", "unknown", (), ""),
    ("hdf", "96", "unknown", (), ""),
    ("hdf", "20", "unknown", (), ""),
    ("hdf", "5", "unknown", (), ""),
    ("hdf", "Atlantis", "unknown", (), ""),
    ("hdf", "59000 62000", "unknown", (), ""),
    ("france", "00000", "unknown", (), ""),
]


@pytest.mark.parametrize(
    ("campaign", "text", "status", "territories", "label"),
    CASES,
    ids=[f"{c[0]}:{c[1]}" for c in CASES],
)
def test_resolve(
    campaign: str, text: str, status: str, territories: tuple[str, ...], label: str | None
) -> None:
    match = resolve(text, CAMPAIGNS[campaign])
    assert match.status == status, match
    assert match.territories == territories, match
    if label is not None:
        assert match.label == label, match


def test_every_listed_postal_code_and_commune_resolves_to_its_territory() -> None:
    for territory in HDF.territories:
        for commune in territory.communes:
            assert resolve(commune.name, HDF) == PlaceMatch("one", (territory.code,), commune.name)
            for code in commune.postal_codes:
                assert resolve(code, HDF).territories == (territory.code,), code


def test_every_department_resolves_in_france_by_number_and_name() -> None:
    for code, name in DEPARTMENTS.items():
        assert resolve(code, FRANCE).territories == (f"D{code}",), code
        assert resolve(name, FRANCE).territories == (f"D{code}",), name
        assert resolve(name.upper(), FRANCE).territories == (f"D{code}",), name


def test_a_postal_code_shared_by_two_territories_offers_both() -> None:
    shared = _with_commune(HDF, "HAINAUT", "Lille-bis", ("59000",))
    match = resolve("59000", shared)
    assert match.status == "several"
    assert match.territories == ("HAINAUT", "METROPOLE-FLANDRES")


def _with_commune(
    campaign: CampaignView, code: str, name: str, postal: tuple[str, ...]
) -> CampaignView:
    from dataclasses import replace

    from dialogs.model import Commune

    territories = tuple(
        replace(t, communes=(Commune(name, postal), *t.communes)) if t.code == code else t
        for t in campaign.territories
    )
    return replace(campaign, territories=territories)


HOSTILE = [
    "",
    " ",
    "\t\n\r",
    "x" * 5000,
    "5" * 5000,
    "59000" * 1000,
    "\x00",
    "59\x00000",
    "\x00" * 300,
    "😀",
    "😀" * 2000,
    "🇫🇷 59",
    "\u202e\u202d",
    "\u200b\u200c\u200d\ufeff",
    "ليل",
    "עברית",
    "59000; DROP TABLE contributions; --",
    "'; DROP TABLE territories; --",
    "<script>alert('59000')</script>",
    "{{ 7*7 }}",
    "%s%s%s%n",
    "\ud800",  # lone surrogate
    "١٢٣٤٥",  # Arabic-Indic digits
    "Ⅻ",
    "ǅ",
    "\u0301\u0301\u0301",
    "-" * 200,
    "'" * 201,
    "2A" * 100,
    "la la la la",
    "59000\n62000",
    None,
    12345,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("campaign", ["hdf", "france"])
def test_hostile_input_never_raises(text: object, campaign: str) -> None:
    match = resolve(text, CAMPAIGNS[campaign])  # type: ignore[arg-type]
    assert match.status in ("one", "several", "outside", "unknown")
    if match.status == "unknown":
        assert match.territories == ()
        assert match.label == ""


@pytest.mark.parametrize(
    ("text", "territories"),
    [
        ("59000; DROP TABLE contributions; --", ("METROPOLE-FLANDRES",)),
        ("\u202e59000", ("METROPOLE-FLANDRES",)),
        ("\u200bLille\u200b", ("METROPOLE-FLANDRES",)),
        ("Lil\x00le", ("METROPOLE-FLANDRES",)),
        ("５９０００", ("METROPOLE-FLANDRES",)),  # full-width digits: NFKC makes them ASCII
    ],
)
def test_hostile_input_with_a_place_in_it(text: str, territories: tuple[str, ...]) -> None:
    assert resolve(text, HDF).territories == territories


def test_long_input_is_unknown_even_with_a_place_in_it() -> None:
    assert resolve("Lille " + " " * MAX_INPUT_CHARS, HDF).status == "one"  # spaces collapse
    assert resolve("Lille " + "x " * MAX_INPUT_CHARS, HDF).status == "unknown"
    assert resolve("59000 " + "a" * MAX_INPUT_CHARS, HDF).status == "unknown"
