"""``/healthz`` and ``/readyz`` for every listener (Telegram webhook, web chat, console).

* ``GET /healthz``: the process answers (``200 ok``); touches no database: a load balancer or
  an orchestrator restarts a process only when this fails.
* ``GET /readyz``: ``200 ready`` when the database answers, takes a writer and its schema is at
  the current migration (:func:`storage.health.readiness`), and the listener is not shutting
  down; else ``503`` and a short reason (never an address, a secret or an identity). Traffic
  goes elsewhere meanwhile; the process stays up and is ready again when the database is back.

Neither needs a session: the console answers them the same way before its sign-in middleware
(``moderation.app``, which imports nothing of ``bot`` but its HTTP helper).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.health import readiness

HEALTH = "/healthz"
READY = "/readyz"

#: The listener's database engine (None while the application is starting), and whether it is
#: shutting down (then not ready).
EngineOf = Callable[[web.Application], AsyncEngine | None]
Closing = Callable[[web.Application], bool]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, headers={"Cache-Control": "no-store"})


async def healthz(_request: web.Request) -> web.Response:
    return _text(200, "ok")


def readyz(engine_of: EngineOf, closing: Closing | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        if closing is not None and closing(request.app):
            return _text(503, "shutting down")
        engine = engine_of(request.app)
        if engine is None:
            return _text(503, "starting")
        reason = await readiness(engine)
        return _text(503, reason) if reason else _text(200, "ready")

    return handler


def add_health_routes(
    app: web.Application, engine_of: EngineOf, closing: Closing | None = None
) -> None:
    """Route ``/healthz`` and ``/readyz`` on ``app``."""
    app.router.add_get(HEALTH, healthz)
    app.router.add_get(READY, readyz(engine_of, closing))
