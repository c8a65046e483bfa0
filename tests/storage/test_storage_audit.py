"""The audit journal's rows (``storage.audit``): an entry is cut to its columns; a selection
by action, author (any case), target and period, wildcards taken literally; pages newest
first (a page past the end is the last), a download oldest first; the actions held."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from storage import audit as store
from storage.audit import AuditSelection
from storage.db import session_factory
from tests.moderation_helpers import T0


async def test_the_journal_selects_and_pages(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s:
        for i, (actor, action, target) in enumerate(
            [
                ("Admin@ARS.test", "login", None),
                ("oise@ars.test", "approve", "HDF-OISE-000001"),
                ("oise@ars.test", "reject", "HDF-OISE-000002"),
                ("100%_sure@ars.test", "approve", "HDF_OISE%3"),
                ("cli", "staff_add", "x" * 300),
            ]
        ):
            store.append(
                s,
                at=T0 + timedelta(hours=i),
                staff_id=None,
                actor=actor,
                action=action,
                target=target,
                before=None,
                after={"n": i},
                remote_addr="203.0.113.7" * 10 if i == 4 else None,
            )
        await s.commit()
    async with sessions() as s:
        every = await store.entries(s, AuditSelection())
        assert [e.after for e in every] == [{"n": i} for i in range(5)]
        assert (len(every[4].target or ""), len(every[4].remote_addr or "")) == (120, 64)

        async def targets(selection: AuditSelection) -> list[str | None]:
            return [e.target for e in await store.entries(s, selection)]

        assert await targets(AuditSelection(action="approve")) == [
            "HDF-OISE-000001",
            "HDF_OISE%3",
        ]
        assert len(await targets(AuditSelection(actor="admin@ars"))) == 1  # any case
        assert await targets(AuditSelection(actor="0%_S")) == ["HDF_OISE%3"]
        assert await targets(AuditSelection(actor="%")) == ["HDF_OISE%3"]  # literally
        assert await targets(AuditSelection(target="_OISE")) == ["HDF_OISE%3"]
        assert await targets(AuditSelection(target="OISE-00000")) == [
            "HDF-OISE-000001",
            "HDF-OISE-000002",
        ]
        period = AuditSelection(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=3))
        assert await targets(period) == ["HDF-OISE-000001", "HDF-OISE-000002"]

        rows, total, page, pages = await store.page(s, AuditSelection(), 1, 2)
        assert ([e.after for e in rows], total, page, pages) == ([{"n": 4}, {"n": 3}], 5, 1, 3)
        rows, _, page, _ = await store.page(s, AuditSelection(), 99, 2)
        assert ([e.after for e in rows], page) == ([{"n": 0}], 3)
        rows, total, page, pages = await store.page(s, AuditSelection(action="none"), 1, 2)
        assert (rows, total, page, pages) == ([], 0, 1, 1)
        assert await store.actions(s) == ["approve", "login", "reject", "staff_add"]
