"""The console's pages, one module per family; :func:`setup_routes` registers them all."""

from __future__ import annotations

from aiohttp import web

from moderation.routes import accounts, audit, dashboard, exports, queue, signin, synthesis

__all__ = ["setup_routes"]


def setup_routes(app: web.Application) -> None:
    for module in (signin, queue, dashboard, synthesis, exports, audit, accounts):
        module.setup(app)
