"""The annex kept exact and topics in the exports (issue 14, points 1 and 3): every theme keeps
its three headings, each theme opens with « Principaux sujets », a large group of similar
contributions shows a few references inline and the rest in the annex, the data files give
each contribution its topic, and ``--into`` refuses another territory's workshop document."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import docx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from exporter.report import INLINE_REFERENCES
from exporter.source import ExportError
from storage.settings import Settings
from tests.export_helpers import C, seed
from tests.exporter.test_export import THEME_1, THEME_3, docx_paragraphs, export, file_text
from tests.exporter.test_export_merge import MF, SAMPLE, merge

FLOOD = "Plus aucun médecin traitant ne prend de nouveaux patients dans notre commune."
TOPIC_A = [
    "Impossible de trouver un dentiste, six mois d'attente pour un rendez-vous dentiste.",
    "Le dentiste le plus proche est à quarante kilomètres, rendez-vous dentiste introuvable.",
    "Pas de dentiste pour les enfants, rendez-vous dentiste dans un an.",
]


def _dataset() -> list[C]:
    flood = [C(FLOOD, "Des médecins salariés.", participant=f"f{k}") for k in range(10)]
    topic = [C(text, "Un centre dentaire.", participant=f"d{k}") for k, text in enumerate(TOPIC_A)]
    return flood + topic


@pytest.fixture
async def annex_seeded(engine: AsyncEngine) -> list[str]:
    return await seed(engine, _dataset())


def _after(paragraphs: list[str], heading: str, count: int) -> list[str]:
    start = paragraphs.index(heading)
    return paragraphs[start + 1 : start + 1 + count]


def test_a_theme_without_contribution_keeps_its_three_headings(
    annex_seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    export(db_settings, tmp_path / "x", territories=("OISE",), formats=("docx", "md", "odt"))
    paragraphs = [t for _, t in docx_paragraphs(tmp_path / "x" / "HDF-2022_OISE.docx")]
    assert _after(paragraphs, THEME_3, 7) == [
        "Aucune contribution citoyenne sur cette thématique.",
        "Constats :",
        "Aucune contribution.",
        "Solutions :",
        "Aucune contribution.",
        "Propositions :",
        "Aucune contribution.",
    ]
    for path in (tmp_path / "x").iterdir():
        text = file_text(path)
        # themes 2, 3, 4 and 5 have none: the skeleton is there, three times each
        assert text.count("Aucune contribution.") == 12, path.name


def test_each_theme_opens_with_its_main_topics_ranked_by_citizens(
    annex_seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    export(db_settings, tmp_path / "x", territories=("OISE",), formats=("docx",))
    paragraphs = [t for _, t in docx_paragraphs(tmp_path / "x" / "HDF-2022_OISE.docx")]
    block = paragraphs[paragraphs.index(THEME_1) + 1 : paragraphs.index("Constats :")]
    assert block[0] == "Principaux sujets :"
    topics = block[1:]
    assert len(topics) == 2
    # ten citizens before three, each with its counts and a few references
    assert "(10 contributions, 10 participants) — HDF-OISE-000001, HDF-OISE-000002, " in topics[0]
    assert topics[0].endswith("et 7 autres (fichiers de données)")
    assert "médecin" in topics[0].split(" (")[0]
    assert topics[1].endswith(
        "(3 contributions, 3 participants) — HDF-OISE-000011, HDF-OISE-000012, HDF-OISE-000013"
    )
    assert "dent" in topics[1].split(" (")[0]  # "centre dentaire", "dentiste"


def test_a_large_group_shows_a_few_references_and_the_rest_in_the_annex(
    annex_seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    export(db_settings, tmp_path / "x", territories=("OISE",), formats=("docx", "md"))
    paragraphs = [t for _, t in docx_paragraphs(tmp_path / "x" / "HDF-2022_OISE.docx")]
    constats = _after(paragraphs, "Constats :", 1)[0]
    shown = ", ".join(f"HDF-OISE-{n:06d}" for n in range(2, 2 + INLINE_REFERENCES))
    assert constats == (
        f"{FLOOD} — HDF-OISE-000001 (9 contributions similaires : {shown} et "
        f"{9 - INLINE_REFERENCES} autres en annexe)"
    )
    annex = paragraphs[paragraphs.index("Contributions similaires regroupées :") + 1 :]
    every = ", ".join(f"HDF-OISE-{n:06d}" for n in range(2, 11))
    # the needs and the solutions of the ten are alike
    assert annex == [
        f"HDF-OISE-000001, Constats (9) : {every}",
        f"HDF-OISE-000001, Solutions (9) : {every}",
    ]
    markdown = file_text(tmp_path / "x" / "HDF-2022_OISE.md")
    assert f"- HDF-OISE-000001, Constats (9) : {every}" in markdown


def test_the_data_files_give_each_contribution_its_topic(
    annex_seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    export(db_settings, tmp_path / "x", territories=("OISE",), region=True, formats=("csv", "json"))
    rows = list(csv.DictReader((tmp_path / "x" / "HDF-2022_OISE.csv").open(encoding="utf-8")))
    topics = {r["reference"]: (r["topic_id"], r["topic"]) for r in rows}
    assert {topics[f"HDF-OISE-{n:06d}"][0] for n in range(1, 11)} == {"1-T1"}
    assert {topics[f"HDF-OISE-{n:06d}"][0] for n in range(11, 14)} == {"1-T2"}
    assert all(label for _, label in topics.values())
    data = json.loads((tmp_path / "x" / "HDF-2022_OISE.json").read_text(encoding="utf-8"))
    assert [(c["topic_id"], c["topic"]) for c in data["contributions"]] == list(topics.values())
    region = json.loads((tmp_path / "x" / "HDF-2022_REGION.json").read_text(encoding="utf-8"))
    assert [(c["topic_id"], c["topic"]) for c in region["contributions"]] == list(topics.values())
    again = tmp_path / "again"
    export(db_settings, again, territories=("OISE",), formats=("csv",))
    assert (again / "HDF-2022_OISE.csv").read_bytes() == (
        tmp_path / "x" / "HDF-2022_OISE.csv"
    ).read_bytes()


@pytest.fixture
async def lonely(engine: AsyncEngine) -> list[str]:
    return await seed(engine, [C("Pas de bus pour aller à l'hôpital.")])


def test_a_contribution_in_no_topic_has_empty_topic_cells(
    lonely: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    export(db_settings, tmp_path / "x", territories=("OISE",), formats=("json", "md"))
    data = json.loads((tmp_path / "x" / "HDF-2022_OISE.json").read_text(encoding="utf-8"))
    assert data["contributions"][0]["topic_id"] is None
    assert data["contributions"][0]["topic"] is None
    assert "Aucun sujet commun à plusieurs contributions." in file_text(
        tmp_path / "x" / "HDF-2022_OISE.md"
    )


# --- --into another territory's workshop document ------------------------------------------


@pytest.fixture
def oise_workshop(tmp_path: Path) -> Path:
    """The sample restitution, titled for the Oise."""
    document = docx.Document(str(SAMPLE))
    document.paragraphs[0].text = "CNR Santé Oise"
    path = tmp_path / "atelier-oise.docx"
    document.save(str(path))
    return path


@pytest.fixture
async def mf_seeded(engine: AsyncEngine) -> list[str]:
    return await seed(engine, [C("Trois mois pour un rendez-vous à Lille.", territory=MF)])


def test_into_refuses_another_territorys_workshop_document(
    mf_seeded: list[str], db_settings: Settings, oise_workshop: Path, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match=r"names Oise, not Métropole-Flandres.*--force"):
        merge(db_settings, oise_workshop, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_into_another_territory_is_exit_code_2_unless_forced(
    mf_seeded: list[str],
    cli_env: Settings,
    oise_workshop: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["export", "--campaign", "HDF-2022", "--territory", MF, "--into", str(oise_workshop)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "names Oise, not Métropole-Flandres" in capsys.readouterr().err
    assert main([*args, "--force", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "atelier-oise_contributions.docx").is_file()


def test_into_the_right_territorys_document_is_merged(
    mf_seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    result = merge(db_settings, SAMPLE, tmp_path)
    assert len(result.written) == 1


# --- streamed documents -----------------------------------------------------------------------


def test_streamed_documents_are_valid_packages(
    annex_seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    """DOCX and ODT bodies are streamed into the packages their libraries saved: the XML is
    well-formed, the marker is gone, and the ODT's mimetype is first and stored (ODF 1.2)."""
    import zipfile

    from lxml import etree

    from exporter.package import MARKER

    export(db_settings, tmp_path / "x", territories=("OISE",), region=True, formats=("docx", "odt"))
    for scope in ("OISE", "REGION"):
        with zipfile.ZipFile(tmp_path / "x" / f"HDF-2022_{scope}.odt") as odt:
            first = odt.infolist()[0]
            assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
            assert odt.read("mimetype") == b"application/vnd.oasis.opendocument.text"
            content = odt.read("content.xml")
        with zipfile.ZipFile(tmp_path / "x" / f"HDF-2022_{scope}.docx") as package:
            document = package.read("word/document.xml")
        for xml in (content, document):
            assert MARKER.encode() not in xml
            etree.fromstring(xml)  # well-formed
        # the body ends the document: the section properties come last
        assert document.rstrip().endswith(b"</w:sectPr></w:body></w:document>")
        assert content.rstrip().endswith(b"</office:text></office:body></office:document-content>")
