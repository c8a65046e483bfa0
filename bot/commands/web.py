"""``cnrbot web --listen 127.0.0.1 --port 8090``: the citizen web chat.

Its own listener, never the port of the console or of the Telegram webhook. Several workers
may serve it on one PostgreSQL database (stateless: any worker answers any request); put them
behind the reverse proxy of ``deploy/`` (TLS, ``limit_req``) with
``CNR_WEB_SECURE_COOKIES=true``. SIGTERM (or Ctrl-C) finishes the messages in flight.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from typing import Any

from aiohttp import web

from bot.commands import stop_on_signals
from bot.commands.run import run_loop
from storage.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "web",
        description="Serve the citizen web chat (no account; works without JavaScript).",
    )
    parser.add_argument("--listen", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090)")
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        help="act as on this day (YYYY-MM-DD), to try a campaign whose dates are past",
    )
    parser.set_defaults(func=_web)


#: Connections the kernel queues while the worker is busy (aiohttp's default is 128: a crowd
#: arriving at once overflowed it, and a dropped connection waits a second or more for TCP to
#: try again). The kernel caps it at ``net.core.somaxconn`` (4,096 on current Linux).
LISTEN_BACKLOG = 1024


def _web(args: argparse.Namespace) -> int:
    settings = Settings()
    for name in ("bot", "storage"):
        if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    return run_loop(_serve(settings, args.listen, args.port, args.date))


async def _serve(settings: Settings, listen: str, port: int, today: date | None) -> int:
    from bot.access_log import AccessLogger
    from bot.logs import announce
    from bot.metrics import serve_metrics
    from bot.web.app import CHANNEL, create_app

    app = create_app(settings, today=today)
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, listen, port, backlog=LISTEN_BACKLOG)
        await site.start()
    except OSError as exc:
        print(f"cnrbot web: cannot listen on {listen}:{port} ({exc.strerror})", file=sys.stderr)
        await runner.cleanup()
        return 1
    try:
        metrics = await serve_metrics(settings, lambda: app[CHANNEL].service.engine, "web")
    except OSError:
        await runner.cleanup()
        return 1
    announce(f"cnrbot: web chat on http://{listen}:{port}/")
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await metrics.stop()
    announce("cnrbot: stopped")
    return 0
