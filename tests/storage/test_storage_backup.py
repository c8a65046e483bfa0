"""``cnrbot db backup`` / ``restore``: a round trip on SQLite and PostgreSQL gives back exactly
what was backed up; wrong or damaged files are refused with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.backup import BackupError, backup, backup_kind, restore, summary
from storage.db import create_engine, current_revision, session_factory, upgrade
from storage.models import Contribution
from storage.settings import Settings
from tests.export_helpers import C, seed


async def _needs(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as s:
        return list(await s.scalars(select(Contribution.need).order_by(Contribution.reference)))


async def test_backup_then_restore_gives_back_what_was_backed_up(
    db_settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    await seed(engine, [C(need=f"Besoin numéro {i} : pas de médecin le samedi.") for i in range(3)])
    before = await _needs(engine)
    file = tmp_path / "cnr.backup"

    told = await backup(db_settings, file)
    assert (told.contributions, told.participants) == (3, 1)
    assert backup_kind(file) == (
        "sqlite" if db_settings.database_url.startswith("sqlite") else "postgresql"
    )

    # Life goes on after the backup: one erased, one more.
    async with session_factory(engine)() as s, s.begin():
        await s.execute(delete(Contribution).where(Contribution.need == before[0]))
    await seed(engine, [C(need="Un besoin arrivé après la sauvegarde, qui doit disparaître.")])
    assert len(await _needs(engine)) == 3 and await _needs(engine) != before
    await engine.dispose()

    restored = await restore(db_settings, file)
    assert (restored.contributions, restored.participants) == (3, 1)
    fresh = create_engine(db_settings)
    try:
        assert await _needs(fresh) == before
        assert await current_revision(fresh) is not None
        await upgrade(fresh)  # nothing left to do: the restore migrated it
    finally:
        await fresh.dispose()


async def test_a_restore_refuses_what_is_not_a_backup_of_this_kind(
    db_settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("pas une sauvegarde")
    with pytest.raises(BackupError, match="not a backup"):
        await restore(db_settings, junk)
    with pytest.raises(BackupError, match="cannot read"):
        await restore(db_settings, tmp_path / "missing.backup")
    other = tmp_path / "other.backup"
    if db_settings.database_url.startswith("sqlite"):
        other.write_bytes(b"PGDMP" + b"\0" * 100)
        with pytest.raises(BackupError, match="postgresql backup; this database is sqlite"):
            await restore(db_settings, other)
    else:
        other.write_bytes(b"SQLite format 3\x00" + b"\0" * 100)
        with pytest.raises(BackupError, match="sqlite backup; this database is postgresql"):
            await restore(db_settings, other)
    assert (await summary(db_settings)).contributions == 0  # nothing was touched


async def test_a_damaged_sqlite_backup_is_refused_and_the_database_kept(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    engine = create_engine(sqlite_settings)
    await upgrade(engine)
    await seed(engine, [C(need="Un besoin qui doit survivre à une restauration ratée.")])
    await engine.dispose()
    file = tmp_path / "cnr.backup"
    await backup(sqlite_settings, file)
    data = bytearray(file.read_bytes())
    for i in range(4096, len(data), 97):  # pages after the header, scrambled
        data[i] = (data[i] + 1) % 256
    file.write_bytes(bytes(data))
    with pytest.raises(BackupError):
        await restore(sqlite_settings, file)
    assert (await summary(sqlite_settings)).contributions == 1


async def test_backup_refuses_a_missing_directory(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(BackupError, match="no such directory"):
        await backup(sqlite_settings, tmp_path / "nowhere" / "cnr.backup")


def test_the_commands_round_trip(tmp_path: Path) -> None:
    """``cnrbot db backup`` and ``restore`` as an operator types them (SQLite)."""
    env = {
        "CNR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cnr.db",
        "CNR_SECRET_KEY": "backup-test-secret",
        "PATH": "/usr/bin:/bin",
    }

    def cnrbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert cnrbot("db", "upgrade").returncode == 0
    made = cnrbot("db", "backup", str(tmp_path / "b.sqlite"))
    assert made.returncode == 0, made.stderr
    assert "0 contribution(s)" in made.stdout
    back = cnrbot("db", "restore", str(tmp_path / "b.sqlite"))
    assert back.returncode == 0, back.stderr
    bad = cnrbot("db", "restore", str(tmp_path / "missing"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr
    assert "Traceback" not in bad.stderr
