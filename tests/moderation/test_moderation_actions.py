"""Moderation actions through the console: decisions, versions, audit, outbox, filters."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.services import actions
from moderation.services.scope import Actor, scope_for
from storage.models import AuditEntry, Contribution, Outbox, Staff
from storage.settings import Settings
from tests.moderation_helpers import T0, Console, World, new_console

ROW = re.compile(r'data-rowlink href="/contributions/(HDF-[A-Z]+-\d{6})')


async def _get(sessions: async_sessionmaker[AsyncSession], ref: str) -> Contribution:
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == ref))
        assert c is not None
        return c


async def _audit(sessions: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with sessions() as s:
        return list(
            await s.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


async def _outbox(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def test_approve_goes_to_next_item_audits_and_queues_the_notice(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    resp = await oise.post("/contributions/HDF-OISE-000001/approve", {"version": "1"})
    assert resp.status == 303  # type: ignore[attr-defined]
    assert resp.headers["Location"].startswith(  # type: ignore[attr-defined]
        "/contributions/HDF-OISE-000002?"
    )
    page = await (await oise.client.get(resp.headers["Location"])).text()  # type: ignore[attr-defined]
    assert "Contribution HDF-OISE-000001 approuvée." in page  # flash
    c = await _get(sessions, "HDF-OISE-000001")
    assert (c.status, c.version, c.moderated_at is not None) == ("approved", 2, True)
    [entry] = await _audit(sessions, "approve")
    assert entry.actor == "oise@ars.test" and entry.target == "HDF-OISE-000001"
    assert entry.before is not None and entry.before["status"] == "pending"
    assert entry.after is not None and entry.after["status"] == "approved"
    assert entry.after["version"] == 2
    [msg] = await _outbox(sessions)
    assert msg.dedupe_key == "approved:HDF-OISE-000001" and msg.kind == "approved"
    assert msg.params["reference"] == "HDF-OISE-000001" and msg.status == "pending"
    from bot.core.notifier import notice_text

    assert "HDF-OISE-000001" in notice_text("fr", msg.kind, msg.params)


async def test_reject_requires_a_reason_and_tells_the_citizen_why(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for data in ({}, {"reason": "nonsense"}, {"reason": "other", "note": "  "}):
        resp = await oise.post("/contributions/HDF-OISE-000002/reject", {"version": "1", **data})
        assert resp.status == 422, data  # type: ignore[attr-defined]
    assert (await _get(sessions, "HDF-OISE-000002")).status == "pending"
    resp = await oise.post(
        "/contributions/HDF-OISE-000002/reject",
        {"version": "1", "reason": "personal_data", "note": "nom et téléphone"},
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    c = await _get(sessions, "HDF-OISE-000002")
    assert (c.status, c.reject_reason, c.reject_note) == (
        "rejected",
        "personal_data",
        "nom et téléphone",
    )
    [msg] = await _outbox(sessions)
    assert msg.dedupe_key == "rejected:HDF-OISE-000002"
    assert msg.params["reason"] == "personal_data"
    # what the bot's sender will say, in both languages
    from bot.core.notifier import notice_text
    from dialogs.messages import t

    for lang in ("fr", "en"):
        text = notice_text(lang, msg.kind, msg.params)
        assert "HDF-OISE-000002" in text
        assert t(lang, "reject_reason.personal_data") in text
    assert "nom et téléphone" not in str(msg.params)  # the internal note stays internal


async def test_second_moderator_is_told_it_was_already_handled(
    oise: Console, admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = "HDF-OISE-000003"
    # both opened the page at version 1
    first = await oise.post(f"/contributions/{ref}/approve", {"version": "1"})
    assert first.status == 303  # type: ignore[attr-defined]
    for action, data in (
        ("reject", {"reason": "abusive"}),
        ("approve", {}),
        ("edit", {"need": "écrasé ?", "solution": "écrasé ?"}),
        ("reclassify", {"theme": str(world.themes["4"])}),
        ("duplicate", {"of": "HDF-OISE-000001"}),
    ):
        second = await admin.post(f"/contributions/{ref}/{action}", {"version": "1", **data})
        assert second.status == 409, action  # type: ignore[attr-defined]
        text = await second.text()  # type: ignore[attr-defined]
        assert "déjà été traitée par oise@ars.test" in text
    c = await _get(sessions, ref)
    assert (c.status, c.version, c.need) == ("approved", 2, "Constat OISE numéro 2")
    assert len(await _audit(sessions, "approve")) == 1
    assert len(await _audit(sessions, "reject")) == 0
    assert [m.dedupe_key for m in await _outbox(sessions)] == [f"approved:{ref}"]


async def test_concurrent_decisions_only_one_wins(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two sessions racing on the same version: exactly one update, one audit, one notice."""

    async def decide(email: str, kind: str) -> str:
        async with sessions() as s:
            staff = await s.scalar(select(Staff).where(Staff.email == email))
            assert staff is not None
            actor = Actor(await scope_for(s, staff))
            if kind == "approve":
                res = await actions.approve(s, db_settings, actor, "HDF-OISE-000001", 1)
            else:
                res = await actions.reject(
                    s, db_settings, actor, "HDF-OISE-000001", 1, "offtopic", ""
                )
            if res.status == "ok":
                await s.commit()
            else:
                await s.rollback()
            return res.status

    results = await asyncio.gather(
        decide("oise@ars.test", "approve"), decide("admin@ars.test", "reject")
    )
    assert sorted(results) == ["conflict", "ok"]
    c = await _get(sessions, "HDF-OISE-000001")
    assert c.version == 2
    decisions = await _audit(sessions, "approve") + await _audit(sessions, "reject")
    assert len(decisions) == 1
    assert len(await _outbox(sessions)) == 1


async def test_outbox_queueing_is_idempotent_and_can_be_switched_off(
    db_settings: Settings,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == "HDF-OISE-000001"))
        assert c is not None
        assert await actions.queue_notification(s, db_settings, c, "approved") is True
        assert await actions.queue_notification(s, db_settings, c, "approved") is False
        await s.commit()
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == "HDF-OISE-000001"))
        assert c is not None
        assert await actions.queue_notification(s, db_settings, c, "approved") is False
        off = db_settings.model_copy(update={"notify_citizens": False})
        assert await actions.queue_notification(s, off, c, "rejected") is False
        await s.commit()
    assert [m.dedupe_key for m in await _outbox(sessions)] == ["approved:HDF-OISE-000001"]


async def test_no_notice_when_notifications_are_off(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    con = await new_console(db_settings.model_copy(update={"notify_citizens": False}), engine)
    try:
        assert await con.login("oise@ars.test") == 303
        resp = await con.post("/contributions/HDF-OISE-000001/approve", {"version": "1"})
        assert resp.status == 303  # type: ignore[attr-defined]
    finally:
        await con.client.close()
    assert (await _get(sessions, "HDF-OISE-000001")).status == "approved"
    assert await _outbox(sessions) == []


async def test_edit_keeps_originals_once_and_audits_before_after(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = "HDF-OISE-000001"
    for version, need in ((1, "Premier caviardage"), (2, "Second caviardage")):
        resp = await oise.post(
            f"/contributions/{ref}/edit",
            {
                "version": str(version),
                "need": need,
                "solution": "Solution proposée 1",
                "levers": "",
            },
        )
        assert resp.status == 303  # type: ignore[attr-defined]
    c = await _get(sessions, ref)
    assert c.need == "Second caviardage"
    assert c.originals == {"need": "Constat OISE numéro 0"}
    entries = await _audit(sessions, "edit")
    assert [e.before and e.before["need"] for e in entries] == [
        {"chars": len("Constat OISE numéro 0")},  # lengths: no citizen text in the journal
        {"chars": len("Premier caviardage")},
    ]
    # nothing changed: refused, version unchanged
    resp = await oise.post(
        f"/contributions/{ref}/edit",
        {"version": "3", "need": "Second caviardage", "solution": "Solution proposée 1"},
    )
    assert resp.status == 422  # type: ignore[attr-defined]
    assert (await _get(sessions, ref)).version == 3


async def test_reclassify_and_duplicate_rules(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = "HDF-OISE-000002"
    resp = await oise.post(
        f"/contributions/{ref}/reclassify", {"version": "1", "theme": str(world.themes["4"])}
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    assert (await _get(sessions, ref)).theme_id == world.themes["4"]
    # a moderator cannot move an item into a territory outside their scope
    page = await (await oise.client.get(f"/contributions/{ref}")).text()
    territory_select = page.split('id="re-territory"')[1].split("</select>")[0]
    assert "Oise" in territory_select and "Somme" not in territory_select
    resp = await oise.post(
        f"/contributions/{ref}/reclassify",
        {"version": "2", "territory": str(world.territories["SOMME"])},
    )
    assert resp.status == 422  # type: ignore[attr-defined]
    assert (await _get(sessions, ref)).territory_id == world.territories["OISE"]
    for bad in ("", ref, "HDF-OISE-999999", "HDF-SOMME-000001", "%", "x" * 5000):
        resp = await oise.post(f"/contributions/{ref}/duplicate", {"version": "2", "of": bad})
        assert resp.status == 422, bad  # type: ignore[attr-defined]
    resp = await oise.post(
        f"/contributions/{ref}/duplicate", {"version": "2", "of": " hdf-oise-000001 "}
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    c = await _get(sessions, ref)
    assert (c.status, c.duplicate_of) == ("duplicate", "HDF-OISE-000001")
    # and the original cannot become a duplicate of its own duplicate
    resp = await oise.post("/contributions/HDF-OISE-000001/duplicate", {"version": "1", "of": ref})
    assert resp.status == 422  # type: ignore[attr-defined]
    [entry] = await _audit(sessions, "duplicate")
    assert entry.after is not None and entry.after["duplicate_of"] == "HDF-OISE-000001"


async def test_bulk_checks_each_version(
    oise: Console, admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # admin handles OISE-2 first; oise's selection still carries version 1 for it
    await admin.post("/contributions/HDF-OISE-000002/approve", {"version": "1"})
    resp = await oise.post(
        "/contributions/bulk",
        {"bulk_action": "reject", "reason": "offtopic", "sel": "HDF-OISE-000001:1"},
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    form = [
        ("_csrf", oise.csrf),
        ("bulk_action", "reject"),
        ("reason", "offtopic"),
        ("sel", "HDF-OISE-000002:1"),
        ("sel", "HDF-OISE-000003:1"),
        ("sel", "HDF-SOMME-000001:1"),
        ("sel", "garbage"),
        ("sel", "\x00:\x00"),
    ]
    resp = await oise.client.post("/contributions/bulk", data=form, allow_redirects=False)
    assert resp.status == 303
    page = await (await oise.client.get(resp.headers["Location"])).text()
    assert "1 contribution(s) rejetée(s)." in page
    assert "HDF-OISE-000002" in page  # reported as already handled
    assert (await _get(sessions, "HDF-OISE-000002")).status == "approved"
    assert (await _get(sessions, "HDF-OISE-000003")).status == "rejected"
    assert (await _get(sessions, "HDF-SOMME-000001")).status == "pending"
    # without a reason, a bulk rejection does nothing
    resp = await oise.post(
        "/contributions/bulk", {"bulk_action": "reject", "sel": "HDF-OISE-000001:2"}
    )
    assert (await _get(sessions, "HDF-OISE-000001")).status == "rejected"


async def test_filters_search_and_pagination(
    db_settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    staff_ids: dict[str, int],
) -> None:
    async with sessions() as s:
        rows = {c.reference: c for c in await s.scalars(select(Contribution))}
        rows["HDF-OISE-000001"].need = "Les URGENCES d'Évreux ferment à 20h"
        rows["HDF-OISE-000002"].need = "Taux de 100% remboursé_total"
        rows["HDF-OISE-000003"].language = "en"
        rows["HDF-OISE-000003"].created_at = T0 + timedelta(days=5)
        await s.commit()
    con = await new_console(db_settings.model_copy(update={"console_page_size": 2}), engine)
    try:
        assert await con.login("admin@ars.test") == 303

        async def refs(**params: str) -> list[str]:
            page = await (await con.client.get("/contributions", params=params)).text()
            return ROW.findall(page)

        assert await refs(q="évreux", status="") == ["HDF-OISE-000001"]
        assert await refs(q="urgences", status="") == ["HDF-OISE-000001"]
        assert await refs(q="ÉVREUX", status="") == ["HDF-OISE-000001"]
        assert await refs(q="100%", status="") == ["HDF-OISE-000002"]
        assert await refs(q="%", status="") == ["HDF-OISE-000002"]  # a literal %, not a wildcard
        assert await refs(q="é_t", status="") == ["HDF-OISE-000002"]  # literal _
        assert await refs(q="_", status="") == ["HDF-OISE-000002"]
        assert await refs(language="en", status="") == ["HDF-OISE-000003"]
        assert await refs(since="2022-11-05", status="") == ["HDF-OISE-000003"]
        assert await refs(until="2022-11-02", status="", page="5") == [
            "HDF-AISNE-000002",
            "HDF-AISNE-000003",
        ]  # 8 items on that day, 4 pages: clamped to the last
        # pending oldest first, paginated by 2
        first = await refs()
        assert first == ["HDF-OISE-000001", "HDF-OISE-000002"]
        assert await refs(page="2") == ["HDF-SOMME-000001", "HDF-SOMME-000002"]
        assert await refs(page="999999") == ["HDF-OISE-000003"]  # clamped to the last page
        assert await refs(theme=str(world.themes["2"]), status="") == [
            "HDF-OISE-000002",
            "HDF-SOMME-000002",
        ]
    finally:
        await con.client.close()


HOSTILE = [
    "",
    "   ",
    "x" * 5000,
    "nul\x00byte",
    "<script>window.__pwned=1</script><img src=x onerror=alert(1)>",
    "**gras** [lien](javascript:alert(1))",
    "\u202eRTL override \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "zero\u200bwidth\u200d\ufeff",
    "😀😀😀",
    "'; DROP TABLE contributions; --",
    "%_\\",
]


async def test_hostile_staff_input_on_every_form_field(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for value in HOSTILE:
        await _hostile_round(admin, sessions, value)


async def _hostile_round(
    admin: Console, sessions: async_sessionmaker[AsyncSession], value: str
) -> None:
    ref = "HDF-OISE-000001"
    fields: list[tuple[str, dict[str, str]]] = [
        (f"/contributions/{ref}/reject", {"version": "1", "reason": value, "note": value}),
        (f"/contributions/{ref}/reject", {"version": "1", "reason": "other", "note": value}),
        (f"/contributions/{ref}/edit", {"version": value, "need": value, "solution": value}),
        (
            f"/contributions/{ref}/edit",
            {"version": "1", "need": value, "solution": "ok", "levers": value},
        ),
        (f"/contributions/{ref}/reclassify", {"version": "1", "theme": value, "territory": value}),
        (f"/contributions/{ref}/duplicate", {"version": "1", "of": value}),
        (f"/contributions/{ref}/approve", {"version": value}),
        ("/contributions/bulk", {"bulk_action": value, "sel": value, "reason": value}),
        ("/exports", {"territory": value, "format": value}),
        ("/staff", {"email": value, "role": value, "territories": value}),
        ("/staff", {"email": f"{value}@ars.test", "role": "admin"}),
    ]
    for path, data in fields:
        resp = await admin.post(path, data)
        status = resp.status  # type: ignore[attr-defined]
        assert status in (200, 303, 409, 422, 503), (path, data, status)
        text = await resp.text()  # type: ignore[attr-defined]
        assert "<script>window.__pwned" not in text
        assert "<img src=x" not in text
    for params in (
        {"q": value},
        {
            "since": value,
            "until": value,
            "territory": value,
            "theme": value,
            "status": value,
            "language": value,
            "page": value,
        },
    ):
        resp = await admin.client.get("/contributions", params=params)
        # beyond aiohttp's 8 KiB request line, the server answers 400 before any handler
        assert resp.status == (200 if len(value) * len(params) < 7000 else 400)
        assert "<script>window.__pwned" not in await resp.text()
    for path in ("/audit", "/audit.csv"):
        resp = await admin.client.get(
            path, params={"action": value, "actor": value, "target": value, "since": value}
        )
        assert resp.status == (200 if len(value) < 1000 else 400)
    # as a reference in the URL: simply not found
    for path in (f"/contributions/{quote(value, safe='')}", f"/staff/{quote(value, safe='')}/x"):
        resp = await admin.client.get(path)
        assert resp.status in (404, 405), path[:40]
        post = await admin.post(f"/contributions/{quote(value, safe='')}/approve", {"version": "1"})
        assert post.status == 404  # type: ignore[attr-defined]
    c = await _get(sessions, ref)
    for text in (c.need, c.solution, c.levers or "", c.reject_note or ""):
        assert "\x00" not in text
    # a text that was accepted is shown escaped on the detail page
    page = await (await admin.client.get(f"/contributions/{ref}")).text()
    assert "<script>window.__pwned" not in page


async def test_staff_edits_are_cleaned_as_citizens_texts_are(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """No control or invisible formatting character (bidi override, zero-width) survives an
    edit: what the synthesis team reads is what the page showed."""
    ref = "HDF-OISE-000001"
    resp = await oise.post(
        f"/contributions/{ref}/edit",
        {
            "version": "1",
            "need": "\u202eCaviar\u200bdage   du\x00 constat\ufeff\r\n\r\n\r\n\r\nsuite",
            "solution": "Solution\u200d proposée\u2060 1",
            "levers": "\u00a0 Levier e\u0301lu \t",
        },
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    c = await _get(sessions, ref)
    assert c.need == "Caviardage du constat\n\nsuite"
    assert c.solution == "Solution proposée 1"
    assert c.levers == "Levier élu"  # NFC, like the citizens' texts


async def test_audit_log_view_filters_and_csv_is_formula_safe(
    admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await admin.post(
        "/contributions/HDF-OISE-000001/reject",
        {
            "version": "1",
            "reason": "other",
            "citizen_reason": "=Hors du champ de la consultation",
            "note": '=HYPERLINK("http://x")',
        },
    )
    page = await (await admin.client.get("/audit", params={"action": "reject"})).text()
    assert "HDF-OISE-000001" in page and "1 entrée(s)" in page
    resp = await admin.client.get("/audit.csv")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    for row in rows[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r\n", cell
    actions = {r[3] for r in rows[1:]}
    assert {"login", "reject"} <= actions
    # the download itself is audited
    assert len(await _audit(sessions, "export_audit")) == 1
