"""The audit journal (admins): the filtered pages, and the same selection as a CSV file."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from moderation.services.audit import (
    AuditFilters,
    audit_actions,
    audit_by,
    audit_csv,
    audit_page,
    audit_rows,
)
from moderation.web import by_of, db_of, render, require_admin, settings_of


async def audit_view(request: web.Request) -> web.Response:
    require_admin(request)
    db = db_of(request)
    filters = AuditFilters.parse(request.query, zone=settings_of(request).timezone)
    rows, total, page, pages = await audit_page(db, filters, settings_of(request).console_page_size)
    return render(
        request,
        "audit.html",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "filters": filters,
            "actions": await audit_actions(db),
            "qs": urlencode(filters.query(page=1)),
            "prev_qs": urlencode(filters.query(page=page - 1)),
            "next_qs": urlencode(filters.query(page=page + 1)),
        },
    )


async def audit_download(request: web.Request) -> web.Response:
    require_admin(request)
    db = db_of(request)
    filters = AuditFilters.parse(request.query, zone=settings_of(request).timezone)
    rows = await audit_rows(db, filters)
    body = audit_csv(rows)
    # the filters by name (a typed text by its length): never words that may quote a citizen
    after = {"rows": len(rows), **filters.audited()}
    await audit_by(db, by_of(request), "export_audit", after=after)
    await db.commit()
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="journal-audit.csv"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/audit", audit_view)
    app.router.add_get("/audit.csv", audit_download)
