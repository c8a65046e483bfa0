"""The staff console: an aiohttp application, server-rendered with Jinja2 (autoescaped).

``create_app(settings)`` builds it; ``cnrbot console`` serves it on its own listener.
Security: argon2 passwords, server-side sessions (token hash only), CSRF token on every form,
login throttling, scope checked on the server for every route, CSP without inline scripts.

Layout: the pages are in :mod:`moderation.routes` (one module per family: sign-in, queue and
actions, dashboard, exports, audit, accounts), what they do in :mod:`moderation.services` (the
same names, no HTTP), what they share in :mod:`moderation.web`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.http import trust_proxies
from moderation.dsfr import add_dsfr_static
from moderation.routes import setup_routes
from moderation.routes.signin import session_middleware
from moderation.security import LoginThrottle, show_bidi
from moderation.web import (
    ENGINE_KEY,
    HERE,
    SESSIONS_KEY,
    SETTINGS_KEY,
    THROTTLE_KEY,
    Handler,
    as_utc,
    error_pages,
    other_lang,
    security_headers,
    template_context,
)
from storage.db import create_engine, session_factory
from storage.health import readiness
from storage.moderation import install_sqlite_casefold
from storage.settings import Settings

__all__ = ["create_app"]


def create_app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None
) -> web.Application:
    """The console application (no listener: see ``cnrbot console``).

    The database engine lives as long as the application (``cleanup_ctx``): the engine of
    ``sessions`` (their bind) when given, else one made from ``settings``; it is disposed of
    when the application stops. The schema must be migrated already (``cnrbot db upgrade``).
    """
    app = web.Application(
        middlewares=[_health, session_middleware, error_pages], client_max_size=1024 * 1024
    )
    app[SETTINGS_KEY] = settings
    trust_proxies(app, settings.trusted_proxies)
    if sessions is None:
        sessions = session_factory(create_engine(settings))  # connects at the first request
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the console's sessions must be bound to an AsyncEngine")
    app[ENGINE_KEY] = bind
    app[SESSIONS_KEY] = sessions
    app[THROTTLE_KEY] = LoginThrottle(settings.console_max_failed_logins, settings.console_lockout)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        context_processors=[template_context],
        undefined=jinja2.StrictUndefined,
    )
    zone = ZoneInfo(settings.timezone)  # times shown as staff live them (CNR_TIMEZONE)
    env.filters["dt"] = lambda v: as_utc(v).astimezone(zone).strftime("%d/%m/%Y %H:%M") if v else ""
    env.filters["d"] = lambda v: v.strftime("%d/%m/%Y") if v else ""
    env.filters["other_lang"] = other_lang
    env.filters["bidi"] = show_bidi  # bidi controls written out, e.g. in the audit journal
    env.globals["urlencode"] = urlencode
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_database)
    setup_routes(app)
    app.router.add_static("/static/", HERE / "static", append_version=False)
    add_dsfr_static(app)
    return app


@web.middleware
async def _health(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``/healthz`` and ``/readyz`` as on every listener (``bot.core.health``), answered before
    the sign-in: they need no session."""
    if request.path == "/healthz":
        return web.Response(text="ok", headers={"Cache-Control": "no-store"})
    if request.path == "/readyz":
        reason = await readiness(request.app[ENGINE_KEY])
        status = 503 if reason else 200
        return web.Response(
            status=status, text=reason or "ready", headers={"Cache-Control": "no-store"}
        )
    return await handler(request)


async def _database(app: web.Application) -> AsyncIterator[None]:
    """The engine's life is the application's: disposed of when the application stops."""
    engine = app[ENGINE_KEY]
    if install_sqlite_casefold(engine):
        await engine.dispose()  # connections opened before have no case folding
    try:
        yield
    finally:
        await engine.dispose()
