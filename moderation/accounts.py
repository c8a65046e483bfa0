"""Staff accounts: creation, listing, disabling, password reset (CLI and console share these)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from moderation.security import hash_password, password_problem
from storage.models import Campaign, Staff, StaffSession, Territory

ROLES = ("moderator", "admin")


class AccountError(ValueError):
    """A staff account operation that cannot be done; the message is French, for the user."""


@dataclass(frozen=True)
class StaffInfo:
    id: int
    email: str
    role: str
    disabled: bool
    territories: tuple[str, ...]
    locked_until: datetime | None
    last_login_at: datetime | None


def normalise_email(raw: str) -> str:
    email = raw.strip().lower()
    if (
        not email
        or len(email) > 254
        or "@" not in email
        or any(c.isspace() or ord(c) < 32 or c in "<>\"'" for c in email)
        or email.startswith("@")
        or email.endswith("@")
    ):
        raise AccountError("Adresse électronique invalide.")
    return email


async def resolve_territories(
    session: AsyncSession, codes: list[str], campaign_code: str | None
) -> list[Territory]:
    """Territories by code, in ``campaign_code`` or in the only campaign that has each code."""
    query = select(Territory).join(Campaign)
    if campaign_code:
        campaign = await session.scalar(select(Campaign).where(Campaign.code == campaign_code))
        if campaign is None:
            raise AccountError(f"Campagne inconnue : {campaign_code}")
        query = query.where(Territory.campaign_id == campaign.id)
    found: list[Territory] = []
    for code in codes:
        rows = list(await session.scalars(query.where(Territory.code == code.strip().upper())))
        if not rows:
            raise AccountError(f"Territoire inconnu : {code}")
        if len(rows) > 1:
            raise AccountError(f"Territoire {code} présent dans plusieurs campagnes : --campaign ?")
        found.append(rows[0])
    return found


async def add_staff(
    session: AsyncSession,
    email: str,
    role: str,
    password: str,
    territories: list[Territory],
) -> Staff:
    email = normalise_email(email)
    if role not in ROLES:
        raise AccountError("Rôle inconnu (moderator ou admin).")
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    if role == "moderator" and not territories:
        raise AccountError("Un modérateur doit avoir au moins un territoire.")
    if await session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        raise AccountError("Un compte existe déjà pour cette adresse.")
    staff = Staff(email=email, role=role, password_hash=hash_password(password))
    staff.territories = list({t.id: t for t in territories}.values())
    session.add(staff)
    await session.flush()
    return staff


async def list_staff(session: AsyncSession) -> list[StaffInfo]:
    rows = await session.scalars(
        select(Staff).options(selectinload(Staff.territories)).order_by(Staff.email)
    )
    return [
        StaffInfo(
            id=s.id,
            email=s.email,
            role=s.role,
            disabled=s.disabled,
            territories=tuple(sorted(t.code for t in s.territories)),
            locked_until=s.locked_until,
            last_login_at=s.last_login_at,
        )
        for s in rows
    ]


async def get_staff(session: AsyncSession, email: str) -> Staff:
    staff = await session.scalar(select(Staff).where(Staff.email == normalise_email(email)))
    if staff is None:
        raise AccountError("Aucun compte pour cette adresse.")
    return staff


async def set_disabled(session: AsyncSession, staff: Staff, disabled: bool) -> None:
    """Disable (and log out everywhere) or re-enable an account."""
    staff.disabled = disabled
    if disabled:
        await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id))


async def reset_password(session: AsyncSession, staff: Staff, password: str) -> None:
    """New password, unlocked account, every session closed."""
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None
    await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff.id))
