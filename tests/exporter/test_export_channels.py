"""The channel of each contribution in the annex: "Les contributions recueillies" counts the
contributions per channel, the web chat ("Site web") included, in every document format; the
data files keep the channel's code."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from exporter.report import CHANNELS
from storage.settings import Settings
from tests.export_helpers import C, seed
from tests.exporter.test_export import docx_paragraphs, export, file_text, odt_text

EXPECTED = "Canal : Site web : 3, Telegram : 2, Terminal (essai) : 1."


def test_every_channel_has_a_french_label() -> None:
    assert CHANNELS == {"telegram": "Telegram", "web": "Site web", "terminal": "Terminal (essai)"}


async def test_the_annex_counts_contributions_per_channel_with_the_web(
    engine: AsyncEngine, db_settings: Settings, tmp_path: Path
) -> None:
    await seed(
        engine,
        [
            C("Pas de médecin traitant depuis deux ans.", channel="telegram"),
            C("Des urgences fermées la nuit.", channel="telegram", theme="2", day=1),
            C("Le site web est plus simple pour moi.", channel="web", day=2),
            C("Attente de six mois pour un ophtalmologue.", channel="web", theme="2", day=3),
            C("Aucun dentiste ne prend de patient.", channel="web", theme="3", day=4),
            C("Essai depuis le terminal de démonstration.", channel="terminal", day=5),
            # not approved: not counted
            C("Un texte web en attente.", channel="web", status="pending", day=6),
        ],
    )
    out = tmp_path / "out"
    formats = ("docx", "odt", "md", "csv", "json")
    await asyncio.to_thread(export, db_settings, out, territories=("OISE",), formats=formats)
    docx_texts = [t for _, t in docx_paragraphs(out / "HDF-2022_OISE.docx")]
    assert EXPECTED in docx_texts
    assert EXPECTED in odt_text(out / "HDF-2022_OISE.odt").splitlines()
    markdown = file_text(out / "HDF-2022_OISE.md")
    assert EXPECTED in markdown.splitlines()
    assert "Nombre de contributions approuvées : 6 " in markdown
    # the data files keep the code
    with (out / "HDF-2022_OISE.csv").open(encoding="utf-8-sig") as f:
        channels = sorted(row["channel"] for row in csv.DictReader(f))
    assert channels == ["telegram", "telegram", "terminal", "web", "web", "web"]
    data = json.loads((out / "HDF-2022_OISE.json").read_text(encoding="utf-8"))
    assert '"channel": "web"' in json.dumps(data, ensure_ascii=False)
