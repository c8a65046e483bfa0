"""The listeners' access log: what was asked and how it went, never who asked or what they
typed (see :mod:`bot.logs`)."""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, route pattern (``/contributions/{ref}``, not the path),
    status, size and duration. Nothing that tells who asked or what they typed."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        route = "-"
        match_info = getattr(request, "match_info", None)
        resource = match_info.route.resource if match_info is not None else None
        if resource is not None:
            route = resource.canonical
        self.logger.info(
            "%s %s %s %s %.1f ms",
            request.method,
            route,
            response.status,
            response.body_length,
            time * 1000,
        )
