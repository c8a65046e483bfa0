"""A citizen withdraws one contribution: a pending one is deleted, a published one is kept as
``withdrawn`` with its texts erased (out of every later export), the audit keeps only the
reference and "withdrawn at the participant's request"."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.models import AuditEntry, Contribution, Outbox, Participant
from storage.withdraw import REASON, withdraw_contribution
from tests.export_helpers import PARTICIPANT_KEY, C, seed

NOW = datetime(2022, 12, 5, 9, 0, tzinfo=UTC)


async def test_withdraw_one_contribution(engine: AsyncEngine) -> None:
    pending, approved, rejected = await seed(
        engine,
        [
            C(need="Un besoin encore en attente de relecture.", status="pending"),
            C(need="Canari-Retrait-5150 : un besoin publié puis retiré."),
            C(need="Un besoin refusé par la modération.", status="rejected"),
        ],
    )
    async with session_factory(engine)() as s, s.begin():
        me = int(await s.scalar(select(Participant.id).where(Participant.key == PARTICIPANT_KEY)))
        s.add(
            Outbox(
                participant_id=me,
                dedupe_key=f"approved:{approved}",
                kind="approved",
                params={"reference": approved},
            )
        )
        s.add(Outbox(participant_id=me, dedupe_key="reminder:1", kind="reminder", params={}))
        stranger = Participant(key="d" * 64, channel="web", lang="fr")
        s.add(stranger)
        await s.flush()
        stranger_id = stranger.id

    async with engine.begin() as conn:
        assert await withdraw_contribution(conn, me, pending, NOW) == "deleted"
        assert await withdraw_contribution(conn, me, approved, NOW) == "withdrawn"
        assert await withdraw_contribution(conn, me, approved, NOW) == "already"
        assert await withdraw_contribution(conn, me, "HDF-OISE-999999", NOW) == "unknown"
        # Someone else's reference is not theirs to withdraw.
        assert await withdraw_contribution(conn, stranger_id, rejected, NOW) == "unknown"

    async with session_factory(engine)() as s:
        rows = {c.reference: c for c in (await s.execute(select(Contribution))).scalars()}
        assert pending not in rows
        gone = rows[approved]
        assert gone.status == "withdrawn"
        assert (gone.need, gone.solution, gone.levers, gone.originals) == ("", "", None, None)
        assert rows[rejected].status == "rejected"  # untouched
        assert await s.scalar(select(func.count()).where(Contribution.status == "approved")) == 0
        kinds = list(await s.scalars(select(Outbox.kind)))
        assert kinds == ["reminder"]  # the notice about the withdrawn one is dropped
        audit = list((await s.execute(select(AuditEntry))).scalars())
    assert [(a.actor, a.action, a.target, a.after) for a in audit] == [
        ("participant", "withdrawn", pending, {"reason": REASON}),
        ("participant", "withdrawn", approved, {"reason": REASON}),
    ]
    assert all(a.staff_id is None and a.remote_addr is None and a.before is None for a in audit)
