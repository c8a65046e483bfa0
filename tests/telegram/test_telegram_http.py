"""python-telegram-bot over aiohttp (bot/telegram/http.py): what PTB's Bot sends arrives as
Telegram expects it (form fields, files), and every failure becomes PTB's own error."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.telegram.http import AiohttpRequest
from tests.fakebotapi import FakeBotAPI

TOKEN = "123456:test-token-for-http"


_MESSAGE = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
RESULTS: dict[str, Any] = {
    "getMe": {"id": 99, "is_bot": True, "first_name": "Bot", "username": "recorder_bot"},
    "sendMessage": _MESSAGE,
    "sendDocument": _MESSAGE,
}


class Recorder:
    """A tiny Bot API that records what it receives and answers what it is told to."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.delay = 0.0
        self.answer: tuple[int, dict[str, Any]] | None = None
        self.release = asyncio.Event()
        self.release.set()
        self.base_url = ""
        self.arrived = asyncio.Event()

    def fail(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        """Answer every request with Telegram's error shape."""
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.answer = (code, body)

    async def handle(self, request: web.Request) -> web.Response:
        fields: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                fields[part.name or ""] = {  # type: ignore[union-attr]
                    "filename": part.filename,  # type: ignore[union-attr]
                    "content_type": part.headers.get("Content-Type"),
                    "data": bytes(data),
                }
        else:
            fields = dict(await request.post())
        self.seen.append(
            {
                "method": request.match_info["method"],
                "content_type": request.content_type,
                "user_agent": request.headers.get("User-Agent", ""),
                "fields": fields,
            }
        )
        self.arrived.set()
        await self.release.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            status, body = self.answer
            return web.json_response(body, status=status)
        return web.json_response(
            {"ok": True, "result": RESULTS.get(request.match_info["method"], True)}
        )


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.base_url = f"http://127.0.0.1:{port}/bot"
    try:
        yield rec
    finally:
        rec.release.set()
        await runner.cleanup()


def bot_on(base_url: str, request: AiohttpRequest) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=request, get_updates_request=AiohttpRequest(1))


async def test_a_whole_exchange_with_the_fake_bot_api() -> None:
    async with FakeBotAPI() as api:
        bot = Bot(api.token, base_url=api.base_url, request=AiohttpRequest(2))
        async with bot:
            me = await bot.get_me()
            assert me.is_bot
            user = api.user(501)
            sent = await bot.send_message(user.id, "Bonjour « Camille » — ça va ? 👋")
            assert api.messages(user.id)[-1].text == "Bonjour « Camille » — ça va ? 👋"
            assert sent.text == "Bonjour « Camille » — ça va ? 👋"


async def test_form_fields_and_user_agent_as_ptb_sends_them(recorder: Recorder) -> None:
    async with bot_on(recorder.base_url, AiohttpRequest(2)) as bot:
        recorder.seen.clear()  # (getMe at start)
        await bot.send_message(
            42, 'Texte & accents : é, ü; guillemets "x"', disable_notification=True
        )
    (call,) = recorder.seen
    assert call["method"] == "sendMessage"
    assert call["content_type"] == "application/x-www-form-urlencoded"
    assert call["fields"]["text"] == 'Texte & accents : é, ü; guillemets "x"'
    assert json.loads(call["fields"]["chat_id"]) == 42
    assert json.loads(call["fields"]["disable_notification"]) is True
    assert "python-telegram-bot" in call["user_agent"]


async def test_files_are_sent_as_multipart(recorder: Recorder) -> None:
    async with bot_on(recorder.base_url, AiohttpRequest(2)) as bot:
        recorder.seen.clear()
        content = b"%PDF-1.4 fake\x00\xff binary"
        await bot.send_document(7, InputFile(content, filename="synthèse.pdf"), caption="Annexe")
    (call,) = recorder.seen
    assert call["method"] == "sendDocument"
    assert call["content_type"] == "multipart/form-data"
    fields = call["fields"]
    assert fields["caption"]["data"] == b"Annexe"
    assert fields["chat_id"]["data"] == b"7"
    files = [f for f in fields.values() if f["filename"]]
    assert len(files) == 1
    assert files[0]["data"] == content
    assert files[0]["filename"] == "synthèse.pdf"
    assert files[0]["content_type"] == "application/pdf"


async def test_the_proxy_of_the_environment_is_used(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agency's network reaches Telegram through its proxy (HTTP(S)_PROXY, as httpx)."""
    proxy = recorder.base_url.removesuffix("/bot")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "")
    # a host that does not resolve: only the proxy can answer
    async with bot_on("http://api.telegram.invalid/bot", AiohttpRequest(1)) as bot:
        await bot.send_message(5, "par le proxy")
    assert [c["method"] for c in recorder.seen] == ["getMe", "sendMessage"]
    assert recorder.seen[-1]["fields"]["text"] == "par le proxy"


async def test_no_proxy_is_honoured(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")  # would fail
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    async with bot_on(recorder.base_url, AiohttpRequest(1)) as bot:
        await bot.send_message(5, "en direct")
    assert recorder.seen[-1]["fields"]["text"] == "en direct"


async def test_telegram_errors_keep_their_meaning(recorder: Recorder) -> None:
    async with bot_on(recorder.base_url, AiohttpRequest(2)) as bot:
        recorder.fail(403, "Forbidden: bot was blocked by the user")
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(1, "x")
        recorder.fail(400, "Bad Request: chat not found")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(1, "x")
        recorder.fail(429, "Too Many Requests: retry after 3", {"retry_after": 3})
        with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
            await bot.send_message(1, "x")


async def test_a_slow_answer_is_a_timeout_not_a_hang(recorder: Recorder) -> None:
    async with bot_on(recorder.base_url, AiohttpRequest(2, read_timeout=0.2)) as bot:
        recorder.delay = 5.0
        with pytest.raises(TimedOut):
            await bot.send_message(1, "x")
        # the per-call timeout wins over the default
        recorder.delay = 0.5
        sent = await bot.send_message(1, "x", read_timeout=3)
        assert sent.message_id == 1


async def test_waiting_for_a_free_connection_is_bounded_by_the_pool_timeout(
    recorder: Recorder,
) -> None:
    async with bot_on(
        recorder.base_url, AiohttpRequest(1, pool_timeout=0.2, connect_timeout=0.1)
    ) as bot:
        recorder.release.clear()  # the first request holds the only connection
        recorder.arrived.clear()
        first = asyncio.ensure_future(bot.send_message(1, "premier"))
        async with asyncio.timeout(10):
            await recorder.arrived.wait()
        with pytest.raises(TimedOut):
            await bot.send_message(1, "second")
        recorder.release.set()
        await first
    assert [c["fields"].get("text") for c in recorder.seen if c["method"] == "sendMessage"] == [
        "premier"
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_is_a_network_error() -> None:
    request = AiohttpRequest(1, connect_timeout=1)
    await request.initialize()
    try:
        url = f"http://127.0.0.1:{closed_port()}/bot{TOKEN}/getMe"
        with pytest.raises(NetworkError) as caught:
            await request.post(url)
        assert not isinstance(caught.value, TimedOut)
        assert "aiohttp" in str(caught.value)
    finally:
        await request.shutdown()


async def test_lifecycle() -> None:
    with pytest.raises(ValueError):
        AiohttpRequest(0)
    request = AiohttpRequest(1, read_timeout=7)
    assert request.read_timeout == 7
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:1/", "POST")
    await request.initialize()
    await request.initialize()  # idempotent: the same session
    await request.shutdown()
    await request.shutdown()  # twice is fine
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:1/", "POST")
    async with FakeBotAPI() as api:  # and it starts again after a shutdown
        await request.initialize()
        try:
            status, payload = await request.do_request(f"{api.base_url}{api.token}/getMe", "POST")
        finally:
            await request.shutdown()
    assert status == 200
    assert json.loads(payload)["result"]["is_bot"] is True


def test_cnrbot_run_uses_uvloop_where_installed() -> None:
    from bot.commands.run import run_loop

    async def main() -> int:
        loop = asyncio.get_running_loop()
        return 7 if type(loop).__module__.startswith("uvloop") else 1

    assert run_loop(main()) == 7
