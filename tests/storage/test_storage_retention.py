"""Retention applied by the maintenance, with a fake clock: identities erased a set time after
the campaign closes (contributions kept, tied to nobody), rejected texts erased a set time after
the rejection; a dry run tells what it would erase and changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.maintenance import ERASED_KEY_PREFIX, run_maintenance
from storage.models import (
    Campaign,
    ChatIdentity,
    Contribution,
    ConversationRow,
    Outbox,
    Participant,
)
from storage.settings import Settings
from tests.export_helpers import PARTICIPANT_KEY, C, seed

CLOSED = date(2022, 12, 31)  # the shipped campaign's last day
REJECTED_AT = datetime(2022, 12, 1, 10, 0, tzinfo=UTC)


async def _world(engine: AsyncEngine) -> None:
    """One participant with an identity, a conversation and a pending notice, an approved and
    a rejected contribution in the shipped campaign (closed on 31 December 2022)."""
    await seed(
        engine,
        [
            C(need="Pas de pédiatre à moins de 40 km de chez nous."),
            C(need="Un texte refusé : hors sujet et insultant.", status="rejected"),
        ],
    )
    async with session_factory(engine)() as s, s.begin():
        pid = await s.scalar(select(Participant.id).where(Participant.key == PARTICIPANT_KEY))
        campaign = await s.scalar(select(Campaign.id))
        s.add(ChatIdentity(participant_id=pid, channel="telegram", secret=b"encrypted"))
        s.add(ConversationRow(participant_id=pid, campaign_id=campaign, state="done", data={}))
        s.add(Outbox(participant_id=pid, dedupe_key="reminder:1", kind="reminder"))
        await s.execute(
            update(Contribution)
            .where(Contribution.status == "rejected")
            .values(
                moderated_at=REJECTED_AT,
                reject_reason="off_topic",
                reject_note="note interne",
                citizen_reason="Votre texte parlait d'un autre sujet.",
                originals={"need": "texte d'origine"},
            )
        )


async def _state(engine: AsyncEngine) -> dict[str, object]:
    async with session_factory(engine)() as s:
        return {
            "identities": await s.scalar(select(func.count()).select_from(ChatIdentity)),
            "conversations": await s.scalar(select(func.count()).select_from(ConversationRow)),
            "pending notices": await s.scalar(select(func.count()).select_from(Outbox)),
            "erased keys": await s.scalar(
                select(func.count()).where(Participant.key.startswith(ERASED_KEY_PREFIX))
            ),
            "contributions": await s.scalar(select(func.count()).select_from(Contribution)),
            "rejected need": await s.scalar(
                select(Contribution.need).where(Contribution.status == "rejected")
            ),
            "rejected extras": tuple(
                (
                    await s.execute(
                        select(
                            Contribution.originals,
                            Contribution.reject_note,
                            Contribution.citizen_reason,
                        ).where(Contribution.status == "rejected")
                    )
                ).one()
            ),
            "approved need": await s.scalar(
                select(Contribution.need).where(Contribution.status == "approved")
            ),
        }


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


async def test_identities_go_a_set_time_after_the_campaign_closes(
    db_settings: Settings, engine: AsyncEngine
) -> None:
    await _world(engine)
    sessions = session_factory(engine)
    settings = db_settings.model_copy(
        update={
            "identity_retention": timedelta(days=90),
            "rejected_text_retention": timedelta(days=3650),
        }
    )
    before = await _state(engine)

    early = await run_maintenance(sessions, settings, _at(CLOSED + timedelta(days=89)))
    assert early.identities_erased == 0 and early.errors == []
    assert await _state(engine) == before

    dry = await run_maintenance(sessions, settings, _at(CLOSED + timedelta(days=92)), dry_run=True)
    assert dry.identities_erased == 1 and dry.errors == []
    assert "dry run" in dry.summary()
    assert await _state(engine) == before  # nothing changed

    done = await run_maintenance(sessions, settings, _at(CLOSED + timedelta(days=92)))
    assert done.identities_erased == 1
    after = await _state(engine)
    assert after["identities"] == 0 and after["conversations"] == 0
    assert after["pending notices"] == 0 and after["erased keys"] == 1
    assert after["contributions"] == 2  # the contributions stay, tied to nobody
    assert after["approved need"] == before["approved need"]

    again = await run_maintenance(sessions, settings, _at(CLOSED + timedelta(days=93)))
    assert again.identities_erased == 0


async def test_a_participant_still_in_an_open_campaign_keeps_their_identity(
    db_settings: Settings, engine: AsyncEngine
) -> None:
    await _world(engine)
    async with session_factory(engine)() as s, s.begin():
        await s.execute(update(Campaign).values(closes_on=date(2099, 12, 31)))
    report = await run_maintenance(
        session_factory(engine), db_settings, _at(CLOSED + timedelta(days=400))
    )
    assert report.identities_erased == 0
    assert (await _state(engine))["identities"] == 1


async def test_rejected_texts_go_a_set_time_after_the_rejection(
    db_settings: Settings, engine: AsyncEngine
) -> None:
    await _world(engine)
    sessions = session_factory(engine)
    settings = db_settings.model_copy(
        update={
            "rejected_text_retention": timedelta(days=30),
            "identity_retention": timedelta(days=3650),
        }
    )
    before = await _state(engine)
    early = await run_maintenance(sessions, settings, REJECTED_AT + timedelta(days=29))
    assert early.rejected_texts_erased == 0
    dry = await run_maintenance(sessions, settings, REJECTED_AT + timedelta(days=31), dry_run=True)
    assert dry.rejected_texts_erased == 1
    assert await _state(engine) == before
    done = await run_maintenance(sessions, settings, REJECTED_AT + timedelta(days=31))
    assert done.rejected_texts_erased == 1
    after = await _state(engine)
    assert after["rejected need"] == "" and after["rejected extras"] == (None, None, None)
    assert after["approved need"] == before["approved need"]
    async with sessions() as s:
        kept = (
            await s.execute(
                select(Contribution.reference, Contribution.reject_reason).where(
                    Contribution.status == "rejected"
                )
            )
        ).one()
    assert kept[0].startswith("HDF-OISE-") and kept[1] == "off_topic"
    again = await run_maintenance(sessions, settings, REJECTED_AT + timedelta(days=32))
    assert again.rejected_texts_erased == 0
