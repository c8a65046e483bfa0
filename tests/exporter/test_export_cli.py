"""``cnrbot export`` from the command line: errors, notices, summary, atomic files, charts,
and hostile contribution texts."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import docx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from exporter import run as run_mod
from exporter.run import ExportRequest, run_export
from storage.settings import Settings
from tests.export_helpers import CAMPAIGN, C, seed
from tests.exporter.test_export import file_text


@pytest.fixture
async def seeded(engine: AsyncEngine) -> list[str]:
    return await seed(
        engine,
        [
            C("Plus de médecin traitant depuis deux ans à Beauvais."),
            C("Urgences saturées à Creil.", theme="2"),
            C("Urgences de Valenciennes fermées la nuit.", territory="HAINAUT", theme="2"),
        ],
    )


def cnrbot(*args: str) -> int:
    return main(["export", "--campaign", CAMPAIGN, *args])


def test_export_writes_files_and_a_summary_table_without_progress_when_piped(
    seeded: list[str], cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = cnrbot("--all", "--region", "--format", "md,csv", "--out", str(out))
    captured = capsys.readouterr()
    assert code == 0
    assert "3 approved contributions exported" in captured.out
    assert "HDF-2022_OISE.md" in captured.out and "HDF-2022_REGION.csv" in captured.out
    # piped: no progress bar, only notices for territories without contributions
    assert "━" not in captured.err and "%" not in captured.err
    assert "notice: Artois-Douaisis (ARTOIS-DOUAISIS): no approved contribution" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "HDF-2022_HAINAUT.csv",
        "HDF-2022_HAINAUT.md",
        "HDF-2022_OISE.csv",
        "HDF-2022_OISE.md",
        "HDF-2022_REGION.csv",
        "HDF-2022_REGION.md",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--territory", "ATLANTIDE"], "unknown territory 'ATLANTIDE' in campaign HDF-2022"),
        (["--format", "docx,pdf"], "unknown format: pdf (possible formats: docx, odt, md"),
        (["--format", ","], "unknown format: (none)"),
        (["--since", "2022-12-01", "--until", "2022-11-01"], "is after --until"),
        (["--into", "missing.docx", "--territory", "OISE"], "workshop document not found"),
    ],
)
def test_operator_errors_are_clear_and_exit_non_zero(
    seeded: list[str],
    cli_env: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code = cnrbot(*args, "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.startswith("cnrbot export: error:")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_unknown_campaign(
    seeded: list[str], cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", "--campaign", "NOPE-2030", "--out", str(tmp_path)])
    assert code == 2
    assert "unknown campaign 'NOPE-2030' (known: HDF-2022)" in capsys.readouterr().err


def test_unwritable_output_directory(
    seeded: list[str], cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = cnrbot("--out", str(blocker / "sub"))
    assert code == 2
    assert "cannot create the output directory" in capsys.readouterr().err
    code = cnrbot("--out", str(blocker))
    assert code == 2
    assert "is not a directory" in capsys.readouterr().err


def test_bad_date_is_an_argument_error(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cnrbot("--since", "14/11/2022", "--out", str(tmp_path))
    assert exit_info.value.code == 2
    assert "not a date (YYYY-MM-DD): '14/11/2022'" in capsys.readouterr().err


def test_empty_selection_is_a_notice(
    seeded: list[str], cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cnrbot("--since", "2030-01-01", "--out", str(tmp_path / "out"))
    captured = capsys.readouterr()
    assert code == 0
    assert "notice: no approved contribution matches the selection: no file written" in (
        captured.err
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failing_writer_leaves_no_file_behind(
    seeded: list[str], db_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(report: object, path: Path) -> None:
        path.write_bytes(b"half a document")
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_mod, "write_odt", broken)
    request = ExportRequest(campaign=CAMPAIGN, out=tmp_path / "out", territories=("OISE",))
    with pytest.raises(RuntimeError, match="disk full"):
        asyncio.run(run_export(db_settings, request))
    # the DOCX written before is complete; no ODT, and nothing half-written is left
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["HDF-2022_OISE.docx"]


def test_charts_in_every_document(seeded: list[str], db_settings: Settings, tmp_path: Path) -> None:
    request = ExportRequest(
        campaign=CAMPAIGN, out=tmp_path, region=True, charts=True, formats=("docx", "odt", "md")
    )
    asyncio.run(run_export(db_settings, request))
    for scope in ("OISE", "REGION"):
        png = (tmp_path / f"HDF-2022_{scope}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        assert len(docx.Document(str(tmp_path / f"HDF-2022_{scope}.docx")).inline_shapes) == 1
        md = (tmp_path / f"HDF-2022_{scope}.md").read_text(encoding="utf-8")
        assert f"](HDF-2022_{scope}.png)" in md
        import zipfile

        names = zipfile.ZipFile(tmp_path / f"HDF-2022_{scope}.odt").namelist()
        assert any(n.startswith("Pictures/") for n in names)


def test_charts_without_matplotlib_is_a_clear_error(
    seeded: list[str],
    cli_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = cnrbot("--charts", "--out", str(tmp_path / "out"))
    assert code == 2
    assert "--charts needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


HOSTILE = [
    "   \u200b\u200b   Zéro largeur\u200b au milieu, mais lisible.",
    "\u202eالأطباء غير متوفرين في القرية\u202c texte RTL",
    "🏥🚑💊",
    "<script>alert('x')</script> & <b>gras</b> ; DROP TABLE contributions; --",
    "# Titre ? [lien](http://evil.example) ![img](x) | a | b | `code` *gras* _it_",
    "NUL\x00au\x00milieu\x01\x1f et contrôle",
    "Très long : " + "manque de médecins " * 260,
    "1. pas une liste\n- ni celle-ci\n\n\n====",
]


async def test_hostile_texts_are_exported_safely(
    engine: AsyncEngine, db_settings: Settings, backend: str, tmp_path: Path
) -> None:
    texts = HOSTILE
    if backend == "postgres":  # PostgreSQL cannot store NUL: storage strips it before
        texts = [t.replace("\x00", "") for t in HOSTILE]
    await seed(engine, [C(text, text, text) for text in texts])
    result = await run_export(
        db_settings,
        ExportRequest(campaign=CAMPAIGN, out=tmp_path, territories=("OISE",), region=True),
    )
    assert result.total == len(HOSTILE)
    docx_text = file_text(tmp_path / "HDF-2022_OISE.docx")
    odt_text = file_text(tmp_path / "HDF-2022_OISE.odt")
    md = (tmp_path / "HDF-2022_OISE.md").read_text(encoding="utf-8")
    for text in (docx_text, odt_text, md):
        assert "\x00" not in text and "\x01" not in text
        assert "🏥🚑💊" in text
        assert "NULaumilieu et contrôle" in text
        assert "الأطباء" in text
    # Markdown: no raw HTML, no link, no image, no heading, no table break from a citizen
    assert "<script>" not in md and "\\<script\\>" in md
    assert "\\[lien\\](http://evil.example)" in md
    assert "\n# Titre" not in md and "\\# Titre" in md
    assert "\\| a \\| b \\|" in md
    lines = [line for line in md.splitlines() if line.startswith("- ")]
    assert all(" — HDF-OISE-" in line for line in lines)
    assert any(line.startswith("- 1\\. pas une liste - ni celle-ci ====") for line in lines)
    long_line = next(line for line in lines if "Très long" in line)
    assert long_line.count("manque de médecins") == 260


def test_progress_bar_on_a_terminal(
    seeded: list[str],
    cli_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then treats the captured stderr as a terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    code = cnrbot("--format", "csv", "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 0
    assert "━" in err  # the bar
    assert "3/3" in err  # contributions read / total
