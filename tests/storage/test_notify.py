"""A moderation decision reaches the citizen within seconds: on PostgreSQL the console's
commit wakes the workers (``LISTEN``/``NOTIFY``, ``storage.notify``) long before their poll
would, also after the listening connection was lost; on SQLite the poll interval is a setting."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from dialogs.messages import t
from storage.db import create_engine, session_factory
from storage.models import Contribution, Outbox
from storage.notify import OutboxListener, outbox_queued
from storage.settings import Settings
from tests.moderation_helpers import Console, add_account, new_console
from tests.telegram_helpers import Bot, Citizen, contribute_fr, running_bot

pytestmark = pytest.mark.usefixtures("fast_hashing")  # cheap argon2 (tests/conftest.py)


#: The poll interval during these tests: any notice sent sooner was woken by a notification.
POLL = 60.0
#: How long a notice may take here (a loaded machine), far below POLL.
WITHIN = 10.0


def reference_in(text: str) -> str:
    found = re.search(r"HDF-OISE-\d{6}", text)
    assert found, text
    return found.group(0)


@asynccontextmanager
async def console_of(bot: Bot) -> AsyncIterator[Console]:
    """The staff console on its own engine (another process in production), an admin
    signed in."""
    engine = create_engine(bot.settings)

    await add_account(session_factory(engine), "admin@ars.test", "admin", [])
    console = await new_console(bot.settings, engine)
    try:
        assert await console.login("admin@ars.test") == 303
        yield console
    finally:
        await console.client.close()
        await engine.dispose()


async def approve(console: Console, reference: str) -> None:
    resp = await console.post(f"/contributions/{reference}/approve", {"version": "1"})
    assert resp.status == 303  # type: ignore[attr-defined]


@pytest.mark.postgres
async def test_a_console_approval_reaches_the_citizen_before_the_poll(
    pg_settings: Settings,
) -> None:
    async with running_bot(pg_settings, mode="webhook", notify_interval=POLL) as bot:
        notifier = bot.channel.notifier
        assert notifier.interval == POLL and notifier.listener is not None
        c = Citizen(bot.api, bot.api.user(8101))
        thanks = await contribute_fr(c)
        reference = reference_in(thanks.text)
        async with asyncio.timeout(WITHIN):
            await notifier.listener.wait_listening()
        async with console_of(bot) as console:
            await approve(console, reference)
            await c.expect(text=t("fr", "notify.approved", reference=reference), within=WITHIN)
        assert notifier.listener.received >= 1
        await notifier.stop()  # its round over: the row is marked
        async with bot.service.sessions() as session:
            (row,) = await session.scalars(select(Outbox))
        assert (row.status, row.attempts) == ("sent", 1)


@pytest.mark.postgres
async def test_the_listener_comes_back_after_its_connection_is_killed(
    pg_settings: Settings,
) -> None:
    """A PostgreSQL restart, for the listener: its backend is terminated; it reconnects and
    the next decision is still sent at once."""
    async with running_bot(pg_settings, mode="webhook", notify_interval=POLL) as bot:
        notifier = bot.channel.notifier
        listener = notifier.listener
        assert listener is not None
        first, second = (Citizen(bot.api, bot.api.user(8200 + i)) for i in range(2))
        refs = []
        for c in (first, second):
            thanks = await contribute_fr(c)
            refs.append(reference_in(thanks.text))
        async with asyncio.timeout(WITHIN):
            await listener.wait_listening()
        assert listener.connections == 1
        async with console_of(bot) as console:
            await approve(console, refs[0])
            await first.expect(text=t("fr", "notify.approved", reference=refs[0]), within=WITHIN)
            await _terminate_listener(bot, listener)
            async with asyncio.timeout(WITHIN):
                await listener.wait_listening(connections=2)
            await approve(console, refs[1])
            await second.expect(text=t("fr", "notify.approved", reference=refs[1]), within=WITHIN)
        assert len([m for m in first.messages if "HDF-OISE-" in m.text]) == 2  # thanks, notice


async def _terminate_listener(bot: Bot, listener: OutboxListener) -> None:
    conn = listener._conn
    assert conn is not None
    raw = (await conn.get_raw_connection()).driver_connection
    pid = raw.get_server_pid()  # type: ignore[union-attr]
    engine = create_engine(bot.settings)
    try:
        async with engine.connect() as admin:
            raw_admin = (await admin.get_raw_connection()).driver_connection
            assert await raw_admin.fetchval("SELECT pg_terminate_backend($1)", pid)  # type: ignore[union-attr]
    finally:
        await engine.dispose()


async def test_on_sqlite_the_poll_interval_is_a_setting(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"notify_poll_interval": timedelta(seconds=0.3)})
    async with running_bot(settings) as bot:
        notifier = bot.channel.notifier
        assert notifier.interval == 0.3 and notifier.listener is None
        c = Citizen(bot.api, bot.api.user(8301))
        thanks = await contribute_fr(c)
        reference = reference_in(thanks.text)
        async with bot.service.sessions() as session, session.begin():
            contribution = (await session.scalars(select(Contribution))).one()
            session.add(
                Outbox(
                    participant_id=contribution.participant_id,
                    dedupe_key=f"approved:{reference}",
                    kind="approved",
                    params={"reference": reference},
                )
            )
            await outbox_queued(session)  # nothing to do on SQLite, and no error
        await c.expect(text=t("fr", "notify.approved", reference=reference), within=WITHIN)


def test_the_default_poll_sends_within_five_seconds() -> None:
    assert Settings().notify_poll_interval < timedelta(seconds=5)
