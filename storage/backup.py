"""Backups of the database, and their restore (``cnrbot db backup FILE``, ``cnrbot db restore
FILE``).

- SQLite: SQLite's online backup API copies the live database page by page into a new file
  (consistent even while workers write), checked with ``PRAGMA integrity_check`` and then moved
  into place, so a half-written backup never carries the name asked for. A restore copies the
  backup into the live file the same way (stop the workers first: a restore replaces
  everything).
- PostgreSQL: ``pg_dump`` in its custom format (of ``settings.database_schema`` only when one is
  set), and ``pg_restore --clean --if-exists --single-transaction`` (all or nothing). The
  client tools must be those of the server's major version or newer (Debian:
  ``postgresql-client``).

The file's first bytes tell its kind: a restore refuses a SQLite file on PostgreSQL and the
reverse, and any file that is neither. After a restore the schema is brought to the current
migration (an older backup is migrated forward). Secrets are never part of a backup:
``CNR_SECRET_KEY`` (or the secret file) must be kept apart, or the encrypted chat ids and the
pseudonymous keys in the backup are of no use.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

from storage.db import create_engine, session_factory, upgrade
from storage.models import Contribution, Participant
from storage.settings import Settings

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why, for an operator."""


@dataclass(frozen=True)
class Summary:
    """What a database holds, told before and after a backup or a restore."""

    contributions: int
    participants: int

    def __str__(self) -> str:
        return f"{self.contributions} contribution(s), {self.participants} participant(s)"


async def summary(settings: Settings) -> Summary:
    engine = create_engine(settings)
    try:
        async with session_factory(engine)() as session:
            contributions = await session.scalar(select(func.count()).select_from(Contribution))
            participants = await session.scalar(select(func.count()).select_from(Participant))
    finally:
        await engine.dispose()
    return Summary(int(contributions or 0), int(participants or 0))


async def backup(settings: Settings, target: Path) -> Summary:
    """Write a backup of the database to ``target`` (replaced if it exists)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        await asyncio.to_thread(_sqlite_backup, _sqlite_path(url), target)
    else:
        await asyncio.to_thread(_pg_dump, url, settings.database_schema, target)
    return await summary(settings)


async def restore(settings: Settings, source: Path) -> Summary:
    """Replace the database's content by the backup in ``source``, then migrate it."""
    url = make_url(settings.database_url)
    kind = backup_kind(source)
    backend = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"
    if kind != backend:
        raise BackupError(f"{source} is a {kind} backup; this database is {backend}")
    if backend == "sqlite":
        await asyncio.to_thread(_sqlite_restore, source, _sqlite_path(url))
    else:
        await asyncio.to_thread(_pg_restore, url, source)
    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return await summary(settings)


def backup_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql``, from the file's first bytes; else :class:`BackupError`."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from exc
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a backup made by cnrbot db backup")


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database).resolve()


def _sqlite_copy(source: sqlite3.Connection, target: Path) -> None:
    """Copy ``source`` into a new file beside ``target``, check it, then move it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        dest = sqlite3.connect(tmp)
        try:
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            (verdict,) = dest.execute("PRAGMA integrity_check").fetchone()
            if verdict != "ok":
                raise BackupError(f"the copy is damaged: {verdict}")
        finally:
            dest.close()
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _checked_target(target: Path) -> Path:
    target = target.resolve()
    if not target.parent.is_dir():
        raise BackupError(f"no such directory: {target.parent}")
    return target


def _sqlite_backup(database: Path, target: Path) -> None:
    target = _checked_target(target)
    if not database.exists():
        raise BackupError(f"no database at {database}")
    if database == target:
        raise BackupError("the backup cannot be the database itself")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        _sqlite_copy(source, target)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite: {exc}") from exc
    finally:
        source.close()


def _sqlite_restore(source: Path, database: Path) -> None:
    backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        (verdict,) = backup_db.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise BackupError(f"{source} is damaged: {verdict}")
        database.parent.mkdir(parents=True, exist_ok=True)
        live = sqlite3.connect(database, timeout=30)
        try:
            # Page by page into the live database (WAL included): other connections see the
            # restored content at their next transaction.
            backup_db.backup(live)
        finally:
            live.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite: {exc}") from exc
    finally:
        backup_db.close()


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_environment(url: URL) -> dict[str, str]:
    """libpq's variables for ``url`` (the password never on a command line)."""
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[name] = str(value)
    return env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return path


def _run(args: list[str], url: URL) -> None:
    done = subprocess.run(  # noqa: S603 (the client tool's path and our own options)
        args, env=_pg_environment(url), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tool = Path(args[0]).name
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{tool} failed: {detail}")


def _pg_dump(url: URL, schema: str | None, target: Path) -> None:
    target = _checked_target(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        args = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={tmp}"]
        if schema:
            args.append(f"--schema={schema}")
        _run(args, url)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _pg_restore(url: URL, source: Path) -> None:
    _run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={url.database}",
            str(source),
        ],
        url,
    )
