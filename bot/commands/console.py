"""``cnrbot console --listen 127.0.0.1 --port 8081``: the staff moderation console.

It has its own listener, never the port of the Telegram webhook; put it behind a reverse proxy
with TLS (and ``CNR_CONSOLE_SECURE_COOKIES=true``) when it is reachable by anyone but localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from aiohttp import web

from bot.commands import stop_on_signals
from bot.metrics import serve_metrics
from moderation.app import create_app
from storage.db import create_engine, session_factory, upgrade
from storage.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("console")
    parser.add_argument("--listen", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.set_defaults(func=_console)


def _console(args: argparse.Namespace) -> int:
    settings = Settings()

    async def serve() -> int:
        engine = create_engine(settings)
        await upgrade(engine)
        from bot.access_log import AccessLogger

        app = create_app(settings, session_factory(engine))
        runner = web.AppRunner(app, access_log_class=AccessLogger)
        await runner.setup()
        site = web.TCPSite(runner, args.listen, args.port)
        await site.start()
        print(f"console de modération : http://{args.listen}:{args.port}/", flush=True)
        try:
            metrics = await serve_metrics(settings, lambda: engine, "console")
        except OSError:
            await runner.cleanup()
            await engine.dispose()
            return 1
        stop = stop_on_signals()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await metrics.stop()
            await engine.dispose()
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve())
    return 0
