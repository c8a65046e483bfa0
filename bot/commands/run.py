"""``cnrbot run``: the Telegram bot, by long polling (default) or webhook.

``cnrbot run --webhook --listen 127.0.0.1 --port 8080 --public-url https://bot.example.org``
serves the webhook on a secret path behind the reverse proxy and registers it with Telegram
(secret token, allowed updates, max connections from settings). Several webhook workers may
share one PostgreSQL database. SIGTERM (or Ctrl-C) drains updates in flight before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

from bot.commands import stop_on_signals
from storage.settings import Settings

log = logging.getLogger("cnrbot.run")

NO_TOKEN = (
    "cnrbot run: no Telegram bot token. Set CNR_TELEGRAM_TOKEN (from @BotFather), "  # noqa: S105
    "or try the conversation locally, without Telegram, with `cnrbot chat`."
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        description=(
            "Run the Telegram bot. Token from CNR_TELEGRAM_TOKEN; Bot API server from "
            "CNR_TELEGRAM_API_BASE_URL (a self-hosted one, or the tests' fake server)."
        ),
    )
    parser.add_argument("--webhook", action="store_true", help="receive updates by webhook")
    parser.add_argument("--listen", default="127.0.0.1", help="webhook: address to bind")
    parser.add_argument("--port", type=int, default=8080, help="webhook: port to bind")
    parser.add_argument(
        "--public-url", help="webhook: public HTTPS base URL Telegram posts to (required)"
    )
    parser.add_argument(
        "--no-register",
        action="store_true",
        help="webhook: do not (re)register the webhook (another worker does)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value().strip():
        print(NO_TOKEN, file=sys.stderr)
        return 2
    if args.webhook:
        if not args.public_url:
            print("cnrbot run --webhook needs --public-url https://…", file=sys.stderr)
            return 2
        url = urlparse(args.public_url)
        if url.scheme not in ("https", "http") or not url.netloc:
            print(f"cnrbot run: not a URL: {args.public_url!r}", file=sys.stderr)
            return 2
    # Our own operational messages (never texts nor identities) at INFO; libraries as set.
    for name in ("bot", "storage"):
        if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    return run_loop(_main(settings, args))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run the bot on uvloop where it is installed (Linux, macOS): the bot spends much of
    its time in the event loop (many citizens, many small requests), and uvloop's loop costs
    less CPU per wakeup than asyncio's (bench/telegram_load.py); asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.run(main)
    return uvloop.run(main)


async def _main(settings: Settings, args: argparse.Namespace) -> int:
    from bot.logs import announce
    from bot.metrics import serve_metrics
    from bot.telegram.app import TelegramChannel
    from storage.service import DialogService

    stop = stop_on_signals()

    from telegram.error import InvalidToken, TelegramError

    service = await DialogService.open(settings)
    channel = TelegramChannel(settings, service, service.engine)
    try:
        metrics = await serve_metrics(settings, lambda: service.engine, "run")
    except OSError:
        await service.close()
        return 1
    try:
        try:
            await channel.start()
        except InvalidToken:
            print("cnrbot run: Telegram refused the token (CNR_TELEGRAM_TOKEN).", file=sys.stderr)
            return 1
        except TelegramError as exc:
            print(
                f"cnrbot run: cannot reach the Bot API at CNR_TELEGRAM_API_BASE_URL "
                f"({type(exc).__name__}).",
                file=sys.stderr,
            )
            return 1
        if args.webhook:
            port = await channel.serve_webhook(args.listen, args.port)
            if not args.no_register:
                await channel.register_webhook(args.public_url)
            announce(f"cnrbot: webhook listening on {args.listen}:{port}")
            await stop.wait()
        else:
            announce("cnrbot: polling")
            await channel.poll(stop)
    finally:
        await channel.stop()
        await metrics.stop()
        await service.close()
    announce("cnrbot: stopped")
    return 0
