"""The Telegram channel, assembled: PTB's ``Bot`` (with ``AIORateLimiter``) for talking to
Telegram, our own receivers (long polling, webhook) that acknowledge an update only once it is
recorded in the inbox, and the core's processor and notifier (outbox, reminders) driving the
Telegram adapter.

Why not PTB's ``Updater``/webhook server: they acknowledge updates before handling them (a crash
loses them), and its webhook compares the secret with ``!=``. Why not ``ConversationHandler``:
its state lives in memory; here the database is the single source of truth.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import warnings
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, BotCommand, BotCommandScopeAllPrivateChats
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.warnings import PTBUserWarning

from bot import metrics
from bot.core.health import add_health_routes
from bot.core.notifier import Notifier, Pushed
from bot.core.processor import DB_ERRORS, DialogHandler, Processor
from bot.telegram.adapter import TelegramAdapter
from bot.telegram.envelope import CHANNEL, Envelope, envelope
from bot.telegram.http import AiohttpRequest
from dialogs.messages import LANGUAGES, normalise_lang, t
from storage.identity import Pseudonymiser, derive_key
from storage.inbox import Inbox
from storage.maintenance import MaintenanceLoop
from storage.outbox import OutboxStore
from storage.settings import Settings

log = logging.getLogger(__name__)

#: The update kinds we ask Telegram for.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
WEBHOOK_INFO = b"cnr-sante-bot/telegram-webhook/v1"


def build_application(
    settings: Settings, *, rate_limit: bool = True, overall_max_rate: float | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """PTB's Application, used only for its Bot (HTTP client, rate limiter); no updater."""
    if settings.telegram_token is None:
        raise ValueError("no Telegram token (CNR_TELEGRAM_TOKEN)")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_file_url)
        .updater(None)
        # aiohttp instead of httpx (bot/telegram/http.py: httpx's pool bookkeeping was the
        # largest cost of an update under load). 8 connections are plenty for Telegram's
        # ~30 messages/s; the long poll has its own.
        .request(AiohttpRequest(8))
        .get_updates_request(AiohttpRequest(1))
    )
    if rate_limit:
        if overall_max_rate is None:
            overall_max_rate = settings.telegram_max_rate
        limiter: Any = AIORateLimiter(overall_max_rate=overall_max_rate, max_retries=3)
        builder = builder.rate_limiter(limiter)
    return builder.build()


def webhook_secret(settings: Settings) -> str:
    """The secret token Telegram sends back in every webhook request (``[A-Za-z0-9_-]``)."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    raw = derive_key(settings.master_secret(), WEBHOOK_INFO)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def webhook_path(settings: Settings) -> str:
    """A path nobody guesses (derived from the secret unless configured)."""
    if settings.webhook_path:
        return "/" + settings.webhook_path.strip("/")
    digest = hashlib.sha256(webhook_secret(settings).encode()).hexdigest()[:32]
    return f"/telegram/{digest}"


def _menu(lang: str) -> list[BotCommand]:
    """The private chats' command menu in ``lang``: the commands under their names in that
    language (French names but in English; each is an alias the dialog knows)."""
    from dialogs.flow import COMMANDS, FRENCH_COMMANDS

    names = {c: c for c in COMMANDS} if lang == "en" else FRENCH_COMMANDS
    return [BotCommand(names[c], t(lang, f"menu.{c}")) for c in COMMANDS]


class OutageNotice:
    """During a database outage, tell each citizen once that there is a temporary problem."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.told: set[int] = set()

    async def tell(self, envelopes: Sequence[Envelope]) -> None:
        for env in envelopes:
            if env.chat_id is None or env.chat_type not in (None, "private"):
                continue
            if env.chat_id in self.told:
                continue
            self.told.add(env.chat_id)
            text = t(normalise_lang(env.lang_hint), "channel.temporary_problem")
            with contextlib.suppress(TelegramError):
                await self.bot.send_message(env.chat_id, text)

    def over(self) -> None:
        self.told.clear()


class TelegramPusher:
    """Notices sent on the bot's own initiative (outbox, reminders)."""

    name = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def push(self, secret: str, text: str) -> Pushed:
        try:
            await self.bot.send_message(int(secret), text)
        except Forbidden:
            return Pushed("blocked", "blocked")
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                return Pushed("blocked", "chat not found")
            return Pushed("failed", exc.message[:200])
        except (NetworkError, RetryAfter) as exc:
            return Pushed("retry", type(exc).__name__)
        return Pushed("sent")


class TelegramChannel:
    def __init__(
        self,
        settings: Settings,
        service: DialogHandler,
        engine: AsyncEngine,
        *,
        application: Application[Any, Any, Any, Any, Any, Any] | None = None,
        concurrency: int | None = None,
        sweep_interval: float = 1.0,
        notify_interval: float | None = None,
        poll_timeout: float = 10.0,
        maintenance_interval: float | None = None,
    ) -> None:
        self.settings = settings
        self.application = application or build_application(settings)
        self.bot: Bot = self.application.bot
        self.pseudonymiser = Pseudonymiser(settings)
        self.inbox = Inbox(settings, engine, CHANNEL)
        self.adapter = TelegramAdapter(self.bot, self.pseudonymiser)
        self.processor: Processor[Envelope] = Processor(
            settings,
            self.inbox,
            service,
            self.adapter,
            concurrency=concurrency,
            sweep_interval=sweep_interval,
        )
        self.adapter.core = self.processor
        self.notifier = Notifier(
            settings,
            OutboxStore(engine),
            self.processor.contacts,
            TelegramPusher(self.bot),
            interval=notify_interval,
        )
        #: Purges and outbox recovery, every settings.maintenance_interval (storage.maintenance).
        self.maintenance = MaintenanceLoop(settings, engine, interval=maintenance_interval)
        self.outage = OutageNotice(self.bot)
        self.poll_timeout = poll_timeout
        self._side: set[asyncio.Task[Any]] = set()
        self._abandoned: set[asyncio.Future[Any]] = set()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.secret = webhook_secret(settings)
        self.path = webhook_path(settings)
        self.offset: int | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.application.initialize()
        await self.set_commands()
        self.processor.start()
        self.notifier.start()
        self.maintenance.start()

    async def stop(self) -> None:
        """Drain: stop receiving, finish the updates in flight, then close."""
        self._closing = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.maintenance.stop()
        await self.processor.drain()
        await self.notifier.stop()
        if self._side:
            await asyncio.wait(list(self._side), timeout=5)
        await self.application.shutdown()

    async def set_commands(self) -> None:
        """The command menus. Private chats (where citizens talk with the bot) get the most
        specific scope Telegram has for them: French names (/aide, /retour...) for French
        users and those of other languages, English names in English. The default scope
        (groups, where the bot only says it talks in private) keeps the English names."""
        from dialogs.flow import COMMANDS

        private = BotCommandScopeAllPrivateChats()
        for lang in LANGUAGES:
            commands = [BotCommand(c, t(lang, f"menu.{c}")) for c in COMMANDS]
            await self.bot.set_my_commands(commands, language_code=lang)
            await self.bot.set_my_commands(_menu(lang), scope=private, language_code=lang)
        default = [BotCommand(c, t("fr", f"menu.{c}")) for c in COMMANDS]
        await self.bot.set_my_commands(default)
        await self.bot.set_my_commands(_menu("fr"), scope=private)

    # --- receiving -------------------------------------------------------------------------------

    async def receive(self, updates: Sequence[dict[str, Any]]) -> bool:
        """Record updates durably, then hand them to the processor. False: not recorded (the
        caller must not acknowledge them)."""
        pairs = [(envelope(u, self.pseudonymiser), u) for u in updates]  # keyed once
        try:
            recorded = await self.inbox.record(pairs)
        except DB_ERRORS as exc:
            log.warning(
                "could not record %d update(s): database unavailable (%s)",
                len(updates),
                type(exc).__name__,
            )
            metrics.error(exc, "telegram")
            self._spawn(self.outage.tell([env for env, _ in pairs]))
            return False
        self.outage.over()
        self.processor.repeated(len(pairs) - len(recorded))
        self.processor.notify(recorded)
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def poll(self, stop: asyncio.Event) -> None:
        """Long polling: the offset moves past updates only once they are recorded."""
        await self.bot.delete_webhook()
        backoff = 0.2
        while not stop.is_set() and not self._closing:
            get = asyncio.ensure_future(self._get_updates())
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({get, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                # Not recorded, so not confirmed: Telegram gives them again to the next poll.
                # (httpx may finish the long poll before honouring the cancellation: we do
                # not wait for it; the task is kept referenced until it ends.)
                get.cancel()
                self._abandoned.add(get)
                get.add_done_callback(self._abandoned.discard)
                stopping.cancel()
                return
            stopping.cancel()
            try:
                updates = get.result()
            except (NetworkError, RetryAfter, Conflict) as exc:
                # Conflict: another poller (a previous instance still finishing its request).
                log.warning("getUpdates failed (%s); retrying", type(exc).__name__)
                await self._pause(stop, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not updates:
                continue
            if await self.receive(updates):
                self.offset = max(int(u["update_id"]) for u in updates) + 1
                backoff = 0.2
            else:
                await self._pause(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _get_updates(self) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "timeout": int(self.poll_timeout),
            "allowed_updates": ALLOWED_UPDATES,
        }
        if self.offset is not None:
            kwargs["offset"] = self.offset
        # Raw JSON (not PTB objects): what we store is exactly what Telegram sent.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PTBUserWarning)
            result = await self.bot.do_api_request(
                "getUpdates", api_kwargs=kwargs, read_timeout=self.poll_timeout + 10
            )
        return list(result)

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()

    # --- webhook ---------------------------------------------------------------------------------

    def webhook_app(self) -> web.Application:
        """The webhook on its secret path, ``/healthz`` and ``/readyz`` (``bot.core.health``:
        not ready while the database is out of reach, or when draining)."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(self.path, self._webhook)
        add_health_routes(app, lambda _app: self.inbox.engine, lambda _app: self._closing)
        return app

    async def _webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.secret.encode()):
            return web.Response(status=403, text="forbidden")
        if self._closing:
            return web.Response(status=503, text="shutting down")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("update_id"), int):
            return web.Response(status=400, text="not an update")
        if await self.receive([body]):
            return web.Response(text="ok")
        return web.Response(status=503, text="temporarily unavailable")

    async def serve_webhook(self, listen: str, port: int) -> int:
        """Start our aiohttp server; returns the bound port."""
        self._runner = web.AppRunner(self.webhook_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, listen, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def register_webhook(self, public_url: str) -> str:
        url = public_url.rstrip("/") + self.path
        await self.bot.set_webhook(
            url=url,
            secret_token=self.secret,
            allowed_updates=ALLOWED_UPDATES,
            max_connections=self.settings.webhook_max_connections,
        )
        return url
