"""Maintenance on SQLite and PostgreSQL: ``cnrbot db purge-drafts``, the purge of processed
Telegram updates, the recovery of interrupted outbox sends, ``cnrbot db maintenance`` and the
periodic loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.cli import main
from dialogs.model import Conversation
from storage import repository
from storage.db import create_engine, session_factory, upgrade
from storage.maintenance import (
    INTERRUPTED,
    MaintenanceLoop,
    outbox_counts,
    purge_processed_updates,
    purge_unconsented,
    recover_interrupted_sends,
    run_maintenance,
)
from storage.models import ConversationRow, InboundMessage, Outbox, Participant
from storage.settings import Settings

NOW = datetime.now(UTC)
T = TypeVar("T")


async def _setup(engine: AsyncEngine) -> dict[str, int]:
    sessions = session_factory(engine)
    ids: dict[str, int] = {}
    old = NOW - timedelta(days=30)
    async with sessions() as s, s.begin():
        for name, consent, updated, answers, state in (
            ("old_draft", "v1", old, {"theme": "2", "need": "Un constat assez long"}, "solution"),
            ("new_draft", "v1", NOW, {"theme": "2", "need": "Un autre constat long"}, "solution"),
            ("old_notice", None, old, {}, "consent"),
            ("new_notice", None, NOW, {}, "consent"),
        ):
            p = await repository.create_participant(s, name.ljust(64, "0"), "terminal", "fr", old)
            p.consent_version = consent
            conv = Conversation(state=state, answers=answers, version=3, consent_version=consent)
            await repository.insert_conversation(s, p.id, None, conv, updated)
            ids[name] = p.id
    return ids


async def _with_engine(settings: Settings, body: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        return await body(engine)
    finally:
        await engine.dispose()


def test_cli_purge_drafts(
    db_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI runs its own event loop: this test is synchronous, with engines of its own."""
    ids = asyncio.run(_with_engine(db_settings, _setup))
    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    monkeypatch.setenv("CNR_DRAFT_TTL", "P7D")
    assert main(["db", "purge-drafts"]) == 0
    out = capsys.readouterr().out
    assert "expired drafts erased: 1" in out and "unanswered privacy notices erased: 1" in out

    async def check(engine: AsyncEngine) -> None:
        async with session_factory(engine)() as s:
            people = set(await s.scalars(select(Participant.id)))
            data = {
                pid: d
                for pid, d in (
                    await s.execute(select(ConversationRow.participant_id, ConversationRow.data))
                ).all()
            }
        assert people == {ids["old_draft"], ids["new_draft"], ids["new_notice"]}
        assert "need" not in data[ids["old_draft"]]["answers"]
        assert data[ids["old_draft"]]["answers"]["theme"] == "2"
        assert data[ids["new_draft"]]["answers"]["need"] == "Un autre constat long"

    asyncio.run(_with_engine(db_settings, check))


async def test_purge_unconsented_keeps_consented(engine: AsyncEngine) -> None:
    ids = await _setup(engine)
    async with session_factory(engine)() as s, s.begin():
        assert await purge_unconsented(s, NOW, timedelta(days=7)) == 1
    async with session_factory(engine)() as s:
        people = set(await s.scalars(select(Participant.id)))
    assert ids["old_notice"] not in people and len(people) == 3


# --- processed Telegram updates ---------------------------------------------------------------

SECRET = b"gAAAA-encrypted-message-text"
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
#: name -> (status, received hours ago, processed hours ago or None, payload)
UPDATES: dict[str, tuple[str, int, int | None, bytes | None]] = {
    "old_done": ("done", 72, 72, None),
    "old_failed": ("failed", 72, 71, SECRET),  # a payload left behind: erased then deleted
    "recent_failed": ("failed", 3, 3, SECRET),  # kept, but its payload erased
    "recent_done": ("done", 3, 3, None),
    "received_old_processed_recently": ("done", 72, 1, None),
    "old_pending": ("pending", 72, None, SECRET),  # never purged
    "old_applied": ("applied", 72, 70, SECRET),  # never purged
}


async def _insert_updates(engine: AsyncEngine, now: datetime = NOW) -> dict[str, int]:
    ids = {}
    async with session_factory(engine)() as s, s.begin():
        for n, (name, (status, received, processed, payload)) in enumerate(UPDATES.items()):
            s.add(
                InboundMessage(
                    channel="telegram",
                    message_id=str(10_000 + n),
                    seq=10_000 + n,
                    participant_key=f"k{n}".ljust(64, "0"),
                    payload=payload,
                    status=status,
                    received_at=now - received * HOUR,
                    processed_at=None if processed is None else now - processed * HOUR,
                )
            )
            ids[name] = 10_000 + n
    return ids


async def _updates(engine: AsyncEngine) -> dict[int, tuple[str, bytes | None]]:
    async with session_factory(engine)() as s:
        rows = await s.execute(
            select(InboundMessage.seq, InboundMessage.status, InboundMessage.payload)
        )
        return {uid: (status, payload) for uid, status, payload in rows.all()}


async def test_purge_processed_updates_keeps_what_telegram_may_redeliver(
    engine: AsyncEngine,
) -> None:
    ids = await _insert_updates(engine)
    async with session_factory(engine)() as s, s.begin():
        assert await purge_processed_updates(s, NOW, timedelta(hours=48)) == 2
    left = await _updates(engine)
    assert set(left) == {ids[n] for n in UPDATES} - {ids["old_done"], ids["old_failed"]}
    assert left[ids["recent_failed"]] == ("failed", None)  # privacy: no text kept
    assert left[ids["old_pending"]] == ("pending", SECRET)  # still to be applied
    assert left[ids["old_applied"]] == ("applied", SECRET)  # its replies still to be sent
    # idempotent: a second run (another worker, the next hour) finds nothing
    async with session_factory(engine)() as s, s.begin():
        assert await purge_processed_updates(s, NOW, timedelta(hours=48)) == 0
    assert await _updates(engine) == left
    # exactly 24 h is allowed, and then purges what was processed more than 24 h ago
    async with session_factory(engine)() as s, s.begin():
        assert await purge_processed_updates(s, NOW, timedelta(hours=24)) == 0
        assert await purge_processed_updates(s, NOW + 22 * HOUR, timedelta(hours=24)) == 2
        # processed (not received) long enough ago decides
        assert ids["received_old_processed_recently"] in await _updates_in(s)
        assert await purge_processed_updates(s, NOW + 24 * HOUR, timedelta(hours=24)) == 1
        assert set(await _updates_in(s)) == {ids["old_pending"], ids["old_applied"]}


async def _updates_in(session: AsyncSession) -> list[int]:
    return list(await session.scalars(select(InboundMessage.seq)))


def test_inbound_retention_below_redelivery_window_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    assert Settings().inbound_retention == timedelta(hours=48)
    for bad in ("PT23H59M", "PT1H", "0", "-P2D"):
        monkeypatch.setenv("CNR_INBOUND_RETENTION", bad)
        with pytest.raises(ValidationError, match="inbound_retention"):
            Settings()
    monkeypatch.setenv("CNR_INBOUND_RETENTION", "PT24H")
    assert Settings().inbound_retention == timedelta(hours=24)
    for name in ("CNR_OUTBOX_SENDING_TIMEOUT", "CNR_MAINTENANCE_INTERVAL"):
        for bad in ("0", "-PT1M", "PT0S"):
            monkeypatch.setenv(name, bad)
            with pytest.raises(ValidationError, match=name.removeprefix("CNR_").lower()):
                Settings()
        monkeypatch.delenv(name)

    async def never_called() -> None:
        with pytest.raises(ValueError, match="24 hours"):
            await purge_processed_updates(None, NOW, timedelta(hours=23))  # type: ignore[arg-type]

    asyncio.run(never_called())


# --- interrupted outbox sends -----------------------------------------------------------------

#: name -> (status, claimed minutes ago or None, created minutes ago)
OUTBOX: dict[str, tuple[str, int | None, int]] = {
    "crashed": ("sending", 11, 60),
    "in_flight": ("sending", 1, 60),
    "crashed_before_claimed_at": ("sending", None, 24 * 60),
    "queued_long_ago": ("pending", None, 24 * 60),
    "sent": ("sent", 30, 60),
    "blocked": ("failed", 30, 60),
}


async def _insert_outbox(engine: AsyncEngine, now: datetime = NOW) -> dict[str, int]:
    """The notices of OUTBOX, their times before ``now``: the module's NOW for the tests that
    pass it to the maintenance, the real time for those run at the real time (NOW is when the
    module was imported: a long run makes it older than the 10-minute sending timeout)."""
    minute = timedelta(minutes=1)
    ids = {}
    async with session_factory(engine)() as s, s.begin():
        p = await repository.create_participant(s, "o".ljust(64, "0"), "telegram", "fr", NOW)
        rows = {}
        for name, (status, claimed, created) in OUTBOX.items():
            rows[name] = Outbox(
                participant_id=p.id,
                dedupe_key=f"approved:{name}",
                kind="approved",
                params={"reference": "HDF-OISE-000001"},
                status=status,
                attempts=1,
                created_at=now - created * minute,
                claimed_at=None if claimed is None else now - claimed * minute,
                last_error="blocked" if status == "failed" else None,
            )
            s.add(rows[name])
        await s.flush()
        ids = {name: row.id for name, row in rows.items()}
    return ids


async def _outbox(engine: AsyncEngine) -> dict[int, tuple[str, str | None]]:
    async with session_factory(engine)() as s:
        rows = await s.execute(select(Outbox.id, Outbox.status, Outbox.last_error))
        return {oid: (status, error) for oid, status, error in rows.all()}


async def test_recover_interrupted_sends_marks_them_failed_never_pending(
    engine: AsyncEngine,
) -> None:
    ids = await _insert_outbox(engine)
    async with session_factory(engine)() as s, s.begin():
        assert await recover_interrupted_sends(s, NOW, timedelta(minutes=10)) == 2
    rows = await _outbox(engine)
    assert rows[ids["crashed"]] == ("failed", INTERRUPTED)
    assert rows[ids["crashed_before_claimed_at"]] == ("failed", INTERRUPTED)
    assert rows[ids["in_flight"]] == ("sending", None)
    assert rows[ids["queued_long_ago"]] == ("pending", None)
    assert rows[ids["sent"]] == ("sent", None)
    assert rows[ids["blocked"]] == ("failed", "blocked")
    async with session_factory(engine)() as s, s.begin():
        assert await recover_interrupted_sends(s, NOW, timedelta(minutes=10)) == 0
        assert await outbox_counts(s) == {"pending": 1, "sending": 1, "sent": 1, "failed": 3}


async def test_web_replies_are_erased_after_their_retention_and_counters_after_their_window(
    engine: AsyncEngine, db_settings: Settings
) -> None:
    """The web chat keeps a message's replies (encrypted) for a reload or a retry, then the
    maintenance erases them; expired rate counters are deleted."""
    from storage.models import RateCounter

    async with session_factory(engine)() as s, s.begin():
        for n, processed in enumerate((NOW - 2 * HOUR, NOW - 10 * MINUTE)):
            s.add(
                InboundMessage(
                    channel="web",
                    message_id=f"web-message-{n}",
                    seq=n,
                    participant_key="w".ljust(64, "0"),
                    payload=None,
                    replies=SECRET,
                    status="done",
                    received_at=processed,
                    processed_at=processed,
                )
            )
        s.add(RateCounter(bucket="old", count=3, expires_at=NOW - MINUTE))
        s.add(RateCounter(bucket="current", count=1, expires_at=NOW + MINUTE))
    report = await run_maintenance(session_factory(engine), db_settings, NOW)
    assert report.errors == [] and (report.replies_erased, report.counters_deleted) == (1, 1)
    async with session_factory(engine)() as s:
        kept = dict(
            (await s.execute(select(InboundMessage.message_id, InboundMessage.replies))).all()
        )
        counters = list(await s.scalars(select(RateCounter.bucket)))
    assert kept == {"web-message-0": None, "web-message-1": SECRET}  # the rows stay (no replay)
    assert counters == ["current"]


# --- all together: concurrent workers, the CLI, the loop -------------------------------------


async def test_concurrent_maintenance_runs_do_each_thing_once(
    engine: AsyncEngine, db_settings: Settings
) -> None:
    """Two workers at the same moment (separate engines, so separate connections)."""
    await _setup(engine)
    await _insert_updates(engine)
    await _insert_outbox(engine)
    other = create_engine(db_settings)
    try:
        reports = await asyncio.gather(
            run_maintenance(session_factory(engine), db_settings, NOW),
            run_maintenance(session_factory(other), db_settings, NOW),
        )
    finally:
        await other.dispose()
    assert [r.errors for r in reports] == [[], []]
    assert sum(r.drafts_purged for r in reports) == 1
    assert sum(r.unanswered_erased for r in reports) == 1  # old_notice
    assert sum(r.updates_deleted for r in reports) == 2
    assert sum(r.payloads_erased for r in reports) == 2  # old_failed, recent_failed
    assert sum(r.sends_interrupted for r in reports) == 2
    again = await run_maintenance(session_factory(engine), db_settings, NOW)
    assert again.summary() == (
        "expired drafts erased: 0; unanswered privacy notices erased: 0; "
        "processed updates deleted: 0; update payloads erased: 0; web replies erased: 0; "
        "interrupted notices marked failed: 0; expired rate counters deleted: 0; "
        "identities erased after their campaign: 0; rejected texts erased: 0"
    )
    assert len(await _updates(engine)) == len(UPDATES) - 2


def test_cli_maintenance(
    db_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def setup(engine: AsyncEngine) -> None:
        await _setup(engine)
        await _insert_updates(engine, now=datetime.now(UTC))
        await _insert_outbox(engine, now=datetime.now(UTC))

    asyncio.run(_with_engine(db_settings, setup))
    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    assert main(["db", "maintenance"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "expired drafts erased: 1; unanswered privacy notices erased: 1; "
        "processed updates deleted: 2; update payloads erased: 2; web replies erased: 0; "
        "interrupted notices marked failed: 2; expired rate counters deleted: 0; "
        "identities erased after their campaign: 0; rejected texts erased: 0",
        "outbox: pending 1, sending 1, sent 1, failed 3",
    ]
    assert SECRET.decode() not in out
    assert main(["db", "maintenance"]) == 0
    assert "processed updates deleted: 0" in capsys.readouterr().out
    # purge-drafts stays
    assert main(["db", "purge-drafts"]) == 0


async def _rename(engine: AsyncEngine, old: str, new: str) -> None:
    import sqlalchemy as sa

    async with engine.begin() as conn:
        await conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_loop_survives_a_database_error_and_retries(
    engine: AsyncEngine, db_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing step is logged (class name only) and retried on the next round; the other
    steps still run; stop() cancels the task."""
    await _insert_updates(engine, now=datetime.now(UTC))
    await _insert_outbox(engine, now=datetime.now(UTC))
    await _rename(engine, "inbound_messages", "inbound_messages_away")
    loop = MaintenanceLoop(db_settings, engine, interval=3600)
    caplog.set_level("INFO", logger="storage.maintenance")
    loop.start()
    try:
        async with asyncio.timeout(30):
            first = await loop.wait_run(0)
        assert first is not None and len(first.errors) == 1
        assert first.errors[0].startswith("updates:")
        assert first.sends_interrupted == 2  # the outbox step ran all the same
        assert loop.running
        await _rename(engine, "inbound_messages_away", "inbound_messages")
        loop.wake()
        async with asyncio.timeout(30):
            second = await loop.wait_run(1)
        assert second is not None and second.errors == []
        assert second.updates_deleted == 2 and second.sends_interrupted == 0
    finally:
        await loop.stop()
    assert not loop.running
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "retried next round" in logged and "processed updates deleted: 2" in logged
    assert SECRET.decode() not in logged and "o" * 10 not in logged
