"""The audit journal holds no citizen text (issue 12, point 5, console side): an edit or a
redaction records which fields changed and their lengths, a note its length, an export of the
journal the names of its filters (a typed text by its length). The admin still reads the
citizen's original text where it was kept (``contributions.originals``), not in the journal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import AuditEntry, Contribution
from storage.settings import Settings
from tests.moderation_helpers import Console, World, add_account, new_console, seed_world

CANARY = "Canari7Q3 appelez Jeanne Martin au 06 12 34 56 78"
NEED = f"Pas de médecin traitant depuis deux ans. {CANARY}"
REF = "HDF-OISE-000001"


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    return await seed_world(sessions, texts=[NEED])


@pytest.fixture
async def admin(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Console]:
    await add_account(sessions, "admin@ars.test", "admin", [])
    con = await new_console(db_settings.model_copy(update={"console_page_size": 500}), engine)
    assert await con.login("admin@ars.test") == 303
    try:
        yield con
    finally:
        await con.client.close()


async def _journal(sessions: async_sessionmaker[AsyncSession]) -> list[AuditEntry]:
    async with sessions() as s:
        return list(await s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _words(entry: AuditEntry) -> str:
    return json.dumps(
        [entry.actor, entry.action, entry.target, entry.before, entry.after], ensure_ascii=False
    )


async def test_a_redaction_and_a_journal_export_leave_no_citizen_text_in_the_journal(
    admin: Console, sessions: async_sessionmaker[AsyncSession]
) -> None:
    redacted = "Pas de médecin traitant depuis deux ans. [données personnelles retirées]"
    resp: Any = await admin.post(
        f"/contributions/{REF}/edit",
        {"version": "1", "need": redacted, "solution": "Solution proposée 1", "levers": ""},
    )
    assert resp.status == 303
    # the moderator searches the queue, then the journal, with the citizen's words
    assert (await admin.client.get("/contributions", params={"q": "Canari7Q3"})).status == 200
    csv_resp = await admin.client.get(
        "/audit.csv", params={"actor": "Canari7Q3", "target": CANARY[:100], "action": "edit"}
    )
    assert csv_resp.status == 200
    # a rejection whose note quotes the citizen
    resp = await admin.post(
        f"/contributions/{REF}/reject",
        {"version": "2", "reason": "personal_data", "note": f"Cite « {CANARY} »"},
    )
    assert resp.status == 303

    entries = await _journal(sessions)
    for entry in entries:
        assert "Canari7Q3" not in _words(entry), entry.action
    [edit] = [e for e in entries if e.action == "edit"]
    assert edit.before == {"need": {"chars": len(NEED)}, "originals": [], "version": 1}
    assert edit.after == {"need": {"chars": len(redacted)}, "originals": ["need"], "version": 2}
    [reject] = [e for e in entries if e.action == "reject"]
    assert reject.after is not None
    assert reject.after["reject_note"] == {"chars": len(f"Cite « {CANARY} »")}
    assert reject.after["reject_reason"] == "personal_data"
    [export] = [e for e in entries if e.action == "export_audit"]
    assert export.after == {
        "rows": 0,
        "action": "edit",
        "actor": {"chars": len("Canari7Q3")},
        "target": {"chars": len(CANARY[:100])},
    }

    page = await (await admin.client.get("/audit")).text()
    assert "export_audit" in page and "Canari7Q3" not in page
    body = (await (await admin.client.get("/audit.csv")).read()).decode("utf-8-sig")
    assert "export_audit" in body and "Canari7Q3" not in body

    # the citizen's original stays where it was, for admins
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == REF))
        assert c is not None and c.originals == {"need": NEED}
    detail = await (await admin.client.get(f"/contributions/{REF}")).text()
    assert "Canari7Q3" in detail
