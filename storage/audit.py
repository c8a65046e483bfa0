"""The audit journal's rows (``audit_entries``): appended by every staff action, never updated
nor deleted; read page by page or whole (a download), filtered. What an entry says is the
console's business (``moderation.services.audit``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry
from storage.moderation import like_pattern


def append(
    session: AsyncSession,
    *,
    at: datetime,
    staff_id: int | None,
    actor: str,
    action: str,
    target: str | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    remote_addr: str | None,
) -> None:
    """Add one entry to the caller's transaction (cut to the columns' sizes)."""
    session.add(
        AuditEntry(
            at=at,
            staff_id=staff_id,
            actor=actor[:254],
            action=action[:40],
            target=target[:120] if target else None,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            remote_addr=remote_addr[:64] if remote_addr else None,
        )
    )


@dataclass(frozen=True)
class AuditSelection:
    """Which entries: an action (exactly), an author and a target (text found anywhere; the
    author case-insensitively), a period ``[start, end)``."""

    action: str = ""
    actor: str = ""
    target: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.action:
            conds.append(AuditEntry.action == self.action)
        if self.actor:
            conds.append(func.lower(AuditEntry.actor).like(like_pattern(self.actor.lower()), "\\"))
        if self.target:
            conds.append(AuditEntry.target.like(like_pattern(self.target), escape="\\"))
        if self.start is not None:
            conds.append(AuditEntry.at >= self.start)
        if self.end is not None:
            conds.append(AuditEntry.at < self.end)
        return conds


async def page(
    session: AsyncSession, selection: AuditSelection, page: int, page_size: int
) -> tuple[list[AuditEntry], int, int, int]:
    """(entries, total, page, pages): page ``page`` (at most the last), newest first."""
    conds = selection.where()
    total = await session.scalar(select(func.count(AuditEntry.id)).where(*conds)) or 0
    pages = max(1, -(-total // page_size))
    page = min(page, pages)
    rows = await session.scalars(
        select(AuditEntry)
        .where(*conds)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), total, page, pages


async def entries(session: AsyncSession, selection: AuditSelection) -> list[AuditEntry]:
    """Every entry selected, oldest first."""
    return list(
        await session.scalars(
            select(AuditEntry).where(*selection.where()).order_by(AuditEntry.at, AuditEntry.id)
        )
    )


async def actions(session: AsyncSession) -> list[str]:
    """The actions the journal holds, sorted."""
    return sorted(a for a in await session.scalars(select(AuditEntry.action).distinct()) if a)
