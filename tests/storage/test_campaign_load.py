"""``cnrbot campaign load|list`` on SQLite and PostgreSQL (the real CLI, in process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.db import create_engine, session_factory
from storage.models import Campaign, Territory, Theme
from storage.settings import Settings
from tests.service_helpers import TEST_TOML


@pytest.fixture
def cli_env(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI reads its settings from the environment: point it at the test database."""
    for name in ("CNR_DATABASE_URL", "CNR_DATABASE_SCHEMA", "CNR_SECRET_KEY", "CNR_CAMPAIGN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    monkeypatch.setenv("CNR_SECRET_FILE", str(db_settings.secret_file))
    return db_settings


def counts(settings: Settings) -> tuple[int, int, int]:
    async def go() -> tuple[int, int, int]:
        engine = create_engine(settings)
        try:
            async with session_factory(engine)() as s:
                return (
                    int(await s.scalar(select(func.count(Campaign.id))) or 0),
                    int(await s.scalar(select(func.count(Territory.id))) or 0),
                    int(await s.scalar(select(func.count(Theme.id))) or 0),
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_load_twice_then_list(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "list"]) == 0
    assert "no campaign loaded" in capsys.readouterr().out
    assert main(["campaign", "load", str(TEST_TOML)]) == 0
    assert "campaign TEST-2022: loaded (3 territories" in capsys.readouterr().out
    assert counts(cli_env) == (1, 3, 6)
    assert main(["campaign", "load", str(TEST_TOML)]) == 0
    assert "already loaded, unchanged" in capsys.readouterr().out
    assert counts(cli_env) == (1, 3, 6)
    assert main(["campaign", "load", "france-departements.toml"]) == 0  # a shipped file by name
    capsys.readouterr()
    assert main(["campaign", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    # ordered by opening date
    assert [line.split("\t")[0] for line in out] == ["TEST-2022", "FRANCE-DEPARTEMENTS-2022"]
    assert any("101 territories" in line for line in out), out


def test_changed_file_updates(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaign", "load", str(TEST_TOML)]) == 0
    changed = tmp_path / "changed.toml"
    changed.write_text(TEST_TOML.read_text().replace("Territoire Nord", "Territoire du Nord"))
    assert main(["campaign", "load", str(changed)]) == 0
    assert "campaign TEST-2022: updated" in capsys.readouterr().out
    assert counts(cli_env) == (1, 3, 6)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.replace('code = "OISE"', 'code = "oise"'), "line 17, territories[1].code"),
        (lambda s: s.replace("[campaign]", "[campaign"), "line 2: TOML syntax error"),
        (lambda s: s.replace("opens_on = 2022-10-01\n", ""), "campaign.opens_on"),
        (lambda s: "", "campaign"),
        (lambda s: s.replace('label_fr = "Prévention', 'label_fr = "\x00Prévention'), "line"),
    ],
    ids=["bad-code", "syntax", "missing-field", "empty", "nul-byte"],
)
def test_invalid_file_is_refused_clearly(
    cli_env: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: object,
    expected: str,
) -> None:
    assert callable(mutate)
    bad = tmp_path / "bad.toml"
    bad.write_text(mutate(TEST_TOML.read_text()))
    assert main(["campaign", "load", str(bad)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    assert main(["campaign", "list"]) == 0
    assert "no campaign loaded" in capsys.readouterr().out


def test_missing_file(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "load", "/nonexistent/campaign.toml"]) == 2
    err = capsys.readouterr().err
    assert "campaign.toml" in err


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00garbage\x00", b"\x00" * 100, '[campaign]\ncode = "\u202eABC"\n'.encode()],
    ids=["binary", "nul-bytes", "rtl-code"],
)
def test_broken_bytes_are_refused(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    assert main(["campaign", "load", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "Traceback" not in err


def test_a_directory_is_refused(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaign", "load", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err
