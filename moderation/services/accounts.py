"""Staff accounts: creation, listing, disabling, password reset, each audited (the CLI and the
console share these); signing in and out, with the lockouts (per account in the database, per
address and per account and address in memory, checked before any hash)."""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from moderation.security import (
    BIDI_CONTROLS,
    LoginThrottle,
    hash_password,
    new_token,
    password_problem,
    token_hash,
    verify_password,
)
from moderation.services.audit import By, audit, audit_by
from storage import staff as store
from storage.settings import Settings

if TYPE_CHECKING:
    from storage.models import Staff, StaffSession, Territory

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


def _unfit_in_an_address(c: str) -> bool:
    """Blanks, controls, quotes and brackets, and the invisible formatting characters: the
    bidi controls (which show an address otherwise than it is) and the zero-width ones."""
    return (
        c.isspace()
        or c in "<>\"'"
        or c in BIDI_CONTROLS
        or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
    )


def normalise_email(raw: str) -> str:
    email = raw.strip().lower()
    if (
        not email
        or len(email) > 254
        or "@" not in email
        or any(_unfit_in_an_address(c) for c in email)
        or email.startswith("@")
        or email.endswith("@")
    ):
        raise AccountError("Adresse électronique invalide.")
    return email


async def resolve_territories(
    session: AsyncSession, codes: list[str], campaign_code: str | None
) -> list[Territory]:
    """Territories by code, in ``campaign_code`` or in the only campaign that has each code."""
    campaign_id = None
    if campaign_code:
        campaign_id = await store.campaign_id(session, campaign_code)
        if campaign_id is None:
            raise AccountError(f"Campagne inconnue : {campaign_code}")
    found: list[Territory] = []
    for code in codes:
        rows = await store.territories_by_code(session, code.strip().upper(), campaign_id)
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
    if await store.email_taken(session, email):
        raise AccountError("Un compte existe déjà pour cette adresse.")
    return await store.add_staff(session, email, role, hash_password(password), territories)


async def list_staff(session: AsyncSession) -> list[StaffInfo]:
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
        for s in await store.staff_with_territories(session)
    ]


async def get_staff(session: AsyncSession, email: str) -> Staff:
    staff = await store.staff_by_email(session, normalise_email(email))
    if staff is None:
        raise AccountError("Aucun compte pour cette adresse.")
    return staff


async def set_disabled(session: AsyncSession, staff: Staff, disabled: bool) -> None:
    """Disable (and log out everywhere) or re-enable an account."""
    await store.set_disabled(session, staff, disabled)


async def reset_password(session: AsyncSession, staff: Staff, password: str) -> None:
    """New password, unlocked account, every session closed."""
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    await store.set_password(session, staff, hash_password(password))


async def all_territories(session: AsyncSession) -> list[Territory]:
    """Every territory of every campaign (the choices of a new account's scope)."""
    return await store.all_territories(session)


async def territories_by_id(session: AsyncSession, ids: list[int]) -> list[Territory]:
    return await store.territories_by_id(session, ids)


async def staff_by_id(session: AsyncSession, staff_id: int) -> Staff | None:
    return await store.staff_by_id(session, staff_id)


# --- each change with its audit entry (CLI and console) -------------------------------------------


async def add_account(
    session: AsyncSession,
    by: By,
    email: str,
    role: str,
    password: str,
    territories: list[Territory],
) -> Staff:
    """:func:`add_staff`, audited as ``staff_add`` by ``by``."""
    staff = await add_staff(session, email, role, password, territories)
    await audit_by(
        session,
        by,
        "staff_add",
        target=staff.email,
        after={"role": staff.role, "territories": sorted(t.code for t in territories)},
    )
    return staff


async def disable_account(session: AsyncSession, by: By, staff: Staff, disabled: bool) -> None:
    """:func:`set_disabled`, audited as ``staff_disable`` or ``staff_enable``."""
    before = {"disabled": staff.disabled}
    await set_disabled(session, staff, disabled)
    await audit_by(
        session,
        by,
        "staff_disable" if disabled else "staff_enable",
        target=staff.email,
        before=before,
        after={"disabled": staff.disabled},
    )


async def reset_account_password(
    session: AsyncSession, by: By, staff: Staff, password: str
) -> None:
    """:func:`reset_password`, audited as ``staff_reset`` (the password is not recorded)."""
    await reset_password(session, staff, password)
    await audit_by(session, by, "staff_reset", target=staff.email, after={"password": "reset"})


async def unlock_account(session: AsyncSession, by: By, staff: Staff) -> None:
    """Lift a lockout after failed sign-ins, audited as ``staff_unlock``."""
    before = {"locked_until": staff.locked_until.isoformat() if staff.locked_until else None}
    store.unlock(staff)
    await audit_by(
        session, by, "staff_unlock", target=staff.email, before=before, after={"locked_until": None}
    )


# --- signing in and out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the new session's token, or None when refused."""

    token: str | None
    #: The address as normalised ("" when it is not one).
    email: str


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    throttle: LoginThrottle,
    raw_email: str,
    password: str,
    *,
    addr: str,
    now: datetime,
    previous_token: str | None = None,
) -> SignIn:
    """Check the throttles, then the password; open a session or count the failure. The
    caller commits; the refusal never says why.

    The throttles come first: a blocked address, or an address that failed on a locked
    account, costs no hash, and only its first refusal of a block is audited. The right
    password from an address that did not fail on the account signs in even while the
    account is locked, and lifts the lock. Every other attempt is audited (never the
    password)."""
    try:
        email = normalise_email(raw_email)
    except AccountError:
        email = ""

    async def refused(staff: Staff | None, reason: str) -> SignIn:
        await audit(
            session,
            actor=(email or "?")[:254],
            staff_id=staff.id if staff else None,
            action="login_failed",
            target=None,
            after={"reason": reason},
            remote_addr=addr,
            now=now,
        )
        return SignIn(None, email)

    if throttle.address_blocked(addr, now):
        if throttle.addresses.first_refusal(addr):
            return await refused(None, "throttled")
        return SignIn(None, email)
    staff = await store.staff_by_email(session, email) if email else None
    locked = staff is not None and staff.locked_until is not None and staff.locked_until > now
    if staff is not None and locked and throttle.failed_on_account(addr, staff.id, now):
        if throttle.accounts.first_refusal(throttle.pair(addr, staff.id)):
            return await refused(staff, "locked")
        return SignIn(None, email)
    # argon2 is slow on purpose: off the event loop, so other requests are served meanwhile
    ok = await asyncio.to_thread(verify_password, staff.password_hash if staff else None, password)
    if staff is None or staff.disabled or not ok:
        throttle.failed(addr, staff.id if staff is not None and not ok else None, now)
        reason = "unknown" if staff is None else "disabled" if staff.disabled else "password"
        if (
            staff is not None
            and not ok
            and store.count_failed_login(
                staff, settings.console_max_failed_logins, settings.console_lockout, now
            )
        ):
            reason = "password, locked"
        return await refused(staff, reason)
    throttle.succeeded(addr, staff.id)
    token = new_token()
    await store.open_session(
        session,
        staff,
        token_hash=token_hash(token),
        csrf_token=new_token(),
        now=now,
        idle=settings.console_session_idle,
        previous_hash=(
            token_hash(previous_token) if previous_token and len(previous_token) <= 200 else None
        ),
    )
    await audit(
        session, actor=staff.email, staff_id=staff.id, action="login", remote_addr=addr, now=now
    )
    return SignIn(token, email)


async def load_session(
    session: AsyncSession, token: str | None, idle: timedelta, now: datetime
) -> tuple[Staff | None, StaffSession | None]:
    """The staff member and session of ``token``, seen now; (None, None) when there is none
    (an idle session or a disabled account's is closed, and that is committed)."""
    if not token or len(token) > 200:
        return None, None
    found = await store.seen_session(session, token_hash(token), idle, now)
    return found if found is not None else (None, None)


async def commit_seen(session: AsyncSession, staff: Staff, row: StaffSession) -> None:
    """Commit the session's visit (``last_seen_at``); ``staff`` and ``row`` are then detached,
    so a page's rollback does not expire what its template reads of them."""
    await store.commit_detached(session, staff, row)


async def sign_out(session: AsyncSession, staff: Staff, row: StaffSession, addr: str) -> None:
    """Close the session ``row``, audited as ``logout``; the caller commits."""
    await store.close_session(session, row.token_hash)
    await audit(session, actor=staff.email, staff_id=staff.id, action="logout", remote_addr=addr)
