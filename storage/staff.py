"""Staff accounts and their console sessions: the rows behind ``cnrbot staff`` and the
console's sign-in (``moderation.services.accounts`` keeps the rules: who may, the audit, the
throttles in memory). Only hashes are stored: of a password (argon2, made by the console) and
of a session token (SHA-256); the caller passes them in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Campaign, Staff, StaffSession, Territory

# --- accounts -------------------------------------------------------------------------------------


async def territory_ids(session: AsyncSession, staff_id: int) -> frozenset[int]:
    """The territories a staff member is assigned to."""
    ids = await session.scalars(
        select(Territory.id).join_from(Staff, Staff.territories).where(Staff.id == staff_id)
    )
    return frozenset(ids)


async def campaign_id(session: AsyncSession, code: str) -> int | None:
    """The id of the campaign ``code``."""
    return await session.scalar(select(Campaign.id).where(Campaign.code == code))


async def territories_by_code(
    session: AsyncSession, code: str, campaign_id: int | None = None
) -> list[Territory]:
    """The territories of code ``code`` (in one campaign, or in every one)."""
    query = select(Territory).join(Campaign)
    if campaign_id is not None:
        query = query.where(Territory.campaign_id == campaign_id)
    return list(await session.scalars(query.where(Territory.code == code)))


async def territories_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Territory]:
    return list(await session.scalars(select(Territory).where(Territory.id.in_(ids))))


async def all_territories(session: AsyncSession) -> list[Territory]:
    """Every territory of every campaign, in order."""
    return list(
        await session.scalars(select(Territory).order_by(Territory.campaign_id, Territory.position))
    )


async def email_taken(session: AsyncSession, email: str) -> bool:
    return await session.scalar(select(Staff.id).where(Staff.email == email)) is not None


async def add_staff(
    session: AsyncSession,
    email: str,
    role: str,
    password_hash: str,
    territories: Sequence[Territory],
) -> Staff:
    """A new account (flushed: it has its id)."""
    staff = Staff(email=email, role=role, password_hash=password_hash)
    staff.territories = list({t.id: t for t in territories}.values())
    session.add(staff)
    await session.flush()
    return staff


async def staff_with_territories(session: AsyncSession) -> list[Staff]:
    """Every account, by email, with its territories loaded."""
    return list(
        await session.scalars(
            select(Staff).options(selectinload(Staff.territories)).order_by(Staff.email)
        )
    )


async def staff_by_email(session: AsyncSession, email: str) -> Staff | None:
    return await session.scalar(select(Staff).where(Staff.email == email))


async def staff_by_id(session: AsyncSession, staff_id: int) -> Staff | None:
    return await session.get(Staff, staff_id)


async def staff_email(session: AsyncSession, staff_id: int) -> str | None:
    return await session.scalar(select(Staff.email).where(Staff.id == staff_id))


async def close_sessions(session: AsyncSession, staff: Staff) -> None:
    """Sign the account out everywhere."""
    await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id))


async def set_disabled(session: AsyncSession, staff: Staff, disabled: bool) -> None:
    """Disable (and sign out everywhere) or re-enable an account."""
    staff.disabled = disabled
    if disabled:
        await close_sessions(session, staff)


async def set_password(session: AsyncSession, staff: Staff, password_hash: str) -> None:
    """A new password: the account unlocked and signed out everywhere."""
    staff.password_hash = password_hash
    staff.failed_logins = 0
    staff.locked_until = None
    await close_sessions(session, staff)


def unlock(staff: Staff) -> None:
    """Lift a lockout after failed sign-ins (written when the caller's session flushes)."""
    staff.locked_until = None
    staff.failed_logins = 0


def count_failed_login(staff: Staff, max_failed: int, lockout: timedelta, now: datetime) -> bool:
    """One more wrong password; at ``max_failed`` the account is locked for ``lockout`` (and
    the count starts again). True when this failure locked it."""
    staff.failed_logins += 1
    if staff.failed_logins >= max_failed:
        staff.locked_until = now + lockout
        staff.failed_logins = 0
        return True
    return False


# --- console sessions -----------------------------------------------------------------------------


async def open_session(
    session: AsyncSession,
    staff: Staff,
    *,
    token_hash: str,
    csrf_token: str,
    now: datetime,
    idle: timedelta,
    previous_hash: str | None = None,
) -> None:
    """A new console session for ``staff`` signing in: the idle sessions of everyone and the
    session replaced (``previous_hash``) closed, the failure count and lock cleared."""
    stale: Any = StaffSession.last_seen_at < now - idle
    if previous_hash is not None:
        stale = stale | (StaffSession.token_hash == previous_hash)
    await session.execute(delete(StaffSession).where(stale))
    staff.failed_logins = 0
    staff.locked_until = None
    staff.last_login_at = now
    session.add(
        StaffSession(
            token_hash=token_hash,
            staff_id=staff.id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
        )
    )


async def seen_session(
    session: AsyncSession, token_hash: str, idle: timedelta, now: datetime
) -> tuple[Staff, StaffSession] | None:
    """The account and session of ``token_hash``, seen now; None when there is none (a session
    idle for longer than ``idle`` or of a disabled account is closed, and that is committed)."""
    row = await session.get(StaffSession, token_hash)
    if row is None:
        return None
    staff = await session.get(Staff, row.staff_id)
    if staff is None or staff.disabled or now - row.last_seen_at > idle:
        await session.delete(row)
        await session.commit()
        return None
    row.last_seen_at = now
    return staff, row


async def commit_detached(session: AsyncSession, *rows: Staff | StaffSession) -> None:
    """Commit, then detach ``rows`` from the session: a later rollback of the request's work
    does not expire what its pages read of them."""
    await session.commit()
    for row in rows:
        session.expunge(row)


async def close_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash))
