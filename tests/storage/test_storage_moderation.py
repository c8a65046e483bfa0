"""What the console reads and writes of the contributions (``storage.moderation``): a staff
member's territories bound every read; the queue's selection, pages and neighbours; a change
applies once, at the version the moderator saw; a citizen's notice is queued once per meaning.
(The keyset pages against the plain OFFSET ones and the search: tests/moderation/
test_console_scale.py.)"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import moderation as store
from storage import staff as staff_store
from storage.db import session_factory
from storage.models import Outbox
from storage.moderation import QueueSelection, install_sqlite_casefold
from tests.moderation_helpers import T0, seed_world


async def test_the_territories_bound_every_read(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    world = await seed_world(sessions, per_territory=3)
    oise, somme = world.territories["OISE"], world.territories["SOMME"]
    async with sessions() as s:
        for territories, codes in (
            (None, ["OISE", "SOMME", "AISNE"]),
            (frozenset({somme, oise}), ["OISE", "SOMME"]),
            (frozenset(), []),
        ):
            found = await store.territories_in(s, territories, world.campaign_id)
            assert [t.code for t in found] == codes
            assert [t.code for t in await store.territories_in(s, territories)] == codes
            page = await store.queue_page(s, QueueSelection(territories=territories), 25)
            assert sorted({world.refs[c.reference] for c in page.items}) == sorted(codes)
            assert page.total == 3 * len(codes)
            oise_one = await store.contribution(s, territories, "HDF-OISE-000001")
            assert (oise_one is not None) == ("OISE" in codes)
            assert await store.languages_seen(s, territories) == (["fr"] if codes else [])


async def test_the_queue_selects_pages_and_neighbours(engine: AsyncEngine) -> None:
    if install_sqlite_casefold(engine):  # as the console does at start
        await engine.dispose()
    sessions = session_factory(engine)
    world = await seed_world(sessions, per_territory=4)  # 12, received a minute apart
    everything = QueueSelection(territories=None, status="")
    async with sessions() as s:
        first = await store.queue_page(s, everything, 5)
        assert (first.total, first.pages, first.has_prev, first.has_next) == (12, 3, False, True)
        second = await store.queue_page(s, everything, 5, page=2, start=first.next_start)
        last = await store.queue_page(s, everything, 5, page=3)
        assert (second.page, second.has_prev, last.has_next) == (2, True, False)
        order = [c.reference for c in first.items + second.items + last.items]
        assert order == list(world.refs)  # as received
        back = await store.queue_page(s, everything, 5, page=2, before=last.start)
        assert [c.reference for c in back.items] == [c.reference for c in second.items]
        middle = second.items[2]
        prev_ref, next_ref = await store.neighbours(s, everything, middle)
        assert (prev_ref, next_ref) == (second.items[1].reference, second.items[3].reference)
        # each filter narrows: a territory, a theme, references, a period, a search
        oise = world.territories["OISE"]
        narrowed = {
            "territory": QueueSelection(territory=oise, status=""),
            "theme": QueueSelection(theme=world.themes["1"], status=""),
            "references": QueueSelection(references=("HDF-SOMME-000002",), status=""),
            "period": QueueSelection(
                start=T0 + timedelta(minutes=3), end=T0 + timedelta(minutes=5), status=""
            ),
            "search": QueueSelection(q="somme numéro 3", status=""),
            "status": QueueSelection(status="approved"),
        }
        got = {
            name: sorted(c.reference for c in (await store.queue_page(s, sel, 25)).items)
            for name, sel in narrowed.items()
        }
    assert got["territory"] == [f"HDF-OISE-{i:06d}" for i in range(1, 5)]
    assert got["theme"] == sorted(f"HDF-{t}-00000{n}" for t in world.territories for n in (1, 4))
    assert got["references"] == ["HDF-SOMME-000002"]
    assert got["period"] == ["HDF-OISE-000003", "HDF-OISE-000004"]  # minutes 3 and 4
    assert got["search"] == ["HDF-SOMME-000004"]  # "Constat SOMME numéro 3"
    assert got["status"] == []


async def test_a_change_applies_once_at_its_version(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    await seed_world(sessions)
    async with sessions() as s:
        staff = await staff_store.add_staff(s, "m@ars.test", "admin", "hash", [])
        c = await store.contribution(s, None, "HDF-OISE-000001")
        assert c is not None and c.version == 1
        now = T0 + timedelta(days=1)
        changes = {"status": "approved"}
        assert await store.change_contribution(s, c.id, 1, changes, staff_id=staff.id, now=now)
        # a second moderator who saw version 1: refused, nothing changes
        refused = {"status": "rejected", "reject_reason": "other"}
        assert not await store.change_contribution(s, c.id, 1, refused, staff_id=staff.id, now=now)
        await s.commit()
    async with sessions() as s:
        fresh = await store.contribution_by_id(s, c.id)
        assert fresh is not None
        assert (fresh.status, fresh.version, fresh.reject_reason) == ("approved", 2, None)
        assert (fresh.moderated_by, fresh.moderated_at) == (staff.id, now)


async def test_a_notice_is_queued_once_per_meaning(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    world = await seed_world(sessions)
    participant = world.participants[0]
    async with sessions() as s:
        params = {"reference": "HDF-OISE-000001"}
        key = "approved:HDF-OISE-000001"
        assert await store.queue_notice(s, participant, key, "approved", params)
        assert not await store.queue_notice(s, participant, key, "approved", params)
        await s.commit()
    async with sessions() as s:
        assert not await store.queue_notice(s, participant, key, "approved", params)
        assert await store.queue_notice(s, participant, "rejected:X", "rejected", {})
        await s.commit()
        keys = list(await s.scalars(select(Outbox.dedupe_key).order_by(Outbox.id)))
        assert keys == [key, "rejected:X"]
        assert await store.participant_lang(s, participant) == "en"
