"""Campaign files: the shipped ones load; every kind of invalid file is refused with an error
naming the file, the line and the field."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dialogs.places import DEPARTMENTS
from storage.campaign_file import (
    CAMPAIGNS_DIR,
    SHORT_LABEL_MAX,
    CampaignFileError,
    builtin_campaign_path,
    builtin_campaigns,
    parse_campaign_text,
    read_campaign_file,
)

ANNEX_THEMES = {
    1: "Donner à tous un accès à un médecin traitant ou à une équipe traitante, en particulier"
    " pour nos concitoyens les plus fragiles, et accompagner l'exercice coordonné",
    2: "Garantir la continuité des soins et la réponse aux besoins de soins non programmés",
    3: "Mobiliser les leviers territoriaux d'attractivité pour les métiers de la santé",
    4: "Créer une nouvelle alliance entre les acteurs locaux pour que la prévention entre dans le"
    " quotidien des Français",
}

# A small valid campaign; the tests below break one thing at a time.
VALID = """\
[campaign]
code = "TEST-2022"
ref_prefix = "TST"
name = "Test campaign"
region = "Test region"
opens_on = 2022-11-14
closes_on = 2022-12-31

[[territories]]
code = "NORD-A"
name = "Nord A"
departments = ["59"]
communes = [
  { name = "Lille", postal_codes = ["59000", "59800"] },
]

[[territories]]
code = "MIXTE"
name = "Mixte"
departments = ["62", "80"]

[[themes]]
number = 1
label_fr = "Un"
label_en = "One"

[[themes]]
number = 2
label_fr = "Deux"
label_en = "Two"

[[themes]]
number = 3
label_fr = "Trois"
label_en = "Three"

[[themes]]
number = 4
label_fr = "Quatre"
label_en = "Four"

[supplementary]
allow_free_text = true

[[supplementary.themes]]
code = "EXTRA"
label_fr = "En plus"
label_en = "Extra"

[[profiles]]
code = "usager"
label_fr = "Usager"
label_en = "User"
"""


def line_of(text: str, fragment: str, nth: int = 0) -> int:
    """1-based line number of the ``nth`` line containing ``fragment``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if fragment in line]
    assert len(hits) > nth, f"{fragment!r} not in the test text"
    return hits[nth]


def replace(old: str, new: str, count: int = 1) -> str:
    assert VALID.count(old) >= count, old
    return VALID.replace(old, new, count)


def error_of(text: str, source: str = "test.toml") -> CampaignFileError:
    with pytest.raises(CampaignFileError) as info:
        parse_campaign_text(text, source)
    return info.value


# --- the shipped files ---------------------------------------------------------------------


def test_shipped_files_are_listed() -> None:
    assert builtin_campaigns() == ["france-departements.toml", "hauts-de-france-2022.toml"]


def test_hauts_de_france_loads_with_the_seed_data() -> None:
    spec = read_campaign_file(builtin_campaign_path("hauts-de-france-2022"))
    assert spec.campaign.code == "HDF-2022"
    assert spec.campaign.ref_prefix == "HDF"
    assert spec.campaign.opens_on == date(2022, 11, 14)
    assert spec.campaign.closes_on == date(2022, 12, 31)
    assert [t.code for t in spec.territories] == [
        "ARTOIS-DOUAISIS",
        "OISE",
        "SOMME-LITTORAL-SUD",
        "HAINAUT",
        "METROPOLE-FLANDRES",
        "AISNE-HAUTE-SOMME",
        "LITTORAL-NORD",
    ]
    assert {t.number: t.label_fr for t in spec.themes} == ANNEX_THEMES
    assert len(spec.supplementary.themes) == 8
    assert spec.supplementary.allow_free_text
    labels = [e.label_fr for e in spec.supplementary.themes]
    assert (
        "Améliorer la prévention, le repérage et la prise en charge de la santé mentale" in labels
    )
    assert all(label[0].isupper() and not label.isupper() for label in labels)  # sentence case
    assert {p.code for p in spec.profiles} >= {"usager", "proche-aidant", "pro-sante", "autre"}
    view = spec.to_view()
    assert [t.code for t in view.themes] == ["1", "2", "3", "4", "5"]
    for theme in (*view.themes, *view.extra_themes):
        for lang in ("fr", "en"):
            assert 0 < len(theme.short(lang)) <= SHORT_LABEL_MAX, theme


def test_hauts_de_france_communes_are_in_their_territory_departments() -> None:
    spec = read_campaign_file(CAMPAIGNS_DIR / "hauts-de-france-2022.toml")
    communes = {c.name: t.code for t in spec.territories for c in t.communes}
    assert communes["Lille"] == "METROPOLE-FLANDRES"
    assert communes["Dunkerque"] == "LITTORAL-NORD"
    assert communes["Valenciennes"] == "HAINAUT"
    assert communes["Douai"] == "ARTOIS-DOUAISIS"
    assert communes["Berck"] == "SOMME-LITTORAL-SUD"
    assert communes["Péronne"] == "AISNE-HAUTE-SOMME"
    assert communes["Chantilly"] == "OISE"


def test_france_departements_has_the_101_departments() -> None:
    spec = read_campaign_file(builtin_campaign_path("france-departements.toml"))
    assert len(spec.territories) == 101
    assert {t.departments[0]: t.name for t in spec.territories} == DEPARTMENTS
    assert all(t.code == "D" + t.departments[0] for t in spec.territories)
    assert {t.number: t.label_fr for t in spec.themes} == ANNEX_THEMES
    assert spec.supplementary.themes == []


@pytest.mark.parametrize("name", ["nope", "../settings.py", "", "/etc/passwd", "a\x00b"])
def test_unknown_builtin_name_lists_the_available_files(name: str) -> None:
    with pytest.raises(CampaignFileError) as info:
        builtin_campaign_path(name)
    assert "hauts-de-france-2022" in str(info.value)


# --- invalid files -------------------------------------------------------------------------


def test_the_test_template_is_valid() -> None:
    assert parse_campaign_text(VALID, "ok.toml").campaign.code == "TEST-2022"


@pytest.mark.parametrize(
    ("text", "path", "line_fragment", "words"),
    [
        pytest.param(
            replace('name = "Test campaign"\n', ""),
            "campaign.name",
            "[campaign]",
            "missing",
            id="missing-field",
        ),
        pytest.param(
            replace('code = "MIXTE"\nname = "Mixte"\n', 'code = "MIXTE"\n'),
            "territories[1].name",
            'code = "MIXTE"',  # the [[territories]] header is the line above
            "missing",
            id="missing-field-in-array-table",
        ),
        pytest.param(
            replace("number = 3", 'number = "three"'),
            "themes[2].number",
            'number = "three"',
            "'three'",
            id="wrong-type",
        ),
        pytest.param(
            replace('departments = ["59"]', 'departments = "59"'),
            "territories[0].departments",
            'departments = "59"',
            "list",
            id="wrong-type-list",
        ),
        pytest.param(
            replace("opens_on = 2022-11-14", 'opens_on = "2022-02-30"'),
            "campaign.opens_on",
            "opens_on",
            "date",
            id="bad-date",
        ),
        pytest.param(
            replace("closes_on = 2022-12-31", "closes_on = 2022-11-01"),
            "campaign.closes_on",
            "closes_on",
            "before the opening date",
            id="closes-before-opens",
        ),
        pytest.param(
            replace('code = "MIXTE"', 'code = "NORD-A"'),
            "territories[1].code",
            ('code = "NORD-A"', 1),
            "repeated",
            id="duplicate-territory-code",
        ),
        pytest.param(
            replace('[[themes]]\nnumber = 4\nlabel_fr = "Quatre"\nlabel_en = "Four"\n', ""),
            "themes",
            "[[themes]]",  # the first one
            "at least 4",
            id="three-themes",
        ),
        pytest.param(
            replace("number = 4", "number = 3"),
            "themes[3].number",
            ("number = 3", 1),
            "repeated",
            id="duplicate-theme-number",
        ),
        pytest.param(
            replace("number = 4", "number = 5"),
            "themes[3].number",
            "number = 5",
            "less than or equal to 4",
            id="theme-number-5",
        ),
        pytest.param(
            replace('departments = ["62", "80"]', 'departments = ["62", "20"]'),
            "territories[1].departments[1]",
            'departments = ["62", "20"]',
            "not a French department",
            id="bad-department-corsica-20",
        ),
        pytest.param(
            replace('departments = ["62", "80"]', 'departments = [\n  "62",\n  "975",\n]'),
            "territories[1].departments[1]",
            '"975"',
            "not a French department",
            id="bad-department-multiline",
        ),
        pytest.param(
            replace('departments = ["62", "80"]', "departments = [62, 80]"),
            "territories[1].departments[0]",
            "departments = [62, 80]",
            'write it in quotes, "62"',
            id="department-as-number",
        ),
        pytest.param(
            replace('postal_codes = ["59000", "59800"]', 'postal_codes = ["59000", "62000"]'),
            "territories[0].communes[0].postal_codes[1]",
            '"62000"',
            "not among this territory's departments",
            id="postal-code-other-department",
        ),
        pytest.param(
            replace('postal_codes = ["59000", "59800"]', 'postal_codes = ["5900"]'),
            "territories[0].communes[0].postal_codes[0]",
            '"5900"',
            "not a French postal code",
            id="postal-code-too-short",
        ),
        pytest.param(
            replace('region = "Test region"', 'region = "Test region"\nregoin = "typo"'),
            "campaign.regoin",
            "regoin",
            "unknown field",
            id="unknown-key",
        ),
        pytest.param(
            replace("[[profiles]]", "[[profils]]"),
            "profils",
            "[[profils]]",
            "unknown field",
            id="unknown-table",
        ),
        pytest.param(
            replace('label_fr = "Usager"\n', ""),
            "profiles[0].label_fr",
            "[[profiles]]",
            "missing",
            id="profile-missing-label",
        ),
        pytest.param(
            replace('code = "EXTRA"', 'code = "EXTRA"\nshort_fr = "' + "x" * 31 + '"'),
            "supplementary.themes[0].short_fr",
            "short_fr",
            "at most 30",
            id="short-label-too-long",
        ),
        pytest.param(
            replace(
                '[[supplementary.themes]]\ncode = "EXTRA"', '[[supplementary.themes]]\ncode = "5"'
            ),
            "supplementary.themes[0].code",
            'code = "5"',
            "must not be a number",
            id="extra-theme-code-number",
        ),
        pytest.param(
            replace(
                'label_en = "Extra"\n',
                'label_en = "Extra"\n\n[[supplementary.themes]]\ncode = "EXTRA"\n'
                'label_fr = "Encore"\nlabel_en = "Again"\n',
            ),
            "supplementary.themes[1].code",
            ('code = "EXTRA"', 1),
            "repeated",
            id="duplicate-extra-theme",
        ),
        pytest.param(
            replace('code = "TEST-2022"', 'code = "test 2022"'),
            "campaign.code",
            'code = "test 2022"',
            "pattern",
            id="bad-code-pattern",
        ),
        pytest.param(
            replace('region = "Test region"', 'region = "Test region"\ntimezone = "Mars/Olympus"'),
            "campaign.timezone",
            "timezone",
            "unknown time zone",
            id="bad-timezone",
        ),
    ],
)
def test_invalid_file_names_line_and_field(
    text: str, path: str, line_fragment: str | tuple[str, int], words: str
) -> None:
    err = error_of(text)
    fragment, nth = line_fragment if isinstance(line_fragment, tuple) else (line_fragment, 0)
    expected_line = line_of(text, fragment, nth)
    if path == "territories[1].name":
        expected_line -= 1  # the [[territories]] header
    assert err.path == path, str(err)
    assert err.line == expected_line, str(err)
    message = str(err)
    assert message.startswith("test.toml"), message
    assert f"test.toml, line {expected_line}, {path}: " in message
    assert words in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(VALID.replace("number = 2", "number = 2 2"), "number = 2 2", id="bad-value"),
        pytest.param(
            VALID.replace('name = "Nord A"', 'name = "Nord A'), 'name = "Nord A', id="unclosed"
        ),
        pytest.param(
            VALID.replace("opens_on = 2022-11-14", "opens_on = 2022-02-30"), "opens_on", id="date"
        ),
        pytest.param(
            VALID.replace("[[themes]]", "[[themes]", 1), "[[themes]", id="unclosed-header"
        ),
        pytest.param(
            VALID.replace('code = "NORD-A"', 'code = "NO\x00RD"'), "NO\x00RD", id="nul-byte"
        ),
        pytest.param(
            VALID.replace('name = "Mixte"', 'name = "Mixte"\nname = "Again"'),
            'name = "Again"',
            id="duplicate-key",
        ),
        pytest.param(VALID + "\n[campaign]\ncode = 'X'\n", ("[campaign]", 1), id="table-twice"),
    ],
)
def test_toml_syntax_error_names_the_line(text: str, fragment: str | tuple[str, int]) -> None:
    line = line_of(text, *fragment) if isinstance(fragment, tuple) else line_of(text, fragment)
    err = error_of(text, "broken.toml")
    assert err.line == line, str(err)
    assert str(err).startswith(f"broken.toml, line {line}: TOML syntax error"), str(err)


def test_several_problems_are_all_reported() -> None:
    text = replace('departments = ["62", "80"]', 'departments = ["62", "00", "99"]').replace(
        "closes_on = 2022-12-31", "closes_on = 2021-01-01"
    )
    err = error_of(text)
    assert {p.path for p in err.problems} == {
        "campaign.closes_on",
        "territories[1].departments[1]",
        "territories[1].departments[2]",
    }
    assert "3 problems" in str(err)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t\n",
        "x" * 5000,
        "😀😀😀",
        "\u202e[campaign]\u200b",
        "<script>alert(1)</script>",
        "'; DROP TABLE campaigns; --",
        "[[territories]]\n" * 3000,
        "a = " + "[" * 2000 + "]" * 2000,
    ],
)
def test_hostile_text_gives_a_campaign_error(text: str) -> None:
    err = error_of(text, "hostile.toml")
    assert str(err).startswith("hostile.toml")
    assert err.problems


def test_read_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(CampaignFileError, match=r"missing\.toml.*cannot read"):
        read_campaign_file(missing)

    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(VALID.replace("Test region", "Région").encode("latin-1"))
    with pytest.raises(CampaignFileError) as info:
        read_campaign_file(latin1)
    assert info.value.line == 5
    assert "UTF-8" in str(info.value)

    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"# " + b"x" * 2_100_000)
    with pytest.raises(CampaignFileError, match="too large"):
        read_campaign_file(huge)

    with_bom = tmp_path / "bom.toml"
    with_bom.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert read_campaign_file(with_bom).campaign.code == "TEST-2022"

    bad = tmp_path / "bad.toml"
    bad.write_text(replace('departments = ["59"]', 'departments = ["590"]'), encoding="utf-8")
    with pytest.raises(CampaignFileError) as info:
        read_campaign_file(bad)
    assert str(info.value).startswith(f"{bad}, line 12, territories[0].departments[0]: ")


ALTERNATIVE_STYLE = '''\
campaign.code = "ALT-1"
campaign.ref_prefix = "ALT"
campaign.name = """
Multi-line name ] } [ with "quotes" and # not a comment
"""
campaign.region = 'Région'
campaign.opens_on = 2022-11-14
campaign.closes_on = 2022-12-31
themes = [
  { number = 1, label_fr = "Un", label_en = "One" },
  { number = 2, label_fr = "Deux", label_en = "Two" },
  { number = 3, label_fr = "Trois", label_en = "Three" },
  { number = 4, label_fr = "Quatre", label_en = "Four" },  # trailing comment
]

[[territories]]
"code" = "T1"  # quoted key
name = "T1"
departments = ["59"]

  [[territories.communes]]
  name = "Lille"
  postal_codes = ["59000"]

  [[territories.communes]]
  name = "Bad"
  postal_codes = ["59000", "80000"]

[[territories]]
code = "T2"
name = "T2"
departments = ["2A"]
'''


def test_alternative_toml_styles_are_located() -> None:
    good = ALTERNATIVE_STYLE.replace('"80000"', '"59800"')
    spec = parse_campaign_text(good, "alt.toml")
    assert spec.territories[0].communes[1].postal_codes == ["59000", "59800"]
    assert spec.campaign.name.startswith("Multi-line name ] }")
    err = error_of(ALTERNATIVE_STYLE, "alt.toml")
    assert err.path == "territories[0].communes[1].postal_codes[1]"
    assert err.line == line_of(ALTERNATIVE_STYLE, '"80000"')

    text = good.replace('departments = ["2A"]', 'departments = ["2C"]')
    err = error_of(text)
    assert (err.path, err.line) == ("territories[1].departments[0]", line_of(text, '"2C"'))
    text = good.replace('label_en = "Four" }', 'label_en = "Four", x = 1 }')
    err = error_of(text)
    assert (err.path, err.line) == ("themes[3].x", line_of(text, "x = 1"))
    text = good.replace("campaign.region = 'Région'", "")
    err = error_of(text)
    assert (err.path, err.line) == ("campaign.region", 1)
