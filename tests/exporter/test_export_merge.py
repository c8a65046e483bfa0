"""``cnrbot export --into WORKSHOP.docx``: citizens' contributions next to a workshop
restitution, with headings matched by wording whatever their numbering or form."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from sqlalchemy.ext.asyncio import AsyncEngine

from exporter.merge import BLOCK_TITLE, normalise_heading
from exporter.run import ExportRequest, ExportResult, run_export
from exporter.source import ExportError
from storage.settings import Settings
from tests.export_helpers import CAMPAIGN, C, seed

#: A copy of ../shared/samples/atelier-metropole-flandres.docx, a real workshop restitution.
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "atelier-metropole-flandres.docx"
MF = "METROPOLE-FLANDRES"

LABELS = {
    1: "Donner à tous un accès à un médecin traitant ou à une équipe traitante, en particulier "
    "pour nos concitoyens les plus fragiles, et accompagner l'exercice coordonné",
    2: "Garantir la continuité des soins et la réponse aux besoins de soins non programmés",
    3: "Mobiliser les leviers territoriaux d'attractivité pour les métiers de la santé",
    4: "Créer une nouvelle alliance entre les acteurs locaux pour que la prévention entre dans "
    "le quotidien des Français",
    5: "Thématique(s) supplémentaire(s) au choix des parties prenantes",
}


def sample_path() -> Path:
    return SAMPLE


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def seeded(engine: AsyncEngine) -> list[str]:
    return await seed(
        engine,
        [
            C("Trois mois pour un rendez-vous chez le généraliste à Lille.", territory=MF),
            C(
                "Urgences de Roubaix saturées la nuit.",
                "Une maison médicale de garde à Roubaix.",
                "Financement du SAS.",
                territory=MF,
                theme="2",
            ),
            C("Jeunes en détresse psychique sans suivi.", territory=MF, theme="SANTE-MENTALE"),
            C("TEXTE-EN-ATTENTE", territory=MF, theme="3", status="pending"),
        ],
    )


def merge(settings: Settings, workshop: Path, out: Path) -> ExportResult:
    return asyncio.run(
        run_export(
            settings,
            ExportRequest(campaign=CAMPAIGN, out=out, territories=(MF,), into=workshop),
        )
    )


def theme_blocks(path: Path) -> dict[int, list[str]]:
    """Paragraph texts following each theme heading, up to the next theme heading or part."""
    paragraphs = [p.text for p in docx.Document(str(path)).paragraphs]
    starts: dict[int, int] = {}
    for number, label in LABELS.items():
        wanted = normalise_heading(label)[:40]
        for idx, text in enumerate(paragraphs):
            if normalise_heading(text).startswith(wanted):
                starts[number] = idx
                break
    assert sorted(starts) == [1, 2, 3, 4, 5], starts
    bounds = sorted(starts.values())
    end_of_doc = next(
        i for i, t in enumerate(paragraphs) if "perspectives" in t.casefold() and i > bounds[-1]
    )
    blocks: dict[int, list[str]] = {}
    for number, start in starts.items():
        nxt = [b for b in bounds if b > start]
        end = nxt[0] if nxt else end_of_doc
        blocks[number] = paragraphs[start + 1 : end]
    return blocks


def check_merged(path: Path) -> None:
    blocks = theme_blocks(path)
    for number, block in blocks.items():
        assert BLOCK_TITLE in block, number
        title = block.index(BLOCK_TITLE)
        workshop_labels = [i for i, t in enumerate(block[:title]) if t.startswith("Propositions")]
        assert workshop_labels, f"the workshop's own Propositions come first (theme {number})"
        assert block[-1] != BLOCK_TITLE
    assert blocks[1][blocks[1].index(BLOCK_TITLE) + 1 :] == [
        "Constats :",
        "Trois mois pour un rendez-vous chez le généraliste à Lille. "
        "— HDF-METROPOLE-FLANDRES-000001",
        "Solutions :",
        "Ouvrir un centre de santé avec des médecins salariés. — HDF-METROPOLE-FLANDRES-000001",
        "Propositions :",
        "Aucun élément.",
    ]
    assert "Urgences de Roubaix saturées la nuit. — HDF-METROPOLE-FLANDRES-000002" in blocks[2]
    assert "Financement du SAS. — HDF-METROPOLE-FLANDRES-000002" in blocks[2]
    assert blocks[3][blocks[3].index(BLOCK_TITLE) + 1 :] == [
        "Aucune contribution citoyenne approuvée sur cette thématique."
    ]
    theme5 = blocks[5][blocks[5].index(BLOCK_TITLE) + 1 :]
    assert theme5[0].startswith("Thématique : Améliorer la prévention")
    assert "Jeunes en détresse psychique sans suivi. — HDF-METROPOLE-FLANDRES-000003" in theme5
    text = "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
    assert "TEXTE-EN-ATTENTE" not in text


def test_merge_into_the_shared_sample_never_touches_it(
    seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    sample = sample_path()
    before = digest(sample)
    original_text = [p.text for p in docx.Document(str(sample)).paragraphs]
    result = merge(db_settings, sample, tmp_path)
    assert digest(sample) == before
    out = tmp_path / "atelier-metropole-flandres_contributions.docx"
    assert [w.path for w in result.written] == [out]
    check_merged(out)
    merged_text = [p.text for p in docx.Document(str(out)).paragraphs]
    # every paragraph of the workshop is still there, in order
    it = iter(merged_text)
    assert all(any(m == o for m in it) for o in original_text)


def _variant(
    path: Path,
    *,
    style: str,
    numbering: dict[int, str],
    bold_headings: bool,
    drop: tuple[int, ...] = (),
    ocr: bool = False,
) -> Path:
    document = docx.Document()
    if style not in ("", "Heading 2") and style not in [s.name for s in document.styles]:
        document.styles.add_style(style, WD_STYLE_TYPE.PARAGRAPH)

    def heading(text: str) -> None:
        if bold_headings:
            p = document.add_paragraph()
            head, _, rest = text.partition(" ")
            p.add_run(head + " ").bold = True
            p.add_run(rest).bold = True
        else:
            document.add_paragraph(text, style=style)

    document.add_paragraph("CNR Santé Métropole-Flandres", style="Title")
    heading("I - Éléments de contexte")
    document.add_paragraph("Territoire urbain.")
    heading("II. Solutions et propositions")
    for number, label in LABELS.items():
        if number in drop:
            continue
        if ocr:
            label = label.replace("é", "e").replace("ç", "c").upper()
        heading(f"{numbering[number]}{label}")
        for section in ("Constats : ", "Solutions : ", "Propositions : "):
            p = document.add_paragraph()
            p.add_run(section).bold = True
            p.add_run(f"texte de l'atelier {number}")
    heading("III – Perspectives")
    document.add_paragraph("Suite des travaux.")
    document.save(str(path))
    return path


NUMBERINGS = {1: "1- ", 2: "2 — ", 3: "3 - ", 4: "4. ", 5: "5 – "}


@pytest.mark.parametrize(
    ("style", "bold_headings", "ocr"),
    [
        ("Heading 2", False, False),
        ("Titre 2", False, False),
        ("Normal", True, False),
        ("Heading 3", False, True),
    ],
    ids=["heading-styles", "french-style-names", "bold-runs", "upper-case-no-accents"],
)
def test_merge_matches_headings_by_wording(
    seeded: list[str],
    db_settings: Settings,
    tmp_path: Path,
    style: str,
    bold_headings: bool,
    ocr: bool,
) -> None:
    workshop = _variant(
        tmp_path / "atelier.docx",
        style=style,
        numbering=NUMBERINGS,
        bold_headings=bold_headings,
        ocr=ocr,
    )
    before = digest(workshop)
    out = tmp_path / "out"
    merge(db_settings, workshop, out)
    assert digest(workshop) == before
    check_merged(out / "atelier_contributions.docx")


def test_missing_headings_are_listed(
    seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    workshop = _variant(
        tmp_path / "atelier.docx",
        style="Heading 2",
        numbering=NUMBERINGS,
        bold_headings=False,
        drop=(3, 4),
    )
    with pytest.raises(ExportError) as err:
        merge(db_settings, workshop, tmp_path / "out")
    message = str(err.value)
    assert "theme headings not found" in message
    assert "3 - Mobiliser les leviers territoriaux" in message
    assert "4 - Créer une nouvelle alliance" in message
    assert "1 - Donner" not in message
    assert not (tmp_path / "out" / "atelier_contributions.docx").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


@pytest.mark.parametrize(
    "content", [b"", b"not a word document", b"PK\x03\x04 broken zip", "é".encode() * 3000]
)
def test_a_broken_workshop_file_is_a_clear_error(
    seeded: list[str], db_settings: Settings, tmp_path: Path, content: bytes
) -> None:
    workshop = tmp_path / "atelier.docx"
    workshop.write_bytes(content)
    with pytest.raises(ExportError, match="not a readable Word document"):
        merge(db_settings, workshop, tmp_path / "out")
    assert workshop.read_bytes() == content


def test_merge_next_to_the_workshop_writes_a_separate_copy(
    seeded: list[str], db_settings: Settings, tmp_path: Path
) -> None:
    workshop = tmp_path / "atelier.docx"
    shutil.copy(sample_path(), workshop)
    before = digest(workshop)
    merge(db_settings, workshop, tmp_path)
    merge(db_settings, workshop, tmp_path)  # again: replaces the copy, not the workshop
    assert digest(workshop) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".docx") == [
        "atelier.docx",
        "atelier_contributions.docx",
    ]
    check_merged(tmp_path / "atelier_contributions.docx")


def test_into_needs_exactly_one_territory(db_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="exactly one --territory"):
        asyncio.run(
            run_export(
                db_settings,
                ExportRequest(campaign=CAMPAIGN, out=tmp_path, into=sample_path()),
            )
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1- Donner à tous", "donner a tous"),
        ("2 — Garantir la continuité", "garantir la continuite"),
        ("3 -Mobiliser", "mobiliser"),
        ("II. Solutions et propositions", "solutions et propositions"),
        ("5 – Thématique(s) supplémentaire(s)", "thematique supplementaire"),
        ("Créer une nouvelle alliance … Français", "creer une nouvelle alliance francais"),
        ("2022 en chiffres", "2022 en chiffres"),
    ],
)
def test_heading_normalisation(text: str, expected: str) -> None:
    assert normalise_heading(text) == expected
