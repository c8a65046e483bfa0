"""Nothing leaks: canary texts and a canary Telegram identity, planted through real
conversations on every channel, appear in no log line (every level, as ``cnrbot -v`` logs),
no error message, no audit entry, no metric, no console page and no export file — except the
moderated text itself where it is meant to be read (the contribution's page, the annex).

Canaries:
- ``CANARY_ID``: the Telegram user id and private chat id of one citizen (also looked for as
  it would be written in JSON or a URL);
- ``HIDDEN``: texts that must never be shown to staff or written anywhere readable: typed at
  a button step, too short to be kept, a command's argument, a contribution the citizen then
  deletes;
- ``KEPT``: the text of a contribution: only in its console pages and in the annex.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.access_log import AccessLogger
from bot.logs import LIBRARY_LEVELS, cap_libraries
from bot.metrics import refresh_gauges
from dialogs.messages import t
from storage.db import create_engine, session_factory
from storage.models import AuditEntry, Contribution
from storage.settings import Settings
from tests.fakebotapi import FakeUser
from tests.moderation_helpers import Console, add_account
from tests.outage import sqlite_locked
from tests.telegram_helpers import Citizen, running_bot, settle
from tests.web_helpers import WebCitizen, running_web

CANARY_ID = 7_301_994_251
#: Never to be shown or written in clear (typed at a button step, too short, an argument,
#: deleted by the citizen).
HIDDEN = {
    "button step": "Canari-Bouton-6120 je ne sais pas",
    "too short": "Canari-5551",
    "argument": "Canari-Argument-7007",
    "deleted": "Canari-Efface-3389 : le centre de santé ferme le samedi, plus personne.",
    "web button step": "Canari-Web-4242 rien compris",
    "terminal button step": "Canari-Terminal-1717 hein",
}
#: The text of a kept contribution: in the console's contribution pages and the annex only.
KEPT = "Canari-Garde-9090 : il manque un orthophoniste pour les enfants du canton."
SOLUTION = "Financer un poste partagé d'orthophoniste entre trois communes voisines."
DATE = "2022-11-20"


class Recorder(logging.Handler):
    """Every record, formatted as an operator would read it (message and traceback), in both
    formats: text, and the JSON lines of ``CNR_LOG_FORMAT=json``."""

    def __init__(self) -> None:
        from bot.logs import json_formatter

        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.json = json_formatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(self.json.format(record))


@pytest.fixture
def logs() -> Iterator[Recorder]:
    """Logging as ``cnrbot -v`` sets it up: the root at DEBUG, the chatty libraries at INFO."""
    root = logging.getLogger()
    recorder = Recorder()
    saved = root.level, {n: logging.getLogger(n).level for n in LIBRARY_LEVELS}
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    cap_libraries()
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def identity_forms() -> list[str]:
    """The canary id as it could be written: digits, in JSON, in a URL query."""
    return [str(CANARY_ID), f'"id": {CANARY_ID}', f"chat_id={CANARY_ID}"]


def assert_nothing_of(text: str, where: str, *, kept_allowed: bool = False) -> None:
    for form in identity_forms():
        assert form not in text, f"the canary Telegram id is in {where}"
    for name, secret in HIDDEN.items():
        assert secret[:18] not in text, f"the {name!r} canary is in {where}"
    if not kept_allowed:
        assert KEPT[:18] not in text, f"a contribution's text is in {where}"


async def _telegram(settings: Settings) -> None:
    async with running_bot(settings) as bot:
        c = Citizen(bot.api, FakeUser(id=CANARY_ID, first_name="Canari"))
        await c.say(f"/start {HIDDEN['argument']}")
        await c.expect(button="consent:yes")
        await c.say(HIDDEN["button step"])  # a text where a button is expected
        await c.expect(button="consent:yes")
        await c.press("consent:yes")
        await c.expect(button="t:OISE")
        await c.press("t:OISE")
        await c.expect(button="th:2")
        await c.press("th:2")
        await c.expect(text=t("fr", "need.prompt")[:30])
        await c.say(HIDDEN["too short"])
        await c.expect(text=t("fr", "need.prompt")[:20])
        # A database outage while a canary text is being handled: errors are logged.
        await settle(bot)
        async with sqlite_locked(settings):
            await c.say(KEPT)
            await c.expect(text=t("fr", "channel.temporary_problem"))
        await c.expect(text=t("fr", "solution.prompt")[:30], within=20)
        await c.say(SOLUTION)
        await c.expect(button="skip")
        await c.press("skip")
        await c.expect(button="p:usager")
        await c.press("p:usager")
        await c.expect(button="send")
        await c.press("send")
        await c.expect(text="HDF-OISE-")
        # A second contribution, cancelled before it is sent: its text is dropped.
        await c.expect(button="new")
        await c.press("new")
        await c.expect(button="th:1")
        await c.press("th:1")
        await c.expect(text=t("fr", "need.prompt")[:30])
        await c.say(HIDDEN["deleted"])
        await c.expect(text=t("fr", "solution.prompt")[:30])
        await c.say("/cancel")
        await c.expect(button="cancel:yes")
        await c.press("cancel:yes")
        await c.say("/mine")
        await c.expect(text="HDF-OISE-")
        await settle(bot)


async def _web(settings: Settings) -> None:
    async with running_web(settings) as chat, WebCitizen(chat, address="192.0.2.77") as w:
        await w.open("?territoire=" + HIDDEN["argument"])
        await w.write(HIDDEN["web button step"])
        await w.press("consent:yes")
        assert w.state in {"territory", "theme"}


def _terminal(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``cnrbot -v chat`` on a database of its own (the shipped campaign, on its dates)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        CNR_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/terminal.db",
        CNR_SECRET_KEY="terminal-canary-secret",
        PYTHONUNBUFFERED="1",
    )
    lines = [HIDDEN["terminal button step"], "1", "Oise", "2", HIDDEN["too short"], "/cancel"]
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "-v", "chat", "--date", DATE],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


async def _console(settings: Settings, engine: AsyncEngine, out: Path) -> dict[str, str]:
    """Every console page an administrator reads, after approving the kept contribution."""
    sessions = session_factory(engine)
    await add_account(sessions, "admin@ars.test", "admin", [])
    async with sessions() as s:
        row = (await s.execute(select(Contribution))).scalars().one()
        ref = row.reference
    from aiohttp import CookieJar
    from aiohttp.test_utils import TestClient, TestServer

    from moderation.app import create_app

    # As `cnrbot console` serves it (its access log included).
    server = TestServer(create_app(settings, sessions))
    await server.start_server(access_log_class=AccessLogger)
    con = Console(TestClient(server, cookie_jar=CookieJar(unsafe=True)))
    pages: dict[str, str] = {}
    try:
        assert await con.login("admin@ars.test") == 303
        for path in ("/contributions", "/contributions?q=Canari", f"/contributions/{ref}"):
            pages[path] = await (await con.client.get(path)).text()
        resp = await con.post(f"/contributions/{ref}/approve", {"version": "1"})
        assert resp.status in (200, 303)  # type: ignore[attr-defined]
        for path in ("/", "/dashboard", "/audit", "/audit.csv", "/exports", "/staff", "/aide"):
            pages[path] = await (await con.client.get(path)).text()
        exports_form = pages["/exports"]
        territory = re.search(r'<option value="(\d+)"[^>]*>[^<]*Oise', exports_form)
        assert territory, "no Oise in the exports form"
        for fmt in ("md", "csv", "json", "xlsx", "docx", "odt"):
            r = await con.post("/exports", {"territory": territory.group(1), "format": fmt})
            assert r.status == 200, fmt  # type: ignore[attr-defined]
            body = await r.read()  # type: ignore[attr-defined]
            (out / f"export.{fmt}").write_bytes(body)
    finally:
        await con.client.close()
    return pages


def _readable(path: Path) -> str:
    """The text of an export file (zip-based formats unpacked)."""
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return path.read_text(encoding="utf-8", errors="replace")


async def test_canaries_appear_nowhere_but_the_moderated_text(
    sqlite_settings: Settings, tmp_path: Path, logs: Recorder
) -> None:
    await _telegram(sqlite_settings)
    await _web(sqlite_settings)
    terminal = _terminal(tmp_path)
    assert terminal.returncode == 0, terminal.stderr[-2000:]

    engine = create_engine(sqlite_settings)
    try:
        out = tmp_path / "exports"
        out.mkdir()
        pages = await _console(sqlite_settings, engine, out)
        async with session_factory(engine)() as s:
            audit = [
                " ".join(str(v) for v in (a.action, a.target, a.before, a.after, a.actor))
                for a in (await s.execute(select(AuditEntry))).scalars()
            ]
            kept = (await s.execute(select(Contribution.need))).scalars().all()
        # What Prometheus would scrape after all this (the gauges read from this database).
        assert await refresh_gauges(engine)
        metrics = generate_latest(REGISTRY).decode()
    finally:
        await engine.dispose()

    # The planting worked: the outage was logged, the kept text was stored.
    assert kept == [KEPT]
    assert any("WARNING" in line or "ERROR" in line for line in logs.lines), logs.lines[-20:]
    assert len(logs.lines) > 20
    assert any(line.startswith('{"') for line in logs.lines)  # the JSON lines too

    assert_nothing_of("\n".join(logs.lines), "the logs")
    assert_nothing_of(terminal.stderr, "the terminal's log (cnrbot -v chat, stderr)")
    assert_nothing_of("\n".join(audit), "the audit log")
    assert 'cnrbot_messages_total{channel="telegram",outcome="done"}' in metrics
    assert_nothing_of(metrics, "the metrics")
    for path, html in pages.items():
        shows_the_text = path.startswith("/contributions")
        assert_nothing_of(html, f"the console page {path}", kept_allowed=shows_the_text)
        if path == "/contributions?q=Canari":
            assert KEPT[:18] in html  # a moderator finds it: the search is real
    for export in sorted(out.iterdir()):
        text = _readable(export)
        assert_nothing_of(text, f"the export {export.name}", kept_allowed=True)
        if export.suffix in (".md", ".csv", ".json"):
            assert KEPT[:18] in text  # the approved text itself is exported

    # The database file itself holds no identity in clear (the chat id is encrypted, the
    # participant key is a keyed hash) and no text the citizen did not send as a contribution.
    db_path = Path(sqlite_settings.database_url.split("///", 1)[1])
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = db_path.read_bytes().decode("latin-1")  # noqa: ASYNC240 (a test's last read)
    for form in identity_forms():
        assert form not in raw, "the canary Telegram id is stored in clear"
    for name in ("button step", "too short", "argument", "web button step"):
        assert HIDDEN[name][:18] not in raw, f"the {name!r} canary is stored in clear"


async def test_a_database_error_never_carries_the_texts_it_was_given(
    db_settings: Settings,
) -> None:
    """Its message can reach a log line or a traceback: the parameters are hidden."""
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(db_settings)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(sa.text("select no_such_column, :x"), {"x": KEPT})
    finally:
        await engine.dispose()
    assert "no_such_column" in str(caught.value)  # the statement is still there to debug
    assert KEPT[:18] not in str(caught.value)
