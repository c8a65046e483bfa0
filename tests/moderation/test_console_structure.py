"""The console's plumbing: its engine lives and dies with the application, an export runs off
the event loop on the console's own engine, spreadsheets get one neutraliser, and the CLI and
the console add a staff member with the same audit entry."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import exporter.run
from exporter.rows import RowMaker
from exporter.source import CampaignData, Item, TerritoryInfo
from moderation.app import create_app
from moderation.services.audit import audit_csv
from storage.db import session_factory
from storage.models import AuditEntry, Contribution
from storage.settings import Settings
from tests.moderation_helpers import Console, World

#: What a spreadsheet would run as a formula, or might after trimming leading blanks.
HOSTILE_CELLS = (
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "\n=1",
    " =HYPERLINK(1)",
    "  +1",
    " @x",
    "＝1",
)


async def test_the_engine_is_disposed_when_the_console_stops(
    db_settings: Settings, engine: AsyncEngine, world: World, staff_ids: dict[str, int]
) -> None:
    closed: list[str] = []
    event.listen(engine.sync_engine, "close", lambda *_: closed.append("closed"))
    client = TestClient(
        TestServer(create_app(db_settings, session_factory(engine))),
        cookie_jar=CookieJar(unsafe=True),
    )
    await client.start_server()
    try:
        closed.clear()  # (starting on SQLite recycles the seeding's connections)
        con = Console(client)
        assert await con.login("admin@ars.test") == 303  # connections opened and pooled
        assert engine.pool.checkedin() >= 1
        assert closed == []
    finally:
        await client.close()  # the application stops: its cleanup context runs
    assert closed  # the pooled connections were closed
    assert engine.pool.checkedin() == 0


async def test_an_export_runs_off_the_loop_on_the_consoles_engine(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with sessions() as s:
        await s.execute(
            update(Contribution)
            .where(Contribution.reference == "HDF-OISE-000001")
            .values(status="approved")
        )
        await s.commit()

    def no_new_engine(_settings: Settings) -> AsyncEngine:
        raise AssertionError("a console export opened an engine of its own")

    monkeypatch.setattr(exporter.run, "create_engine", no_new_engine)
    events: list[str] = []
    started, release = threading.Event(), threading.Event()
    write_markdown = exporter.run.write_markdown

    def slow_markdown(*args: Any, **kwargs: Any) -> None:
        events.append("writing started")
        started.set()
        release.wait(60)  # held until the test has had its other page (bounded if blocked)
        write_markdown(*args, **kwargs)

    monkeypatch.setattr(exporter.run, "write_markdown", slow_markdown)
    client = TestClient(
        TestServer(create_app(db_settings, session_factory(engine))),
        cookie_jar=CookieJar(unsafe=True),
    )
    await client.start_server()
    con = Console(client)
    try:
        assert await con.login("admin@ars.test") == 303
        export = asyncio.ensure_future(
            con.post("/exports", {"territory": str(world.territories["OISE"]), "format": "md"})
        )
        assert await asyncio.to_thread(started.wait, 60)
        page = await client.get("/contributions")
        assert page.status == 200
        events.append("page answered" if not export.done() else "page after the export")
        release.set()
        resp: Any = await export
        assert resp.status == 200
        assert "HDF-OISE-000001" in (await resp.read()).decode()
        events.append("export sent")
    finally:
        release.set()
        await client.close()
    assert events == ["writing started", "page answered", "export sent"]


def test_one_neutraliser_for_the_exports_and_the_audit_journal() -> None:
    campaign = CampaignData(
        id=1,
        code="C",
        name="C",
        region="R",
        timezone="Europe/Paris",
        context="",
        perspectives="",
        territories=(TerritoryInfo(1, "OISE", "Oise", ""),),
        themes=(),
    )
    rows = RowMaker(campaign)
    at = datetime(2022, 11, 20, tzinfo=UTC)
    for hostile in (*HOSTILE_CELLS, "texte ordinaire", "a=b"):
        item = Item(
            reference="R-1",
            submitted_at=at,
            territory="OISE",
            theme_code="1",
            theme_number=1,
            supplementary=None,
            need=hostile,
            solution="s",
            levers="",
            profile=None,
            language="fr",
            channel="web",
        )
        exported = rows.cells(item)[list(rows.row(item)).index("need")]
        entry = AuditEntry(
            id=1, at=at, actor=hostile, action="login_failed", target=hostile, before=None
        )
        journal = next(csv.DictReader(io.StringIO(audit_csv([entry]).decode("utf-8-sig"))))
        expected = "'" + hostile if hostile in HOSTILE_CELLS else hostile
        assert exported == expected, hostile
        assert journal["actor"] == expected and journal["target"] == expected, hostile


async def test_the_cli_and_the_console_audit_a_new_account_alike(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.cli import main

    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("CNR_SECRET_KEY", "test-secret-not-for-production")
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    monkeypatch.setattr(sys, "stdin", io.StringIO("un mot de passe piped\n"))
    argv = ["staff", "add", "cli@ars.test", "--role", "moderator", "--territory", "OISE"]
    assert await asyncio.to_thread(main, argv) == 0
    client = TestClient(
        TestServer(create_app(db_settings, session_factory(engine))),
        cookie_jar=CookieJar(unsafe=True),
    )
    await client.start_server()
    con = Console(client)
    try:
        assert await con.login("admin@ars.test") == 303
        resp: Any = await con.post(
            "/staff",
            {
                "email": "web@ars.test",
                "role": "moderator",
                "territories": str(world.territories["OISE"]),
            },
        )
        assert resp.status == 200
    finally:
        await client.close()
    async with sessions() as s:
        entries = list(
            await s.scalars(
                select(AuditEntry).where(AuditEntry.action == "staff_add").order_by(AuditEntry.id)
            )
        )
    assert [(e.actor, e.target, e.after) for e in entries] == [
        ("cli", "cli@ars.test", {"role": "moderator", "territories": ["OISE"]}),
        ("admin@ars.test", "web@ars.test", {"role": "moderator", "territories": ["OISE"]}),
    ]
    assert entries[0].staff_id is None and entries[1].staff_id == staff_ids["admin"]
