"""A fake Telegram Bot API server for end-to-end tests (and the benchmark).

python-telegram-bot talks to it over real HTTP, exactly as to ``api.telegram.org``:
``Bot(token, base_url=api.base_url)`` where ``api.base_url`` is ``http://127.0.0.1:<port>/bot``.

It keeps Telegram's behaviour where it matters to the bot:

* long polling ``getUpdates`` honours ``offset`` (confirms every update below it, like Telegram),
  ``timeout``, ``limit`` and ``allowed_updates``; it refuses to poll while a webhook is set (409);
* ``setWebhook`` makes it POST each update to the registered URL with the
  ``X-Telegram-Bot-Api-Secret-Token`` header, at most one update per chat in flight and at most
  ``max_connections`` at once, re-delivering after any non-2xx answer with an exponential back-off
  (shortened for tests: ``retry_base`` seconds, doubling, capped at ``retry_cap``);
* ``sendDocument`` takes a multipart upload (the file kept in :attr:`ChatState.documents`),
  refuses what Telegram refuses (no file, an empty one, over 50 MB, a caption too long);
* ``sendMessage`` & co. return Telegram's real error shapes (too long, empty, blocked, chat not
  found, ``BUTTON_DATA_INVALID``, "message is not modified", expired callback query...) and can
  be told to answer ``429`` with ``parameters.retry_after``.

Tests inject updates with :class:`FakeBotAPI` helpers (``send_text``, ``press``, ``send_photo``...)
and wait for the bot's messages with :meth:`FakeBotAPI.wait_messages` (asyncio conditions with a
timeout, never sleeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

BOT_ID = 777000111
BOT_USERNAME = "cnr_sante_test_bot"
TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
#: A bot's upload: at most 50 MB; a caption: 1,024 characters.
DOCUMENT_LIMIT = 50 * 1024 * 1024
CAPTION_LIMIT = 1024

JSON = dict[str, Any]
DEFAULT_ALLOWED = (
    *("message", "edited_message", "channel_post", "edited_channel_post"),
    *("callback_query", "my_chat_member", "poll", "inline_query"),
)


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        out: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


@dataclass
class FakeUser:
    id: int
    first_name: str = "Camille"
    language_code: str | None = "fr"
    username: str | None = None

    def as_json(self) -> JSON:
        out: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            out["language_code"] = self.language_code
        if self.username:
            out["username"] = self.username
        return out

    def private_chat(self) -> JSON:
        return {"id": self.id, "type": "private", "first_name": self.first_name}


@dataclass
class SentMessage:
    """A message the bot sent (as Telegram stores it; edits change it in place)."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: JSON | None
    date: int
    edits: int = 0
    history: list[str] = field(default_factory=list)
    #: The chat's latest update when it was sent (what it answers, for a citizen who waits for
    #: the bot before acting again).
    answers: int | None = None

    def buttons(self) -> list[JSON]:
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    def button(self, label_or_data: str) -> JSON:
        """The button whose label contains ``label_or_data`` or whose data ends with it."""
        for b in self.buttons():
            data = b.get("callback_data", "")
            if data == label_or_data or data.endswith(":" + label_or_data):
                return b
        for b in self.buttons():
            if label_or_data.casefold() in b["text"].casefold():
                return b
        raise KeyError(f"no button {label_or_data!r} in {[b['text'] for b in self.buttons()]}")


@dataclass
class CallbackAnswer:
    id: str
    text: str | None
    show_alert: bool


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request (``sendDocument``'s ``document``)."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class SentDocument:
    """A document the bot sent (sendDocument with an uploaded file)."""

    chat_id: int
    message_id: int
    filename: str
    content_type: str
    data: bytes
    caption: str | None


@dataclass
class ChatState:
    id: int
    type: str = "private"
    blocked: bool = False
    messages: list[SentMessage] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    #: The latest update pushed for this chat.
    last_update: int | None = None
    documents: list[SentDocument] = field(default_factory=list)


class FakeBotAPI:
    """The fake server. ``async with FakeBotAPI() as api: ...`` or ``start()``/``stop()``."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        retry_base: float = 0.05,
        retry_cap: float = 0.5,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.token = token
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.webhook_timeout = webhook_timeout
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._poll_generation = 0
        # updates
        self._update_ids = itertools.count(1000)
        self.history: dict[int, JSON] = {}  # every update ever pushed, by id
        #: More webhook URLs to spread deliveries over (a load balancer in front of workers).
        self.webhook_balance: list[str] = []
        #: Spread each delivery attempt to the next URL in turn (a round-robin load balancer: a
        #: retry goes to another worker), rather than each update always to the same one.
        self.webhook_round_robin = False
        self._next_target = itertools.count()
        #: Deliver every update twice, at once, to two workers (the answer is the first's).
        self.webhook_twice = False
        #: Until this time (monotonic), sending methods answer 429 and 5xx in turn.
        self._trouble_until = 0.0
        self._trouble = itertools.cycle([429, 502, 500, 503])
        #: Answers given during trouble, by status.
        self.trouble_answers: dict[int, int] = defaultdict(int)
        self.queue: list[JSON] = []  # not yet confirmed (polling) / not yet acknowledged (webhook)
        self.delivered: dict[int, int] = defaultdict(int)  # update_id -> deliveries
        self._new_update = asyncio.Condition()
        self.allowed_updates: list[str] | None = None
        # webhook
        self.webhook: JSON | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_wakeup = asyncio.Event()
        self.webhook_answers: list[int] = []  # HTTP status of each webhook delivery
        # chats and messages
        self.chats: dict[int, ChatState] = {}
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._changed = asyncio.Condition()
        self.callback_queries: dict[str, JSON] = {}
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self._callback_ids = itertools.count(1)
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.errors: list[tuple[str, int, str]] = []  # (method, code, description)
        self.calls: dict[str, int] = defaultdict(int)
        self._rate_limited = 0
        self._retry_after = 1
        self.request_log: list[tuple[str, JSON]] = []
        self.keep_request_log = False
        self._users: dict[int, FakeUser] = {}
        self._now = time.time
        #: Called with each delivered update before it is sent (bench: timestamps).
        self.on_deliver: Callable[[JSON], None] | None = None
        #: Called with (chat_id, SentMessage) on each sendMessage (bench: latency).
        self.on_send: Callable[[int, SentMessage], None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        self._closing = True
        async with self._new_update:
            self._new_update.notify_all()  # long polls in progress return now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- HTTP ----------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params = await self._params(request)
        self.calls[method] += 1
        if self.keep_request_log:
            self.request_log.append((method, params))
        handler = getattr(self, "_m_" + method.lower(), None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        try:
            result = await handler(params)
        except ApiError as exc:
            self.errors.append((method, exc.code, exc.description))
            await self._notify()
            return web.json_response(exc.body(), status=exc.code)
        if method not in ("sendMessage", "getUpdates"):
            await self._notify()  # (sendMessage notifies itself; getUpdates below)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _params(request: web.Request) -> JSON:
        if request.content_type == "application/json":
            body = await request.json() if request.can_read_body else {}
            return dict(body or {})
        raw = await request.post() if request.can_read_body else {}
        params: JSON = dict(request.query)
        for key, value in raw.items():
            if isinstance(value, web.FileField):  # an upload (sendDocument)
                params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
                continue
            if not isinstance(value, str):
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        # PTB sends plain strings as is: "123" parses as int, "true" as bool, text stays text.
        if "text" in raw and isinstance(raw["text"], str):
            params["text"] = raw["text"]
        return params

    # --- updates: injection ------------------------------------------------------------------

    def user(self, user_id: int, *, lang: str | None = "fr", name: str = "Camille") -> FakeUser:
        """A citizen (their private chat with the bot is created on first contact)."""
        user = FakeUser(id=user_id, first_name=name, language_code=lang)
        self._users[user_id] = user
        self.chats.setdefault(user_id, ChatState(id=user_id))
        return user

    async def push_update(self, kind: str, obj: JSON) -> int:
        """Queue an update ``{"update_id": n, kind: obj}``; returns its update_id."""
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: obj}
        return await self.push_raw(update)

    async def push_raw(self, update: JSON) -> int:
        """Queue an update as is (tests of duplicate deliveries re-push the same update_id)."""
        self.history.setdefault(int(update["update_id"]), update)
        chat = self.chats.get(self._chat_of(update))
        if chat is not None:
            chat.last_update = int(update["update_id"])
        self.queue.append(update)
        self.queue.sort(key=lambda u: u["update_id"])
        async with self._new_update:
            self._new_update.notify_all()
        self._webhook_wakeup.set()
        return int(update["update_id"])

    def _message(self, user: FakeUser, chat: JSON | None = None, **content: Any) -> JSON:
        chat = chat or user.private_chat()
        self.chats.setdefault(chat["id"], ChatState(id=chat["id"], type=chat["type"]))
        mid = next(self._message_ids[chat["id"]])
        return {
            "message_id": mid,
            "date": int(self._now()),
            "chat": chat,
            "from": user.as_json(),
            **content,
        }

    async def send_text(self, user: FakeUser, text: str, **extra: Any) -> int:
        content: JSON = {"text": text, **extra}
        if text.startswith("/"):
            cmd = text.split(maxsplit=1)[0] if text.strip() else text
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(cmd)}]
        return await self.push_update("message", self._message(user, **content))

    async def send_forwarded(self, user: FakeUser, text: str) -> int:
        origin = {"type": "hidden_user", "sender_user_name": "Someone", "date": int(self._now())}
        return await self.push_update(
            "message", self._message(user, text=text, forward_origin=origin)
        )

    async def send_content(self, user: FakeUser, kind: str) -> int:
        """A non-text message: photo, voice, sticker, location, contact, document, poll, video,
        audio, animation, video_note, venue, dice."""
        samples: dict[str, Any] = {
            "photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}],
            "voice": {"file_id": "v1", "file_unique_id": "u2", "duration": 3},
            "sticker": {
                "file_id": "s1",
                "file_unique_id": "u3",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
            "location": {"latitude": 49.89, "longitude": 2.30},
            "contact": {"phone_number": "+33600000000", "first_name": "Camille"},
            "document": {"file_id": "d1", "file_unique_id": "u4", "file_name": "a.pdf"},
            "poll": {
                "id": "poll1",
                "question": "?",
                "options": [{"text": "a", "voter_count": 0}, {"text": "b", "voter_count": 0}],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
            },
            "video": {
                "file_id": "vi1",
                "file_unique_id": "u5",
                "width": 1,
                "height": 1,
                "duration": 1,
            },
            "audio": {"file_id": "a1", "file_unique_id": "u6", "duration": 1},
            "dice": {"emoji": "🎲", "value": 3},
        }
        extra: JSON = {kind: samples[kind]}
        if kind in ("photo", "document"):
            extra["caption"] = "une légende"
        return await self.push_update("message", self._message(user, **extra))

    async def edit_text(self, user: FakeUser, message_id: int, text: str) -> int:
        msg = self._message(user, text=text)
        msg["message_id"] = message_id
        msg["edit_date"] = int(self._now())
        return await self.push_update("edited_message", msg)

    async def send_in_group(self, user: FakeUser, group_id: int, text: str) -> int:
        chat = {"id": group_id, "type": "supergroup", "title": "Groupe santé"}
        content: JSON = {"text": text}
        if text.startswith("/"):
            cmd = text.split(maxsplit=1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(cmd)}]
        return await self.push_update("message", self._message(user, chat=chat, **content))

    async def channel_post(self, channel_id: int, text: str) -> int:
        chat = {"id": channel_id, "type": "channel", "title": "Canal"}
        self.chats.setdefault(channel_id, ChatState(id=channel_id, type="channel"))
        mid = next(self._message_ids[channel_id])
        post = {"message_id": mid, "date": int(self._now()), "chat": chat, "text": text}
        return await self.push_update("channel_post", post)

    async def my_chat_member(
        self, user: FakeUser, *, chat: JSON | None = None, old: str = "member", new: str = "kicked"
    ) -> int:
        """The bot's membership changed: a user blocked it (private, "kicked"), or added it to a
        group (``chat`` given, "member")."""
        chat = chat or user.private_chat()
        self.chats.setdefault(chat["id"], ChatState(id=chat["id"], type=chat["type"]))
        if chat["type"] == "private":
            self.chats[chat["id"]].blocked = new == "kicked"
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "CNR", "username": BOT_USERNAME}
        obj = {
            "chat": chat,
            "from": user.as_json(),
            "date": int(self._now()),
            "old_chat_member": {"status": old, "user": bot},
            "new_chat_member": {"status": new, "user": bot}
            if new != "kicked"
            else {"status": "kicked", "user": bot, "until_date": 0},
        }
        return await self.push_update("my_chat_member", obj)

    async def press(self, user: FakeUser, message: SentMessage, button: str) -> int:
        """Press a button (label fragment or choice id) of a message the bot sent."""
        b = message.button(button)
        return await self.press_data(user, message, b["callback_data"])

    async def press_data(self, user: FakeUser, message: SentMessage | None, data: str) -> int:
        qid = str(next(self._callback_ids) * 7919 + user.id)
        query: JSON = {
            "id": qid,
            "from": user.as_json(),
            "chat_instance": f"ci{user.id}",
            "data": data,
        }
        if message is not None:
            query["message"] = {
                "message_id": message.message_id,
                "date": message.date,
                "chat": {"id": message.chat_id, "type": "private", "first_name": user.first_name},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "CNR"},
                "text": message.text,
                **({"reply_markup": message.reply_markup} if message.reply_markup else {}),
            }
        self.callback_queries[qid] = query
        return await self.push_update("callback_query", query)

    # --- waiting -------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (re-checked on each change), or fail."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_messages(self, chat_id: int, n: int, within: float = 10.0) -> list[SentMessage]:
        """The first ``n`` messages sent to ``chat_id``, once they exist."""
        chat = self.chats.setdefault(chat_id, ChatState(id=chat_id))
        try:
            await self.wait_for(lambda: len(chat.messages) >= n, within)
        except TimeoutError:
            texts = [m.text[:80] for m in chat.messages]
            raise AssertionError(
                f"chat {chat_id}: expected {n} messages, got {len(chat.messages)}: {texts}"
            ) from None
        return chat.messages[:n]

    async def wait_message(self, chat_id: int, n: int, within: float = 10.0) -> SentMessage:
        """The n-th (1-based) message sent to ``chat_id``."""
        return (await self.wait_messages(chat_id, n, within))[n - 1]

    async def wait_answered(self, query_id: str, within: float = 10.0) -> CallbackAnswer:
        await self.wait_for(lambda: query_id in self.callback_answers, within)
        return self.callback_answers[query_id]

    async def wait_confirmed(self, update_id: int, within: float = 10.0) -> None:
        """Until the bot has confirmed (polling offset) or acknowledged (webhook 2xx) it."""
        await self.wait_for(lambda: all(u["update_id"] != update_id for u in self.queue), within)

    def messages(self, chat_id: int) -> list[SentMessage]:
        return list(self.chats.get(chat_id, ChatState(id=chat_id)).messages)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- rate limits and failures ----------------------------------------------------------

    def rate_limit(self, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` sendMessage calls answer 429 with ``retry_after``."""
        self._rate_limited = times
        self._retry_after = retry_after

    def fail_sends(self, after: int, times: int = 1) -> None:
        """After ``after`` more successful sendMessage calls, the next ``times`` answer 502
        (Telegram failing midway through an update's replies)."""
        self._fail_after = after
        self._fail_times = times

    def block(self, chat_id: int, blocked: bool = True) -> None:
        self.chats.setdefault(chat_id, ChatState(id=chat_id)).blocked = blocked

    def forget_chat(self, chat_id: int) -> None:
        """Make the chat unknown to the fake (sendMessage: "chat not found")."""
        self.chats.pop(chat_id, None)

    # --- methods -----------------------------------------------------------------------------

    async def _m_getme(self, p: JSON) -> JSON:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "CNR Santé",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_close(self, p: JSON) -> bool:
        return True

    async def _m_logout(self, p: JSON) -> bool:
        return True

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self.queue = [u for u in self.queue if u["update_id"] >= offset]
        elif offset < 0:
            self.queue = self.queue[offset:]

    def _allowed(self, update: JSON, allowed: Iterable[str] | None) -> bool:
        if not allowed:
            allowed = DEFAULT_ALLOWED
        return any(k in update for k in allowed)

    async def _m_getupdates(self, p: JSON) -> list[JSON]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        limit = max(1, min(100, int(p.get("limit") or 100)))
        if "allowed_updates" in p:
            self.allowed_updates = list(p["allowed_updates"]) or None
        self._confirm(offset)
        async with self._new_update:
            self._new_update.notify_all()  # an earlier long poll still waiting ends (409)
        await self._notify()
        # Telegram drops updates the bot did not ask for.
        self.queue = [u for u in self.queue if self._allowed(u, self.allowed_updates)]

        def ready() -> bool:
            return bool(self.queue) or self.webhook is not None or self._closing

        self._poll_generation += 1
        generation = self._poll_generation
        if not ready() and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout), self._new_update:
                    await self._new_update.wait_for(
                        lambda: ready() or self._poll_generation != generation
                    )
        if self._poll_generation != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
            self.queue = [u for u in self.queue if self._allowed(u, self.allowed_updates)]
        batch = self.queue[:limit]
        await self._notify()
        for u in batch:
            self.delivered[u["update_id"]] += 1
            if self.on_deliver:
                self.on_deliver(u)
        return batch

    async def _m_setwebhook(self, p: JSON) -> bool:
        url = p.get("url") or ""
        if not url:
            return await self._m_deletewebhook(p)
        secret = p.get("secret_token")
        if secret is not None and (
            not 1 <= len(str(secret)) <= 256
            or not all(c.isalnum() or c in "_-" for c in str(secret))
        ):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {
            "url": url,
            "secret_token": None if secret is None else str(secret),
            "max_connections": int(p.get("max_connections") or 40),
            "allowed_updates": p.get("allowed_updates"),
        }
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"]) or None
        if p.get("drop_pending_updates"):
            self.queue.clear()
        if self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._deliver_loop())
        self._webhook_wakeup.set()
        async with self._new_update:
            self._new_update.notify_all()
        return True

    async def _m_deletewebhook(self, p: JSON) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self.queue.clear()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        return True

    async def _m_getwebhookinfo(self, p: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.queue),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    # webhook delivery: one update per chat in flight, max_connections at once, back-off.

    @staticmethod
    def _chat_of(update: JSON) -> int:
        for key, obj in update.items():
            if not isinstance(obj, dict):
                continue
            if "chat" in obj:
                return int(obj["chat"]["id"])
            if key == "callback_query":
                return int(obj["from"]["id"])
        return 0

    async def _deliver_loop(self) -> None:
        in_flight: dict[int, asyncio.Task[None]] = {}
        not_before: dict[int, float] = {}
        failures: dict[int, int] = defaultdict(int)
        try:
            async with ClientSession(timeout=ClientTimeout(total=self.webhook_timeout)) as http:
                while self.webhook is not None:
                    self._webhook_wakeup.clear()
                    now = time.monotonic()
                    hook = self.webhook
                    self.queue = [u for u in self.queue if self._allowed(u, self.allowed_updates)]
                    next_due: float | None = None
                    busy_chats = {c for c, t in in_flight.items() if not t.done()}
                    for update in list(self.queue):
                        uid = update["update_id"]
                        chat = self._chat_of(update)
                        if chat in busy_chats:
                            continue
                        busy_chats.add(chat)  # later updates of this chat wait for this one
                        if len(in_flight) >= hook["max_connections"]:
                            break
                        due = not_before.get(uid, 0.0)
                        if due > now:
                            next_due = due if next_due is None else min(next_due, due)
                            continue
                        in_flight[chat] = asyncio.create_task(
                            self._post(http, hook, update, not_before, failures, in_flight, chat)
                        )
                    timeout = None if next_due is None else max(0.0, next_due - now)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await self._webhook_wakeup.wait()
        finally:
            for t in in_flight.values():
                t.cancel()

    async def _post(
        self,
        http: ClientSession,
        hook: JSON,
        update: JSON,
        not_before: dict[int, float],
        failures: dict[int, int],
        in_flight: dict[int, asyncio.Task[None]],
        chat: int,
    ) -> None:
        uid = update["update_id"]
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        self.delivered[uid] += 1
        if self.on_deliver:
            self.on_deliver(update)
        targets = [hook["url"], *self.webhook_balance]
        turn = next(self._next_target) if self.webhook_round_robin else uid
        url = targets[turn % len(targets)]

        async def post(url: str) -> int:
            try:
                async with http.post(url, data=json.dumps(update), headers=headers) as resp:
                    await resp.read()
                    return resp.status
            except Exception:
                return 0

        if self.webhook_twice:
            twin = targets[(turn + 1) % len(targets)]
            self.delivered[uid] += 1
            status, _ = await asyncio.gather(post(url), post(twin))
        else:
            status = await post(url)
        self.webhook_answers.append(status)
        if 200 <= status < 300:
            self.queue = [u for u in self.queue if u["update_id"] != uid]
            not_before.pop(uid, None)
            failures.pop(uid, None)
        else:
            failures[uid] += 1
            delay = min(self.retry_cap, self.retry_base * 2 ** (failures[uid] - 1))
            not_before[uid] = time.monotonic() + delay
        in_flight.pop(chat, None)
        self._webhook_wakeup.set()
        await self._notify()

    # sending

    def _chat(self, p: JSON) -> ChatState:
        raw = p.get("chat_id")
        try:
            chat_id = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _check_markup(markup: Any) -> JSON | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for b in row:
                if not str(b.get("text", "")).strip():
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = b.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    @staticmethod
    def _check_text(text: Any) -> str:
        text = "" if text is None else str(text)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    def _message_json(self, m: SentMessage) -> JSON:
        chat = self.chats[m.chat_id]
        out: JSON = {
            "message_id": m.message_id,
            "date": m.date,
            "chat": {"id": m.chat_id, "type": chat.type},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "CNR Santé"},
            "text": m.text,
        }
        if m.edits:
            out["edit_date"] = m.date
        if m.reply_markup:
            out["reply_markup"] = m.reply_markup
        return out

    def trouble(self, seconds: float, retry_after: int = 1) -> None:
        """For ``seconds``, sendMessage, the edits and answerCallbackQuery answer 429 (with
        ``retry_after``), 502, 500 and 503 in turn (Telegram overloaded)."""
        self._trouble_until = time.monotonic() + seconds
        self._retry_after = retry_after

    def _troubled(self) -> None:
        if time.monotonic() >= self._trouble_until:
            return
        status = next(self._trouble)
        self.trouble_answers[status] += 1
        if status == 429:
            raise ApiError(
                429,
                f"Too Many Requests: retry after {self._retry_after}",
                {"retry_after": self._retry_after},
            )
        raise ApiError(
            status,
            {502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Internal Server Error"),
        )

    async def _m_sendmessage(self, p: JSON) -> JSON:
        self._troubled()
        if getattr(self, "_fail_times", 0) > 0:
            if self._fail_after > 0:
                self._fail_after -= 1
            else:
                self._fail_times -= 1
                raise ApiError(502, "Bad Gateway")
        if self._rate_limited > 0:
            self._rate_limited -= 1
            raise ApiError(
                429,
                f"Too Many Requests: retry after {self._retry_after}",
                {"retry_after": self._retry_after},
            )
        chat = self._chat(p)
        text = self._check_text(p.get("text"))
        markup = self._check_markup(p.get("reply_markup"))
        msg = SentMessage(
            chat_id=chat.id,
            message_id=next(self._message_ids[chat.id]),
            text=text,
            reply_markup=markup,
            date=int(self._now()),
            answers=chat.last_update,
        )
        chat.messages.append(msg)
        if self.on_send:
            self.on_send(chat.id, msg)
        await self._notify()
        return self._message_json(msg)

    async def _m_senddocument(self, p: JSON) -> JSON:
        """A document uploaded with the request (multipart/form-data), as Telegram takes it."""
        chat = self._chat(p)
        upload = p.get("document")
        if not isinstance(upload, UploadedFile):
            raise ApiError(400, "Bad Request: wrong remote file identifier specified")
        if not upload.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        if len(upload.data) > DOCUMENT_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        caption = p.get("caption")
        if caption is not None and len(str(caption)) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        doc = SentDocument(
            chat_id=chat.id,
            message_id=next(self._message_ids[chat.id]),
            filename=upload.filename,
            content_type=upload.content_type,
            data=upload.data,
            caption=None if caption is None else str(caption),
        )
        chat.documents.append(doc)
        return {
            "message_id": doc.message_id,
            "date": int(self._now()),
            "chat": {"id": chat.id, "type": chat.type},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "CNR Santé"},
            "document": {
                "file_id": f"doc-{chat.id}-{doc.message_id}",
                "file_unique_id": f"u{chat.id}x{doc.message_id}",
                "file_name": doc.filename,
                "mime_type": doc.content_type,
                "file_size": len(doc.data),
            },
            **({"caption": doc.caption} if doc.caption is not None else {}),
        }

    def _find(self, p: JSON) -> SentMessage:
        chat = self._chat(p)
        mid = int(p.get("message_id") or 0)
        for m in chat.messages:
            if m.message_id == mid:
                return m
        raise ApiError(400, "Bad Request: message to edit not found")

    async def _m_editmessagetext(self, p: JSON) -> JSON:
        self._troubled()
        m = self._find(p)
        text = self._check_text(p.get("text"))
        markup = self._check_markup(p.get("reply_markup"))
        if text == m.text and markup == m.reply_markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        m.history.append(m.text)
        m.text, m.reply_markup = text, markup
        m.edits += 1
        await self._notify()
        return self._message_json(m)

    async def _m_editmessagereplymarkup(self, p: JSON) -> JSON:
        self._troubled()
        m = self._find(p)
        markup = self._check_markup(p.get("reply_markup"))
        if markup == m.reply_markup or (not markup and not m.reply_markup):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        m.reply_markup = markup
        m.edits += 1
        await self._notify()
        return self._message_json(m)

    async def _m_answercallbackquery(self, p: JSON) -> bool:
        self._troubled()
        qid = str(p.get("callback_query_id") or "")
        if qid not in self.callback_queries or qid in self.callback_answers:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        text = p.get("text")
        if text is not None and len(str(text)) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[qid] = CallbackAnswer(
            id=qid, text=None if text is None else str(text), show_alert=bool(p.get("show_alert"))
        )
        await self._notify()
        return True

    async def _m_sendchataction(self, p: JSON) -> bool:
        chat = self._chat(p)
        chat.actions.append(str(p.get("action")))
        return True

    @staticmethod
    def _scope_key(p: JSON) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        return (str(scope.get("type", "default")), str(p.get("language_code") or ""))

    async def _m_setmycommands(self, p: JSON) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be an array")
        for c in commands:
            name = str(c.get("command", ""))
            desc = str(c.get("description", ""))
            if not (1 <= len(name) <= 32) or not all(
                ch.islower() or ch.isdigit() or ch == "_" for ch in name
            ):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(desc) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        self.commands[self._scope_key(p)] = list(commands)
        return True

    async def _m_getmycommands(self, p: JSON) -> list[JSON]:
        return self.commands.get(self._scope_key(p), [])

    async def _m_deletemycommands(self, p: JSON) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True
