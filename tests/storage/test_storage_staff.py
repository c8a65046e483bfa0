"""Staff accounts and console sessions (``storage.staff``): an account's territories; a
session opened at sign-in closes the idle ones and the one it replaces; a session seen is kept
alive, an idle one or a disabled account's is closed; the lockout after failed sign-ins; a new
password or a disabled account signs out everywhere."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import staff as store
from storage.db import session_factory
from storage.models import StaffSession
from tests.moderation_helpers import T0, seed_world

IDLE = timedelta(minutes=30)


async def _tokens(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as s:
        return list(await s.scalars(select(StaffSession.token_hash).order_by("token_hash")))


async def test_accounts_and_their_territories(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    world = await seed_world(sessions)
    async with sessions() as s:
        oise = await store.territories_by_code(s, "OISE")
        assert [t.id for t in oise] == [world.territories["OISE"]]
        campaign = await store.campaign_id(s, "HDF-TEST")
        assert campaign == world.campaign_id
        assert await store.territories_by_code(s, "OISE", campaign) == oise
        assert await store.territories_by_code(s, "OISE", campaign + 1) == []
        assert await store.campaign_id(s, "NOPE") is None
        assert not await store.email_taken(s, "m@ars.test")
        somme = await store.territories_by_id(s, [world.territories["SOMME"]])
        staff = await store.add_staff(s, "m@ars.test", "moderator", "h", oise + somme + oise)
        await s.commit()
    async with sessions() as s:
        assert await store.email_taken(s, "m@ars.test")
        assert await store.territory_ids(s, staff.id) == {
            world.territories["OISE"],
            world.territories["SOMME"],
        }
        assert await store.staff_email(s, staff.id) == "m@ars.test"
        found = await store.staff_by_email(s, "m@ars.test")
        assert found is not None and found.id == staff.id
        listed = await store.staff_with_territories(s)
        assert [sorted(t.code for t in a.territories) for a in listed] == [["OISE", "SOMME"]]
        assert [t.code for t in await store.all_territories(s)] == ["OISE", "SOMME", "AISNE"]


async def test_sessions_open_live_and_close(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s:
        a = await store.add_staff(s, "a@ars.test", "admin", "h", [])
        b = await store.add_staff(s, "b@ars.test", "admin", "h", [])
        for token, staff, at in (("old", a, T0), ("recent", a, T0 + IDLE), ("b", b, T0 + IDLE)):
            await store.open_session(
                s, staff, token_hash=token, csrf_token="c", now=at, idle=timedelta(days=9)
            )
        await s.commit()
    now = T0 + IDLE + timedelta(minutes=1)
    async with sessions() as s:
        staff = await store.staff_by_id(s, a.id)
        assert staff is not None
        staff.failed_logins = 2
        await store.open_session(
            s, staff, token_hash="new", csrf_token="c", now=now, idle=IDLE, previous_hash="recent"
        )
        await s.commit()
        # "old" was idle, "recent" is replaced by "new"; b's session lives on
        assert (staff.failed_logins, staff.locked_until, staff.last_login_at) == (0, None, now)
    assert await _tokens(engine) == ["b", "new"]
    later = now + timedelta(minutes=5)
    async with sessions() as s:
        seen = await store.seen_session(s, "new", IDLE, later)
        assert seen is not None
        staff, row = seen
        assert (staff.email, row.last_seen_at) == ("a@ars.test", later)
        await store.commit_detached(s, staff, row)
        assert staff not in s and row not in s
        assert await store.seen_session(s, "missing", IDLE, later) is None
        assert await store.seen_session(s, "b", IDLE, later + IDLE) is None  # idle: closed
    async with sessions() as s:
        seen = await store.seen_session(s, "new", IDLE, later)
        assert seen is not None and seen[1].last_seen_at == later  # committed
        await store.close_session(s, "new")
        await s.commit()
    assert await _tokens(engine) == []


async def test_the_lockout_and_what_signs_out_everywhere(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s:
        staff = await store.add_staff(s, "a@ars.test", "admin", "h", [])
        for token in ("one", "two"):
            await store.open_session(s, staff, token_hash=token, csrf_token="c", now=T0, idle=IDLE)
        lockout = timedelta(minutes=15)
        assert [store.count_failed_login(staff, 3, lockout, T0) for _ in range(3)] == [
            False,
            False,
            True,
        ]
        assert (staff.failed_logins, staff.locked_until) == (0, T0 + lockout)
        store.unlock(staff)
        assert (staff.failed_logins, staff.locked_until) == (0, None)
        store.count_failed_login(staff, 3, lockout, T0)
        await store.set_password(s, staff, "new hash")
        assert (staff.password_hash, staff.failed_logins) == ("new hash", 0)
        await s.commit()
    assert await _tokens(engine) == []
    async with sessions() as s:
        found = await store.staff_by_id(s, staff.id)
        assert found is not None
        await store.open_session(s, found, token_hash="three", csrf_token="c", now=T0, idle=IDLE)
        await store.set_disabled(s, found, False)
        await s.commit()
        assert await _tokens(engine) == ["three"]  # enabling closes nothing
        await store.set_disabled(s, found, True)
        await s.commit()
    assert await _tokens(engine) == []
    async with sessions() as s:
        await store.open_session(s, found, token_hash="four", csrf_token="c", now=T0, idle=IDLE)
        await s.commit()
        assert await store.seen_session(s, "four", IDLE, T0) is None  # disabled: closed
    assert await _tokens(engine) == []
