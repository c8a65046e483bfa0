"""The dashboard of a campaign (counts and charts) and the help page."""

from __future__ import annotations

from aiohttp import web

from moderation.charts import bar_chart, column_chart
from moderation.services.dashboard import dashboard
from moderation.services.queue import STATUSES
from moderation.web import db_of, render, scope_of, settings_of


async def dashboard_view(request: web.Request) -> web.Response:
    raw = request.query.get("campaign", "")
    campaign_id = int(raw) if raw.isdigit() and len(raw) < 12 else None
    data = await dashboard(
        db_of(request), scope_of(request), campaign_id, zone=settings_of(request).timezone
    )
    charts = {}
    if data is not None:
        charts["per_day"] = column_chart(
            [(d.strftime("%d/%m/%Y"), n) for d, n in data.per_day],
            title="Contributions reçues par jour",
        )
        charts["per_theme"] = bar_chart(
            [(f"{t.code} — {t.label_fr}", n) for t, n in data.per_theme],
            title="Contributions par thème (en rouge : aucune)",
        )
        charts["per_status"] = bar_chart(
            [(STATUSES[s], n) for s, n in data.by_status.items()],
            title="Contributions par statut",
            highlight_zero=False,
        )
    return render(request, "dashboard.html", {"d": data, "charts": charts, "statuses": STATUSES})


async def help_page(request: web.Request) -> web.Response:
    return render(request, "help.html", {})


def setup(app: web.Application) -> None:
    app.router.add_get("/dashboard", dashboard_view)
    app.router.add_get("/aide", help_page)
