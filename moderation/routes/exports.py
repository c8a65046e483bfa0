"""Downloads of the annex export for a territory in scope (or, for admins, the region)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from moderation.services.exports import (
    ExportUnavailable,
    audit_export,
    campaign_by_id,
    export_formats,
    run_export,
)
from moderation.services.queue import campaign_choices
from moderation.web import ENGINE_KEY, by_of, db_of, form_str, render, scope_of, settings_of

if TYPE_CHECKING:
    from storage.models import Campaign, Territory


def _context(
    request: web.Request, territories: list[Territory], error: str | None
) -> dict[str, Any]:
    return {
        "territories": territories,
        "formats": export_formats(),
        "error": error,
        "region": scope_of(request).is_admin,
    }


async def exports_form(request: web.Request) -> web.Response:
    territories, _, _ = await campaign_choices(db_of(request), scope_of(request))
    return render(request, "exports.html", _context(request, territories, None))


async def exports_submit(request: web.Request) -> web.StreamResponse:
    db = db_of(request)
    scope = scope_of(request)
    form = await request.post()
    territories, _, _ = await campaign_choices(db, scope)
    allowed = {str(t.id): t for t in territories}
    raw = form_str(form, "territory")
    fmt = form_str(form, "format")

    def fail(message: str, status: int) -> web.Response:
        return render(
            request, "exports.html", _context(request, territories, message), status=status
        )

    territory: Territory | None
    campaign: Campaign | None
    if scope.is_admin and raw.startswith("region:") and raw[7:].isdigit() and len(raw) < 20:
        campaign = await campaign_by_id(db, int(raw[7:]))
        territory = None
        if campaign is None:
            return fail("Campagne inconnue.", 422)
    elif raw in allowed:
        territory = allowed[raw]
        campaign = await campaign_by_id(db, territory.campaign_id)
        assert campaign is not None  # a territory's campaign (foreign key)
    else:
        return fail("Choisissez un territoire de votre périmètre.", 422)
    if fmt not in export_formats():
        return fail("Choisissez un format proposé.", 422)
    target = territory.code if territory is not None else f"{campaign.code}:région"
    try:
        filename, content_type, body = await run_export(
            settings_of(request), request.app[ENGINE_KEY], campaign, territory, fmt
        )
    except ExportUnavailable as exc:
        return fail(str(exc), 409)
    await audit_export(db, by_of(request), campaign, target, fmt, len(body))
    await db.commit()
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:120]
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8" if fmt in ("md", "csv") else None,
        headers={"Content-Disposition": f'attachment; filename="{safe_name}"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/exports", exports_form)
    app.router.add_post("/exports", exports_submit)
