"""Messages the bot sends on its own: moderation news from the outbox (exactly once) and one
reminder per idle draft (never at night), through the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.core.notifier import in_quiet_hours
from dialogs.messages import t
from storage.maintenance import INTERRUPTED, run_maintenance
from storage.models import ChatIdentity, ConversationRow, InboundMessage, Outbox, Participant
from storage.settings import Settings
from tests.telegram_helpers import (
    NEED_FR,
    Bot,
    Citizen,
    contribute_fr,
    running_bot,
    settle,
)


def noon_utc(days: int) -> datetime:
    """11:00 UTC some days ahead: 12:00 or 13:00 in Paris, never quiet."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(
        hour=11, minute=0, second=0, microsecond=0
    )


async def queue(bot: Bot, participant_id: int, kind: str, dedupe: str, **params: str) -> None:
    async with bot.service.sessions() as session, session.begin():
        session.add(
            Outbox(participant_id=participant_id, dedupe_key=dedupe, kind=kind, params=params)
        )


async def participant_ids(bot: Bot) -> list[int]:
    async with bot.service.sessions() as session:
        return list(await session.scalars(select(Participant.id).order_by(Participant.id)))


async def test_moderation_notices_are_sent_exactly_once(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, notify_interval=3600) as bot:
        fr = Citizen(bot.api, bot.api.user(7001, lang="fr"))
        await contribute_fr(fr)
        (pid,) = await participant_ids(bot)
        await queue(bot, pid, "approved", "approved:HDF-OISE-000001", reference="HDF-OISE-000001")
        await queue(
            bot,
            pid,
            "rejected",
            "rejected:HDF-OISE-000001",
            reference="HDF-OISE-000001",
            reason="personal_data",
        )
        before = len(fr.messages)
        notifier = bot.channel.notifier
        assert await notifier.run_once() == 2
        assert await notifier.run_once() == 0
        texts = [m.text for m in fr.messages[before:]]
        assert texts == [
            t("fr", "notify.approved", reference="HDF-OISE-000001"),
            t(
                "fr",
                "notify.rejected",
                reference="HDF-OISE-000001",
                reason=t("fr", "reject_reason.personal_data"),
            ),
        ]
        async with bot.service.sessions() as session:
            rows = list(await session.scalars(select(Outbox)))
        assert {r.status for r in rows} == {"sent"} and all(r.sent_at for r in rows)


async def test_notice_to_a_blocked_citizen_fails_quietly(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, notify_interval=3600) as bot:
        c = Citizen(bot.api, bot.api.user(7002))
        await contribute_fr(c)
        (pid,) = await participant_ids(bot)
        bot.api.block(c.chat_id)
        await queue(bot, pid, "approved", "approved:x", reference="HDF-OISE-000001")
        # an unknown reason code still reads as a reason
        await queue(bot, pid, "rejected", "rejected:x", reference="R", reason="<script>")
        assert await bot.channel.notifier.run_once() == 0
        async with bot.service.sessions() as session:
            rows = list(await session.scalars(select(Outbox)))
            ident = await session.get(ChatIdentity, pid)
        assert {(r.status, r.last_error) for r in rows} == {("failed", "blocked")}
        assert ident is not None and ident.blocked


async def test_one_reminder_per_idle_draft_never_at_night(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, notify_interval=3600) as bot:
        fr = Citizen(bot.api, bot.api.user(7003, lang="fr"))
        en = Citizen(bot.api, bot.api.user(7004, lang="en"))
        done = Citizen(bot.api, bot.api.user(7005, lang="fr"))
        for c in (fr, en):
            await c.say("hello")
            await c.expect(button="consent:yes")
            await c.press("consent:yes")
            await c.expect(button="t:OISE")
        await contribute_fr(done)  # nothing left to remind
        await settle(bot)
        notifier = bot.channel.notifier
        seen = {c.chat_id: len(c.messages) for c in (fr, en, done)}
        # not idle long enough
        assert await notifier.run_once(datetime.now(UTC) + timedelta(hours=1)) == 0
        # idle long enough, but at 23:30 in Paris
        night = noon_utc(2).replace(hour=22, minute=30)
        assert in_quiet_hours(bot.settings, night)
        assert await notifier.run_once(night) == 0
        # the next day at noon
        assert await notifier.run_once(noon_utc(2)) == 2
        assert await notifier.run_once(noon_utc(3)) == 0
        assert [m.text for m in fr.messages[seen[fr.chat_id] :]] == [t("fr", "notify.reminder")]
        assert [m.text for m in en.messages[seen[en.chat_id] :]] == [t("en", "notify.reminder")]
        assert len(done.messages) == seen[done.chat_id]
        async with bot.service.sessions() as session:
            reminded = list(
                await session.scalars(
                    select(ConversationRow.reminded_at).where(
                        ConversationRow.reminded_at.is_not(None)
                    )
                )
            )
        assert len(reminded) == 2
        # the citizen goes on: the conversation works as before
        await fr.press("t:OISE")
        await fr.expect(button="th:1")


def test_quiet_hours_over_midnight_and_within_a_day(sqlite_settings: Settings) -> None:
    s = sqlite_settings
    paris_noon = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)  # 12:00 in Paris (winter)
    assert not in_quiet_hours(s, paris_noon)
    assert in_quiet_hours(s, datetime(2026, 1, 15, 20, 0, tzinfo=UTC))  # 21:00
    assert in_quiet_hours(s, datetime(2026, 1, 15, 6, 59, tzinfo=UTC))  # 07:59
    assert not in_quiet_hours(s, datetime(2026, 1, 15, 7, 0, tzinfo=UTC))  # 08:00
    day = s.model_copy(update={"quiet_hours_start": time(12), "quiet_hours_end": time(14)})
    assert in_quiet_hours(day, paris_noon)
    assert not in_quiet_hours(day, datetime(2026, 1, 15, 14, 0, tzinfo=UTC))


# --- crash recovery and periodic maintenance ------------------------------------------------


async def test_notice_interrupted_after_its_claim_is_never_sent(db_settings: Settings) -> None:
    """A crash between the claim and the send: the row stays "sending"; once older than
    CNR_OUTBOX_SENDING_TIMEOUT the maintenance marks it failed ("interrupted"), and nothing
    ever sends it (at most once)."""
    async with running_bot(db_settings, notify_interval=3600, maintenance_interval=3600) as bot:
        c = Citizen(bot.api, bot.api.user(7010))
        await contribute_fr(c)
        (pid,) = await participant_ids(bot)
        await queue(bot, pid, "approved", "approved:crash", reference="HDF-OISE-000001")
        notifier = bot.channel.notifier
        before = datetime.now(UTC)
        (claimed,) = await notifier.store.claim(["telegram"], skip_reminders=False)  # ... dies here
        async with bot.service.sessions() as session:
            row = await session.get(Outbox, claimed.id)
        assert row is not None and row.status == "sending"
        assert row.claimed_at is not None and row.claimed_at >= before
        seen = len(c.messages)
        sessions, settings = bot.service.sessions, bot.settings
        # still within the timeout: maybe in flight elsewhere, left alone
        assert (await run_maintenance(sessions, settings)).sends_interrupted == 0
        later = datetime.now(UTC) + settings.outbox_sending_timeout + timedelta(seconds=1)
        assert (await run_maintenance(sessions, settings, later)).sends_interrupted == 1
        assert await notifier.run_once() == 0
        async with bot.service.sessions() as session:
            row = await session.get(Outbox, claimed.id)
        assert row is not None and (row.status, row.last_error) == ("failed", INTERRUPTED)
        assert len(c.messages) == seen


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_running_bot_runs_maintenance_and_cancels_it_on_stop(
    db_settings: Settings, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="storage.maintenance")
    async with running_bot(
        db_settings, mode=mode, notify_interval=3600, maintenance_interval=3600
    ) as bot:
        maintenance = bot.channel.maintenance
        assert maintenance.running
        async with asyncio.timeout(30):
            await maintenance.wait_run(0)  # the run at start-up
        c = Citizen(bot.api, bot.api.user(7011))
        await contribute_fr(c)
        await settle(bot)
        (pid,) = await participant_ids(bot)
        long_ago = datetime.now(UTC) - timedelta(days=3)
        async with bot.service.sessions() as session, session.begin():
            done = await session.scalar(select(func.count()).where(InboundMessage.status == "done"))
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.status == "done")
                .values(received_at=long_ago, processed_at=long_ago)
            )
            session.add(
                Outbox(
                    participant_id=pid,
                    dedupe_key="approved:stuck",
                    kind="approved",
                    params={"reference": "HDF-OISE-000001"},
                    status="sending",
                    claimed_at=datetime.now(UTC) - timedelta(hours=1),
                )
            )
        assert done and done >= 8  # the whole contribution went through the inbox
        runs = maintenance.runs
        maintenance.wake()
        async with asyncio.timeout(30):
            report = await maintenance.wait_run(runs)
        assert report is not None and report.errors == []
        assert (report.updates_deleted, report.sends_interrupted) == (done, 1)
        async with bot.service.sessions() as session:
            left = await session.scalar(select(func.count()).select_from(InboundMessage))
        assert left == 0
        # the citizen goes on as before
        await c.say("/mine")
        await c.expect(text="HDF-OISE-")
    assert not maintenance.running and maintenance._task is None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"processed updates deleted: {done}" in logged
    assert NEED_FR[:20] not in logged and str(c.chat_id) not in logged
