"""``cnrbot db upgrade|current|purge-drafts|maintenance|backup|restore|rotate-keys``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from storage.db import create_engine, current_revision, upgrade
from storage.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("db")
    dbsub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="create or migrate the database to the latest schema")
    up.set_defaults(func=_upgrade)
    cur = dbsub.add_parser("current", help="print the schema revision of the database")
    cur.set_defaults(func=_current)
    purge = dbsub.add_parser(
        "purge-drafts",
        help="erase drafts and unanswered notices idle longer than CNR_DRAFT_TTL (daily)",
    )
    purge.set_defaults(func=_purge_drafts)
    maint = dbsub.add_parser(
        "maintenance",
        help=(
            "once: erase expired drafts, delete processed updates older than "
            "CNR_INBOUND_RETENTION, mark notices interrupted by a crash as failed, erase "
            "identities and rejected texts past their retention "
            "(the running bot does it every CNR_MAINTENANCE_INTERVAL)"
        ),
    )
    maint.add_argument(
        "--dry-run", action="store_true", help="report what would be erased; change nothing"
    )
    maint.set_defaults(func=_maintenance)
    back = dbsub.add_parser(
        "backup", help="write a backup of the database to FILE (online: workers may run)"
    )
    back.add_argument("file", type=Path, metavar="FILE")
    back.set_defaults(func=_backup)
    rest = dbsub.add_parser(
        "restore",
        help="replace the database's content by the backup in FILE (stop the workers first)",
    )
    rest.add_argument("file", type=Path, metavar="FILE")
    rest.set_defaults(func=_restore)
    rot = dbsub.add_parser(
        "rotate-keys",
        help=(
            "re-encrypt and re-key with CNR_SECRET_KEY what CNR_PREVIOUS_SECRET_KEYS encrypted "
            "(see storage/keys.py)"
        ),
    )
    rot.set_defaults(func=_rotate_keys)


def _upgrade(args: argparse.Namespace) -> int:
    async def go() -> str | None:
        engine = create_engine(Settings())
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    print(f"database at revision {asyncio.run(go())}")
    return 0


def _current(args: argparse.Namespace) -> int:
    async def go() -> str | None:
        engine = create_engine(Settings())
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    print(asyncio.run(go()) or "empty database (run `cnrbot db upgrade`)")
    return 0


def _purge_drafts(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from storage.db import session_factory
    from storage.maintenance import purge_expired_drafts, purge_unconsented

    settings = Settings()

    async def go() -> tuple[int, int]:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            now = datetime.now(UTC)
            async with session_factory(engine)() as session, session.begin():
                drafts = await purge_expired_drafts(session, now, settings.draft_ttl)
                people = await purge_unconsented(session, now, settings.draft_ttl)
            return drafts, people
        finally:
            await engine.dispose()

    drafts, people = asyncio.run(go())
    print(f"expired drafts erased: {drafts}; unanswered privacy notices erased: {people}")
    return 0


def _maintenance(args: argparse.Namespace) -> int:
    from storage.db import session_factory
    from storage.maintenance import MaintenanceReport, outbox_counts, run_maintenance

    settings = Settings()

    async def go() -> tuple[MaintenanceReport, dict[str, int]]:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            sessions = session_factory(engine)
            report = await run_maintenance(sessions, settings, dry_run=args.dry_run)
            async with sessions() as session:
                counts = await outbox_counts(session)
            return report, counts
        finally:
            await engine.dispose()

    report, counts = asyncio.run(go())
    print(report.summary())
    print("outbox: " + ", ".join(f"{status} {n}" for status, n in counts.items()))
    return 1 if report.errors else 0


def _backup(args: argparse.Namespace) -> int:
    return _backup_or_restore("backup", args.file)


def _restore(args: argparse.Namespace) -> int:
    return _backup_or_restore("restore", args.file)


def _backup_or_restore(action: str, file: Path) -> int:
    from storage import backup as backups

    run = backups.backup if action == "backup" else backups.restore
    try:
        told = asyncio.run(run(Settings(), file))
    except backups.BackupError as exc:
        print(f"cnrbot db {action}: {exc}", file=sys.stderr)
        return 2
    done = f"backup written to {file}" if action == "backup" else f"database restored from {file}"
    print(f"{done}: {told}")
    return 0


def _rotate_keys(args: argparse.Namespace) -> int:
    from storage.keys import rotate_keys

    settings = Settings()
    if not settings.previous_secret_keys:
        print(
            "cnrbot db rotate-keys: set the new secret in CNR_SECRET_KEY and the old one in "
            'CNR_PREVIOUS_SECRET_KEYS (e.g. ["old secret"]) first',
            file=sys.stderr,
        )
        return 2

    async def go() -> str:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            return str(await rotate_keys(settings, engine))
        finally:
            await engine.dispose()

    print(asyncio.run(go()))
    return 0
