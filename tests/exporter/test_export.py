"""``cnrbot export``: the annex documents and data files, on SQLite and PostgreSQL.

Every produced DOCX is opened with python-docx and every ODT with odfpy; the heading sequence
is checked against the annex, items against their heading, and nothing unpublishable (pending
or rejected contributions, original texts, personal data, the participant key) may appear in
any file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
import jsonschema
import openpyxl
import pytest
from odf import chart as odf_chart
from odf import math as odf_math
from odf import teletype
from odf.namespaces import TEXTNS
from odf.opendocument import load as load_odt
from odf.text import H, P
from sqlalchemy.ext.asyncio import AsyncEngine

from exporter.json import SCHEMA_PATH
from exporter.rows import COLUMNS
from exporter.run import ExportRequest, ExportResult, run_export
from storage.settings import Settings
from tests.export_helpers import CAMPAIGN, PARTICIPANT_KEY, C, seed

THEME_1 = (
    "1 - Donner à tous un accès à un médecin traitant ou à une équipe traitante, en particulier "
    "pour nos concitoyens les plus fragiles, et accompagner l'exercice coordonné"
)
THEME_2 = "2 - Garantir la continuité des soins et la réponse aux besoins de soins non programmés"
THEME_3 = "3 - Mobiliser les leviers territoriaux d'attractivité pour les métiers de la santé"
THEME_4 = (
    "4 - Créer une nouvelle alliance entre les acteurs locaux pour que la prévention entre dans "
    "le quotidien des Français"
)
THEME_5 = "5 - Thématique(s) supplémentaire(s)"
MENTAL = "Améliorer la prévention, le repérage et la prise en charge de la santé mentale"

#: Texts that must never appear in any export.
FORBIDDEN = [
    "TEXTE-EN-ATTENTE",
    "TEXTE-REJETE",
    "TEXTE-DOUBLON",
    "ORIGINAL-AVANT-MODERATION",
    "jean.dupont@example.fr",
    "06 12 34 56 78",
    PARTICIPANT_KEY,
]


def dataset() -> list[C]:
    return [
        C(
            "Il n'y a plus de médecin traitant dans mon village depuis deux ans.",
            "Ouvrir une maison de santé pluriprofessionnelle au bourg.",
            "Aides à l'installation des jeunes médecins.",
            profile="usager",
            originals={"need": "ORIGINAL-AVANT-MODERATION"},
        ),
        C(
            "Plus de MÉDECIN traitant dans mon village, depuis deux ans !",
            "Des médecins salariés par la commune.",
            profile="proche-aidant",
        ),
        C(
            "Écrivez-moi à jean.dupont@example.fr ou au 06 12 34 56 78, les délais sont longs.",
            "Un secrétariat partagé pour les cabinets.",
            day=3,
        ),
        C(
            '=HYPERLINK("http://evil.example","clic") urgences saturées le week-end',
            "-2+3 maisons médicales de garde",
            "@SUM(A1) régulation par le SAS",
            theme="2",
            language="en",
            day=5,
        ),
        C("Santé mentale des adolescents : attente de six mois.", theme="SANTE-MENTALE", day=6),
        C("Pas de bus pour aller à l'hôpital.", theme="5", custom_theme="Transports", day=7),
        C("TEXTE-EN-ATTENTE jamais publié", status="pending", day=8),
        C("TEXTE-REJETE jamais publié", status="rejected", day=8),
        C("TEXTE-DOUBLON jamais publié", status="duplicate", day=8),
        C("Les urgences de Valenciennes ferment la nuit.", territory="HAINAUT", theme="2", day=2),
    ]


def docx_paragraphs(path: Path) -> list[tuple[str, str]]:
    document = docx.Document(str(path))
    out = [(p.style.name if p.style is not None else "", p.text) for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            out.append(("cell", " | ".join(c.text for c in row.cells)))
    return out


def docx_headings(path: Path) -> list[tuple[int, str]]:
    return [
        (int(style.split()[-1]), text)
        for style, text in docx_paragraphs(path)
        if style.startswith("Heading")
    ]


def odt_headings(path: Path) -> list[tuple[int, str]]:
    document = load_odt(str(path))
    return [
        (int(h.getAttrNS(TEXTNS, "outline-level")), teletype.extractText(h))
        for h in document.getElementsByType(H)
    ]


def odt_text(path: Path) -> str:
    document = load_odt(str(path))
    parts = [teletype.extractText(e) for e in document.getElementsByType(H)]
    parts += [teletype.extractText(e) for e in document.getElementsByType(P)]
    return "\n".join(parts)


def file_text(path: Path) -> str:
    """Every text of an exported file, whatever its format."""
    if path.suffix == ".docx":
        return "\n".join(text for _, text in docx_paragraphs(path))
    if path.suffix == ".odt":
        return odt_text(path)
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        return "\n".join(
            str(cell)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for cell in row
            if cell is not None
        )
    if path.suffix == ".png":
        return ""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":  # as rendered: Markdown escapes removed
        text = re.sub(r"\\(.)", r"\1", text)
    return text


def expected_headings(territory: str) -> list[tuple[int, str]]:
    return [
        (1, f"CNR Santé {territory}"),
        (2, "I - Éléments de contexte"),
        (3, "La situation du territoire"),
        (3, "Les contributions recueillies"),
        (2, "II - Solutions et propositions"),
        (3, THEME_1),
        (3, THEME_2),
        (3, THEME_3),
        (3, THEME_4),
        (3, THEME_5),
        (4, MENTAL),
        (4, "Transports"),
        (2, "III - Perspectives"),
        (2, "Annexe : liste des contributions"),
    ]


def export(settings: Settings, out: Path, **kwargs: object) -> ExportResult:
    import asyncio

    request = ExportRequest(campaign=CAMPAIGN, out=out, **kwargs)  # type: ignore[arg-type]
    return asyncio.run(run_export(settings, request))


@pytest.fixture
async def seeded(engine: AsyncEngine) -> list[str]:
    return await seed(engine, dataset())


@pytest.fixture
def exported(seeded: list[str], db_settings: Settings, tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "out"
    export(db_settings, out, territories=("OISE", "HAINAUT"), region=True)
    yield out


# --- the annex documents --------------------------------------------------------------------


def test_every_file_is_written_per_territory_and_region(exported: Path) -> None:
    names = sorted(p.name for p in exported.iterdir())
    expected = sorted(
        [
            f"HDF-2022_{scope}.{fmt}"
            for scope in ("OISE", "HAINAUT", "REGION")
            for fmt in ("docx", "odt", "md", "csv", "json")
        ]
        + ["HDF-2022_REGION.xlsx"]
    )
    assert names == expected


def test_docx_headings_follow_the_annex(exported: Path) -> None:
    oise = exported / "HDF-2022_OISE.docx"
    assert docx_headings(oise) == expected_headings("Oise")
    hainaut = [h for h in expected_headings("Hainaut") if h[0] != 4]
    assert docx_headings(exported / "HDF-2022_HAINAUT.docx") == hainaut


def test_odt_headings_follow_the_annex(exported: Path) -> None:
    assert odt_headings(exported / "HDF-2022_OISE.odt") == expected_headings("Oise")


def test_markdown_headings_follow_the_annex(exported: Path) -> None:
    text = (exported / "HDF-2022_OISE.md").read_text(encoding="utf-8")
    headings = [
        (len(line) - len(line.lstrip("#")), line.lstrip("#").strip())
        for line in text.splitlines()
        if line.startswith("#")
    ]
    assert headings == expected_headings("Oise")


def _section_items(paragraphs: list[tuple[str, str]], heading: str) -> dict[str, list[str]]:
    """Items under Constats/Solutions/Propositions of the theme headed ``heading``."""
    out: dict[str, list[str]] = {}
    level = 0
    current = None
    for style, text in paragraphs:
        if style.startswith("Heading"):
            this = int(style.split()[-1])
            if level and this <= level:
                break
            if text == heading:
                level = this
            continue
        inside = level > 0
        if not inside:
            continue
        if text in ("Constats :", "Solutions :", "Propositions :"):
            current = text
            out[current] = []
        elif current is not None:
            out[current].append(text)
    return out


def test_items_are_under_their_heading_grouped_and_referenced(exported: Path) -> None:
    paragraphs = docx_paragraphs(exported / "HDF-2022_OISE.docx")
    theme1 = _section_items(paragraphs, THEME_1)
    assert theme1["Constats :"] == [
        "Il n'y a plus de médecin traitant dans mon village depuis deux ans. — HDF-OISE-000001 "
        "(1 contribution similaire : HDF-OISE-000002)",
        "Écrivez-moi à [donnée masquée] ou au [donnée masquée], les délais sont longs. "
        "— HDF-OISE-000003",
    ]
    assert theme1["Solutions :"] == [
        "Ouvrir une maison de santé pluriprofessionnelle au bourg. — HDF-OISE-000001",
        "Des médecins salariés par la commune. — HDF-OISE-000002",
        "Un secrétariat partagé pour les cabinets. — HDF-OISE-000003",
    ]
    assert theme1["Propositions :"] == [
        "Aides à l'installation des jeunes médecins. — HDF-OISE-000001"
    ]
    theme3 = [t for s, t in paragraphs if s == "Normal"]
    assert "Aucune contribution citoyenne sur cette thématique." in theme3
    mental = _section_items(paragraphs, MENTAL)
    assert mental["Constats :"] == [
        "Santé mentale des adolescents : attente de six mois. — HDF-OISE-000005"
    ]
    assert mental["Propositions :"] == ["Aucun élément."]
    transports = _section_items(paragraphs, "Transports")
    assert transports["Constats :"] == ["Pas de bus pour aller à l'hôpital. — HDF-OISE-000006"]


def test_context_counts_and_annex_list_every_exported_contribution(exported: Path) -> None:
    paragraphs = docx_paragraphs(exported / "HDF-2022_OISE.docx")
    texts = [t for _, t in paragraphs]
    assert "Nombre de contributions approuvées : 6 (du 14/11/2022 au 21/11/2022)." in texts
    assert "Canal : Telegram : 6." in texts
    assert "Langues : français : 5, anglais : 1." in texts
    assert any(
        t.startswith("Profils des participants (déclaratifs) : non renseigné : 4") for t in texts
    )
    texts_in_order = [t for s, t in paragraphs if s != "cell"]
    annex = texts_in_order[texts_in_order.index("Annexe : liste des contributions") + 1 :]
    assert annex[0] == "Référence · Date · Thématique · Profil · Langue"
    assert [row.split(" · ")[0] for row in annex[1:]] == [f"HDF-OISE-00000{n}" for n in range(1, 7)]
    assert annex[1] == "HDF-OISE-000001 · 2022-11-14 · 1 · Patient ou usager · français"
    assert annex[4] == "HDF-OISE-000004 · 2022-11-19 · 2 · non renseigné · anglais"
    assert annex[5] == f"HDF-OISE-000005 · 2022-11-20 · 5 - {MENTAL} · non renseigné · français"
    odt = odt_text(exported / "HDF-2022_OISE.odt").splitlines()
    assert all(line in odt for line in annex)
    assert "participant" not in "\n".join(annex).casefold()
    assert "[À compléter : la situation du territoire n'est pas renseignée.]" in texts


def test_region_rolls_up_every_selected_territory(exported: Path) -> None:
    region = exported / "HDF-2022_REGION.docx"
    headings = docx_headings(region)
    assert headings[0] == (1, "CNR Santé Hauts-de-France — synthèse régionale")
    assert [h for h in headings if h[0] == 3][2:7] == [
        (3, THEME_1),
        (3, THEME_2),
        (3, THEME_3),
        (3, THEME_4),
        (3, THEME_5),
    ]
    text = file_text(region)
    assert "Les urgences de Valenciennes ferment la nuit. — HDF-HAINAUT-000001" in text
    assert "HDF-OISE-000006" in text
    rows = [t for s, t in docx_paragraphs(region) if s == "cell"]
    assert "Oise | 3 | 1 | 0 | 0 | 2 | 6" in rows
    assert "Hainaut | 0 | 1 | 0 | 0 | 0 | 1" in rows
    assert "Total | 3 | 2 | 0 | 0 | 2 | 7" in rows


def test_nothing_unpublishable_in_any_file(exported: Path) -> None:
    files = sorted(exported.iterdir())
    assert files
    for path in files:
        text = file_text(path)
        for forbidden in FORBIDDEN:
            assert forbidden not in text, (path.name, forbidden)
        if path.suffix in (".docx", ".odt", ".md", ".csv", ".json") and "OISE" in path.name:
            assert "[donnée masquée]" in text, path.name
        # no identity column or value of any kind
        assert "participant_" not in text.casefold(), path.name
        assert "chat_id" not in text.casefold(), path.name
    leftovers = [p.name for p in exported.iterdir() if p.name.startswith(".")]
    assert leftovers == []


# --- data files ---------------------------------------------------------------------------


def test_csv_rows_columns_and_formula_neutralisation(exported: Path) -> None:
    raw = (exported / "HDF-2022_OISE.csv").read_bytes()
    assert raw.startswith(b"reference,territory_code")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["reference"] for r in rows] == [f"HDF-OISE-00000{n}" for n in range(1, 7)]
    formula = rows[3]
    assert formula["need"].startswith("'=HYPERLINK(")
    assert formula["solution"] == "'-2+3 maisons médicales de garde"
    assert formula["levers"] == "'@SUM(A1) régulation par le SAS"
    assert formula["theme_number"] == "2"
    assert rows[4]["supplementary_theme"] == MENTAL
    assert rows[5]["supplementary_theme"] == "Transports"
    assert rows[0]["submitted_at"] == "2022-11-14T09:30:00Z"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_xlsx_sheets_summary_and_neutralisation(exported: Path) -> None:
    book = openpyxl.load_workbook(exported / "HDF-2022_REGION.xlsx")
    assert book.sheetnames == ["Synthèse", "OISE", "HAINAUT"]
    summary = [list(r) for r in book["Synthèse"].iter_rows(values_only=True)]
    assert summary[2][:8] == ["Oise", "OISE", 3, 1, 0, 0, 2, 6]
    assert summary[-1][2:] == [3, 2, 0, 0, 2, 7]
    oise = [list(r) for r in book["OISE"].iter_rows(values_only=True)]
    assert oise[0] == list(COLUMNS)
    assert len(oise) == 7
    need = oise[4][COLUMNS.index("need")]
    assert need.startswith("'=HYPERLINK(")
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.coordinate


def test_json_is_valid_against_the_shipped_schema(exported: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for scope in ("OISE", "HAINAUT", "REGION"):
        data = json.loads((exported / f"HDF-2022_{scope}.json").read_text(encoding="utf-8"))
        validator.validate(data)
    region = json.loads((exported / "HDF-2022_REGION.json").read_text(encoding="utf-8"))
    assert region["selection"]["territories"] == ["OISE", "HAINAUT"]
    assert len(region["contributions"]) == 7
    assert region["contributions"][3]["levers"] == "@SUM(A1) régulation par le SAS"


def test_json_schema_rejects_an_identity_field(exported: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    data = json.loads((exported / "HDF-2022_OISE.json").read_text(encoding="utf-8"))
    data["contributions"][0]["participant_key"] = "abc"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


# --- determinism ----------------------------------------------------------------------------


def test_two_exports_are_identical(
    seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    export(db_settings, first, territories=("OISE",), region=True)
    # odfpy remembers the namespaces its process met: a chart, a formula made in between
    # (another document of the console's) must not change the next export's bytes
    odf_chart.Chart(attributes={"class": "chart:bar"})
    odf_math.Math()
    export(db_settings, second, territories=("OISE",), region=True)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        a, b = first / name, second / name
        if a.suffix in (".csv", ".json", ".md"):
            assert a.read_bytes() == b.read_bytes(), name
        elif a.suffix in (".docx", ".odt", ".xlsx"):
            # the packages too, byte for byte: no member dated "now" (an operator can compare
            # two exports by their checksums)
            with zipfile.ZipFile(a) as package:
                dates = {info.date_time for info in package.infolist()}
            assert dates == {(1980, 1, 1, 0, 0, 0)}, name
            assert a.read_bytes() == b.read_bytes(), name
    props_a = docx.Document(str(first / "HDF-2022_OISE.docx")).core_properties
    props_b = docx.Document(str(second / "HDF-2022_OISE.docx")).core_properties
    assert props_a.created == props_b.created == props_a.modified
    assert props_a.created is not None and props_a.created.year == 2022
    meta_a = zipfile.ZipFile(first / "HDF-2022_OISE.odt").read("meta.xml")
    assert meta_a == zipfile.ZipFile(second / "HDF-2022_OISE.odt").read("meta.xml")
    assert b"2022-11-21T" in meta_a
    book = openpyxl.load_workbook(first / "HDF-2022_REGION.xlsx", read_only=True)
    assert book.properties.created == book.properties.modified
    assert book.properties.created is not None and book.properties.created.year == 2022


GOLDEN = Path(__file__).parents[1] / "golden" / "HDF-2022_OISE.md"


def test_golden_markdown(seeded: list[str], db_settings: Settings, tmp_path: Path) -> None:
    export(db_settings, tmp_path, territories=("OISE",), formats=("md",))
    produced = (tmp_path / "HDF-2022_OISE.md").read_text(encoding="utf-8")
    assert produced == GOLDEN.read_text(encoding="utf-8")


@pytest.fixture
async def unclean(engine: AsyncEngine) -> list[str]:
    """A row stored without the dialog's cleaning (an old row, a direct edit)."""
    need = "Urgences\u00a0saturées\u202e la\u200b nuit\x85et\x9b le\r\n\r\nweek-end."
    return await seed(engine, [C(need, solution="Une   maison\tde santé\u2028au bourg.")])


def test_texts_are_cleaned_as_the_citizens_texts_are_on_one_line(
    unclean: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    """Exported texts get the citizens' cleaning, on one line: no bidi override, zero-width or
    C1 control character, spaces folded (the exporter once kept those)."""
    export(db_settings, tmp_path, territories=("OISE",), formats=("md", "docx"))
    markdown = file_text(tmp_path / "HDF-2022_OISE.md")
    assert "- Urgences saturées la nuit et le week-end. — HDF-OISE-000001" in markdown
    assert "- Une maison de santé au bourg. — HDF-OISE-000001" in markdown
    docx_text = file_text(tmp_path / "HDF-2022_OISE.docx")
    assert "Urgences saturées la nuit et le week-end. — HDF-OISE-000001" in docx_text


# --- selection ------------------------------------------------------------------------------


def test_period_filter_and_empty_selection(
    seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    from datetime import date

    result = export(
        db_settings,
        tmp_path / "p",
        territories=("OISE",),
        formats=("csv",),
        since=date(2022, 11, 17),
        until=date(2022, 11, 19),
    )
    rows = list(csv.DictReader((tmp_path / "p" / "HDF-2022_OISE.csv").open(encoding="utf-8")))
    assert [r["reference"] for r in rows] == ["HDF-OISE-000003", "HDF-OISE-000004"]
    assert result.total == 2
    empty = export(db_settings, tmp_path / "e", since=date(2023, 1, 1), formats=("md",))
    assert empty.written == []
    assert empty.notices == ["no approved contribution matches the selection: no file written"]
    assert list((tmp_path / "e").iterdir()) == []


def test_no_participant_data_is_ever_selected(
    seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements: list[str] = []

    def capture(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.casefold())

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        export(db_settings, tmp_path / "out", region=True, formats=("csv", "md"))
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    reads = [s for s in statements if "contributions" in s]
    assert len(reads) >= 3  # the counts, then one streamed read per territory with data
    for statement in statements:
        # the topics count distinct citizens by the contribution's opaque participant number
        # (issue 14): that column only; no participant row, key or identity is read
        statement = statement.replace("contributions.participant_id", "")
        for column in ("participant", "originals", "reject_", "moderated_by", "chat_", "draft_id"):
            assert column not in statement, (column, statement)
    assert all("status" in s for s in reads)


# --- the garbage collector ------------------------------------------------------------------


def test_the_contributions_leave_the_collector_only_while_exporting(
    seeded: list[str], db_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contributions read are frozen out of the collector's full collections while the
    export runs (``gc.freeze``), and given back when it ends, done or failed."""
    import gc

    import exporter.run as run_mod

    frozen: list[int] = []
    settle = run_mod.settle_in_memory

    def settle_and_count() -> None:
        settle()
        frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(run_mod, "settle_in_memory", settle_and_count)
    export(db_settings, tmp_path / "a", territories=("OISE",), formats=("csv",))
    assert frozen and frozen[0] > 0  # frozen while exporting
    assert gc.get_freeze_count() == 0  # given back after
    monkeypatch.setattr(run_mod, "topic_columns", lambda topics: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        export(db_settings, tmp_path / "b", territories=("OISE",), formats=("csv",))
    assert len(frozen) == 2
    assert gc.get_freeze_count() == 0  # given back after a failure too
