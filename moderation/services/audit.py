"""The audit journal: every staff action appends one entry; admins read and download it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.validation import clean_text
from exporter.rows import neutralise  # the exporter's: one neutraliser for every spreadsheet
from exporter.source import day_bounds
from moderation.security import show_bidi
from moderation.services.filters import DEFAULT_ZONE, parse_date, parse_int
from storage import audit as store
from storage.audit import AuditSelection

if TYPE_CHECKING:
    from storage.models import AuditEntry

#: What an action's code looks like (``login_failed``, ``export_audit``...).
_ACTION_CODE = re.compile(r"[a-z_]{1,40}")
CSV_COLUMNS = ("id", "at", "actor", "action", "target", "before", "after", "remote_addr")


@dataclass(frozen=True)
class By:
    """Who acts, as the journal names them: a staff member (email, id, address) or the CLI."""

    actor: str
    staff_id: int | None = None
    remote_addr: str | None = None


#: The command line (``cnrbot staff ...``): no account, no address.
CLI = By("cli")


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    staff_id: int | None,
    action: str,
    target: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> None:
    """Append one audit entry (the console never updates nor deletes one)."""
    store.append(
        session,
        at=now or datetime.now(UTC),
        staff_id=staff_id,
        actor=actor,
        action=action,
        target=target,
        before=before,
        after=after,
        remote_addr=remote_addr,
    )


async def audit_by(
    session: AsyncSession,
    by: By,
    action: str,
    *,
    target: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """:func:`audit` of an action done by ``by``."""
    await audit(
        session,
        actor=by.actor,
        staff_id=by.staff_id,
        action=action,
        target=target,
        before=before,
        after=after,
        remote_addr=by.remote_addr,
    )


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    zone: str = DEFAULT_ZONE

    @classmethod
    def parse(cls, params: Mapping[str, str], *, zone: str = DEFAULT_ZONE) -> AuditFilters:
        return cls(
            zone=zone,
            action=clean_text(params.get("action", ""))[:40],
            actor=clean_text(params.get("actor", ""))[:254],
            target=clean_text(params.get("target", ""))[:120],
            since=parse_date(params.get("since")),
            until=parse_date(params.get("until")),
            page=max(1, min(parse_int(params.get("page")) or 1, 1_000_000)),
        )

    def query(self, *, page: int | None = None) -> dict[str, str]:
        out = {
            k: v
            for k, v in (("action", self.action), ("actor", self.actor), ("target", self.target))
            if v
        }
        if self.since:
            out["since"] = self.since.isoformat()
        if self.until:
            out["until"] = self.until.isoformat()
        p = self.page if page is None else page
        if p != 1:
            out["page"] = str(p)
        return out

    def audited(self) -> dict[str, Any]:
        """The filters as the journal records them: which were set, a typed text (an author,
        a target: anything may have been typed there) by its length only, an action by its
        code, the days as they are."""
        out: dict[str, Any] = {}
        if self.action:
            out["action"] = (
                self.action if _ACTION_CODE.fullmatch(self.action) else {"chars": len(self.action)}
            )
        for name, value in (("actor", self.actor), ("target", self.target)):
            if value:
                out[name] = {"chars": len(value)}
        if self.since:
            out["since"] = self.since.isoformat()
        if self.until:
            out["until"] = self.until.isoformat()
        return out

    def selection(self) -> AuditSelection:
        """The entries these filters select (days as UTC bounds)."""
        start, end = day_bounds(self.since, self.until, self.zone)
        return AuditSelection(self.action, self.actor, self.target, start, end)


async def audit_page(
    session: AsyncSession, filters: AuditFilters, page_size: int
) -> tuple[list[AuditEntry], int, int, int]:
    """(entries, total, page, pages): the page asked (at most the last), newest first."""
    return await store.page(session, filters.selection(), filters.page, page_size)


async def audit_rows(session: AsyncSession, filters: AuditFilters) -> list[AuditEntry]:
    """Every entry the filters select, oldest first."""
    return await store.entries(session, filters.selection())


async def audit_actions(session: AsyncSession) -> list[str]:
    """The actions the journal holds (for the filter's choices), sorted."""
    return await store.actions(session)


def _cell(value: object) -> str:
    return neutralise(show_bidi("" if value is None else str(value)))


def audit_csv(rows: list[AuditEntry]) -> bytes:
    """The journal as a CSV file for a spreadsheet (UTF-8 with BOM, cells neutralised, bidi
    controls written out as ``\\u202e``: a cell reads as it is stored)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                _cell(v)
                for v in (
                    r.id,
                    r.at.isoformat(),
                    r.actor,
                    r.action,
                    r.target,
                    json.dumps(r.before, ensure_ascii=False) if r.before is not None else "",
                    json.dumps(r.after, ensure_ascii=False) if r.after is not None else "",
                    r.remote_addr,
                )
            ]
        )
    return ("\ufeff" + buf.getvalue()).encode()
