"""Nothing lost, nothing duplicated: duplicate deliveries, the webhook's secret, a database
that stops answering, 50 citizens at once, two workers on one PostgreSQL, and the real
``cnrbot run`` process killed with SIGKILL (and stopped with SIGTERM) mid-conversations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from dialogs.messages import t
from storage.models import Contribution, InboundMessage
from storage.service import DialogService
from storage.settings import Settings
from tests.fakebotapi import FakeBotAPI
from tests.outage import TcpProxy, sqlite_locked
from tests.telegram_helpers import (
    Bot,
    Citizen,
    bot_settings,
    contribute_fr,
    open_campaign_file,
    running_bot,
    up_to_profile,
)


async def count(service: DialogService, model: type, *where: object) -> int:
    async with service.sessions() as session:
        stmt = select(func.count()).select_from(model)
        for w in where:
            stmt = stmt.where(w)  # type: ignore[arg-type]
        return int(await session.scalar(stmt) or 0)


async def references(service: DialogService) -> list[str]:
    async with service.sessions() as session:
        return list(await session.scalars(select(Contribution.reference)))


async def settle(bot: Bot) -> None:
    await bot.api.wait_for(lambda: not bot.api.queue)
    await bot.channel.processor.idle()
    await bot.channel.processor.flush()


# --- duplicates -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_redelivered_updates_change_nothing_and_send_nothing(
    sqlite_settings: Settings, mode: str
) -> None:
    async with running_bot(sqlite_settings, mode=mode) as bot:
        c = Citizen(bot.api, bot.api.user(2001))
        await contribute_fr(c)
        await settle(bot)
        sent = len(c.messages)
        answers = dict(bot.api.callback_answers)
        assert await count(bot.service, Contribution) == 1
        # Telegram re-sends every update of the conversation (webhook retry, restart...)
        for update in list(bot.api.history.values()):
            await bot.api.push_raw(update)
        await settle(bot)
        assert len(c.messages) == sent
        assert bot.api.callback_answers == answers
        assert await count(bot.service, Contribution) == 1
        assert bot.channel.processor.stats.failed == 0


async def test_a_button_pressed_twice_quickly_submits_once(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, mode="webhook") as bot:
        c = Citizen(bot.api, bot.api.user(2002))
        await up_to_profile(
            c,
            theme="1",
            need="Il manque des médecins traitants dans tout le canton depuis des années.",
            solution="Des maisons de santé pluriprofessionnelles dans chaque canton rural.",
            levers=None,
        )
        await c.press("p:-")
        review = await c.expect(button="send")
        # double tap: two distinct updates carrying the same button
        await bot.api.press(c.user, review, "send")
        await bot.api.press(c.user, review, "send")
        await c.expect(text="HDF-OISE-000001")
        await c.expect(text=t("fr", "channel.stale_choice"))
        await settle(bot)
        assert await count(bot.service, Contribution) == 1


async def test_updates_held_in_memory_are_not_read_back_by_the_sweeper(
    sqlite_settings: Settings,
) -> None:
    api = await FakeBotAPI().start()
    settings = bot_settings(sqlite_settings, api)
    service = await DialogService.open(settings)
    # The first event waits until the inbox was swept a few times: an update held in memory
    # longer than the sweep interval, as under load.
    gate, handle = asyncio.Event(), service.handle

    async def slow_handle(*args: Any, **kwargs: Any) -> Any:
        await asyncio.wait_for(gate.wait(), 20)
        return await handle(*args, **kwargs)

    service.handle = slow_handle  # type: ignore[method-assign]
    try:
        async with running_bot(
            settings, mode="webhook", api=api, service=service, sweep_interval=0.05
        ) as bot:
            inbox = bot.channel.inbox
            sweeps, reads = 0, 0
            swept = asyncio.Event()
            sweep, read = inbox.pending_keys, inbox.next_for

            async def counting_sweep(*args: Any, **kwargs: Any) -> list[str]:
                nonlocal sweeps
                sweeps += 1
                if sweeps >= 5:
                    swept.set()
                return await sweep(*args, **kwargs)

            async def counting_read(*args: Any, **kwargs: Any) -> Any:
                nonlocal reads
                reads += 1
                return await read(*args, **kwargs)

            inbox.pending_keys = counting_sweep  # type: ignore[method-assign]
            inbox.next_for = counting_read  # type: ignore[method-assign]
            c = Citizen(bot.api, bot.api.user(2003))
            await c.say("/start")
            await asyncio.wait_for(swept.wait(), 20)  # it waited through several sweeps
            gate.set()
            await c.expect(button="consent:yes")
            await settle(bot)
            assert reads == 0  # nothing read back: the update was in the processor's hands
            assert len(c.messages) == 1  # answered once
            assert await count(service, InboundMessage, InboundMessage.status == "done") == 1
    finally:
        await service.close()
        await api.stop()


# --- the webhook's door -------------------------------------------------------------------------


async def test_webhook_requires_the_secret_token(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, mode="webhook") as bot:
        hook = bot.api.webhook
        assert hook is not None and hook["secret_token"] and bot.channel.path in hook["url"]
        assert hook["max_connections"] == bot.settings.webhook_max_connections
        assert set(hook["allowed_updates"]) >= {"message", "callback_query", "edited_message"}
        url = hook["url"]
        update = {
            "update_id": 99,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "X"},
                "text": "hello",
            },
        }
        header = "X-Telegram-Bot-Api-Secret-Token"
        async with aiohttp.ClientSession() as http:
            for headers in (
                {},
                {header: ""},
                {header: "wrong"},
                {header: hook["secret_token"][:-1]},
                {header: hook["secret_token"] + "x"},
            ):
                async with http.post(url, json=update, headers=headers) as resp:
                    assert resp.status == 403, headers
            async with http.post(
                url, data="{not json", headers={header: hook["secret_token"]}
            ) as resp:
                assert resp.status == 400
            async with http.post(
                url, json={"no": "update_id"}, headers={header: hook["secret_token"]}
            ) as resp:
                assert resp.status == 400
            other = url.replace(bot.channel.path, "/telegram/guess")
            async with http.post(other, json=update, headers={header: "x"}) as resp:
                assert resp.status in (404, 405)
            assert await count(bot.service, InboundMessage) == 0
            async with http.post(url, json=update, headers={header: hook["secret_token"]}) as resp:
                assert resp.status == 200
        assert await count(bot.service, InboundMessage) == 1


# --- database outage ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_database_outage_loses_nothing_and_warns_once(
    sqlite_settings: Settings, mode: str
) -> None:
    settings = sqlite_settings.model_copy(update={"sqlite_busy_timeout_ms": 50})
    async with running_bot(settings, mode=mode) as bot:
        c = Citizen(bot.api, bot.api.user(2003))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await settle(bot)
        async with sqlite_locked(settings):
            uid = await c.press("consent:yes")
            await c.expect(text=t("fr", "channel.temporary_problem"))
            # Telegram keeps the update and tries again, more than once
            await bot.api.wait_for(lambda: bot.api.delivered[uid] >= 3)
            assert any(u["update_id"] == uid for u in bot.api.queue), "acknowledged too early"
            if mode == "webhook":
                assert 503 in bot.api.webhook_answers
        await c.expect(button="t:OISE", within=15)
        await settle(bot)
        texts = [m.text for m in c.messages]
        assert texts.count(t("fr", "channel.temporary_problem")) == 1
        assert texts.count(t("fr", "territory.prompt")) == 1
        assert await count(bot.service, InboundMessage, InboundMessage.status != "done") == 0


# --- many citizens --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_fifty_citizens_at_once(sqlite_settings: Settings, mode: str) -> None:
    async with running_bot(sqlite_settings, mode=mode) as bot:
        citizens = [Citizen(bot.api, bot.api.user(30000 + i)) for i in range(50)]
        await asyncio.gather(*(contribute_fr(c) for c in citizens))
        await settle(bot)
        refs = await references(bot.service)
        assert len(refs) == 50 == len(set(refs))
        assert bot.channel.processor.stats.failed == 0
        assert await count(bot.service, InboundMessage, InboundMessage.status != "done") == 0


@pytest.mark.postgres
async def test_two_webhook_workers_share_one_postgresql(pg_settings: Settings) -> None:
    """Scale-out is for PostgreSQL (on SQLite, one worker)."""
    db_settings = pg_settings
    async with FakeBotAPI() as api:
        settings = bot_settings(db_settings, api)
        first = await DialogService.open(settings)
        second = await DialogService.open(settings)
        try:
            async with (
                running_bot(settings, mode="webhook", api=api, service=first) as a,
                running_bot(settings, mode="webhook", api=api, service=second) as b,
            ):
                # a load balancer spreads Telegram's deliveries over both workers
                assert api.webhook is not None and api.webhook["url"] == b.url != a.url
                api.webhook_balance = [a.url]
                citizens = [Citizen(api, api.user(40000 + i)) for i in range(20)]
                await asyncio.gather(*(contribute_fr(c) for c in citizens))
                await api.wait_for(lambda: not api.queue)
                await a.channel.processor.idle()
                await b.channel.processor.idle()
                refs = await references(first)
                assert len(refs) == 20 == len(set(refs))
                assert a.channel.processor.stats.processed > 0
                assert b.channel.processor.stats.processed > 0
                assert a.channel.processor.stats.failed == b.channel.processor.stats.failed == 0
                for c in citizens:  # nobody got a reply twice
                    texts = [m.text for m in c.messages]
                    assert len(texts) == len(set(texts)) or texts.count(texts[-1]) == 1
        finally:
            await first.close()
            await second.close()


# --- the real process: SIGKILL and SIGTERM ----------------------------------------------------


@contextlib.asynccontextmanager
async def bot_process(
    env: dict[str, str], *args: str, capture: bool = False, log: Any = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE if capture else log,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def process_env(tmp_path: Path, api: FakeBotAPI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        CNR_TELEGRAM_TOKEN=api.token,
        CNR_TELEGRAM_API_BASE_URL=api.base_url,
        CNR_TELEGRAM_MAX_RATE="0",  # the fake server has no overall limit
        CNR_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        CNR_SECRET_KEY="test-secret-not-for-production",
        CNR_SECRET_FILE=str(tmp_path / "secret.key"),
        CNR_DEFAULT_CAMPAIGN_FILE=str(open_campaign_file(tmp_path)),
        PYTHONPATH=ROOT,
    )
    return env


ROOT = str(Path(__file__).resolve().parents[2])


def log_file(path: Path) -> Any:
    return path.open("w")


def sent_total(api: FakeBotAPI) -> int:
    return sum(len(chat.messages) for chat in api.chats.values())


async def test_sigkill_mid_conversations_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as api:
        env = process_env(tmp_path, api)
        citizens = [Citizen(api, api.user(50000 + i), within=60) for i in range(50)]
        async with bot_process(env, log=log_file(tmp_path / "first.log")) as proc:
            await api.wait_for(lambda: api.calls["getUpdates"] > 0, 30)
            runs = [asyncio.create_task(contribute_fr(c)) for c in citizens]
            # about a third of the way through everyone's conversation
            await api.wait_for(lambda: sent_total(api) >= 50 * 4, 30)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
        killed_at = sent_total(api)
        async with bot_process(env, log=log_file(tmp_path / "second.log")) as proc:
            thanks = await asyncio.wait_for(asyncio.gather(*runs), 60)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert killed_at < sent_total(api)
        assert all("HDF-OISE-" in m.text for m in thanks)
        settings = Settings(
            database_url=env["CNR_DATABASE_URL"],
            secret_key=env["CNR_SECRET_KEY"],
            secret_file=Path(env["CNR_SECRET_FILE"]),
            default_campaign_file=env["CNR_DEFAULT_CAMPAIGN_FILE"],
        )
        service = await DialogService.open(settings)
        try:
            refs = await references(service)
            assert len(refs) == 50 == len(set(refs)), "every contribution stored exactly once"
            assert await count(service, InboundMessage, InboundMessage.status == "failed") == 0
        finally:
            await service.close()
        # each citizen got exactly one thank-you (no reply of an applied update sent twice)
        for c in citizens:
            assert sum("HDF-OISE-" in m.text for m in c.messages) == 1


async def test_sigterm_drains_then_exits_cleanly(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        env = process_env(tmp_path, api)
        citizens = [Citizen(api, api.user(60000 + i), within=60) for i in range(10)]
        async with bot_process(env, capture=True) as proc:
            await api.wait_for(lambda: api.calls["getUpdates"] > 0, 30)
            runs = [asyncio.create_task(contribute_fr(c)) for c in citizens]
            await api.wait_for(lambda: sent_total(api) >= 10 * 3, 30)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
            assert "stopped" in err and "Traceback" not in err
        async with bot_process(env) as proc:
            await asyncio.wait_for(asyncio.gather(*runs), 60)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        for c in citizens:
            assert sum("HDF-OISE-" in m.text for m in c.messages) == 1


async def test_run_without_token_explains_and_suggests_chat(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env["PYTHONPATH"] = ROOT
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    assert proc.returncode != 0
    assert b"CNR_TELEGRAM_TOKEN" in err and b"cnrbot chat" in err


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_postgresql_unreachable_loses_nothing_and_warns_once(
    pg_settings: Settings, mode: str
) -> None:
    """The SQLite outage is the locked-file test above."""
    db_settings = pg_settings
    from sqlalchemy.engine import make_url

    url = make_url(db_settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = db_settings.model_copy(update={"database_url": proxied})
    async with running_bot(settings, mode=mode) as bot:
        c = Citizen(bot.api, bot.api.user(2004))
        await c.say("Bonjour")
        await c.expect(button="consent:yes")
        await settle(bot)
        await proxy.cut()
        uid = await c.press("consent:yes")
        await c.expect(text=t("fr", "channel.temporary_problem"))
        await bot.api.wait_for(lambda: bot.api.delivered[uid] >= 3)
        assert any(u["update_id"] == uid for u in bot.api.queue), "acknowledged too early"
        if mode == "webhook":
            assert set(bot.api.webhook_answers) & {500, 502, 503}
        await proxy.start()  # the database is back (same address)
        await c.expect(button="t:OISE", within=30)
        await settle(bot)
        texts = [m.text for m in c.messages]
        assert texts.count(t("fr", "channel.temporary_problem")) == 1
        assert texts.count(t("fr", "territory.prompt")) == 1
        assert await count(bot.service, InboundMessage, InboundMessage.status != "done") == 0
    await proxy.cut()


async def test_run_webhook_registers_and_serves(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with FakeBotAPI() as api:
        env = process_env(tmp_path, api)
        env["CNR_WEBHOOK_MAX_CONNECTIONS"] = "7"
        args = ("--webhook", "--listen", "127.0.0.1", "--port", str(port))
        public = f"http://127.0.0.1:{port}"
        async with bot_process(env, *args, "--public-url", public, capture=True) as proc:
            await api.wait_for(lambda: api.webhook is not None, 30)
            hook = api.webhook
            assert hook is not None and hook["url"].startswith(public + "/telegram/")
            assert hook["max_connections"] == 7 and len(hook["secret_token"]) >= 32
            assert set(hook["allowed_updates"]) >= {"message", "callback_query"}
            c = Citizen(api, api.user(70001, lang="en"), within=30)
            await c.say("hi")
            await c.expect(button="consent:yes")
            await c.press("consent:yes")
            await c.expect(button="t:OISE")
            assert 200 in api.webhook_answers
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
        assert "webhook listening" in err and hook["secret_token"] not in err


async def test_run_with_a_refused_token_says_so(tmp_path: Path) -> None:
    async with FakeBotAPI(token="999:RIGHT-TOKEN-0123456") as api:
        env = process_env(tmp_path, api)
        env["CNR_TELEGRAM_TOKEN"] = "999:WRONG-TOKEN-0123456"
        env["CNR_TELEGRAM_API_BASE_URL"] = api.base_url
        async with bot_process(env, capture=True) as proc:
            assert await asyncio.wait_for(proc.wait(), 30) == 1
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
        assert "refused the token" in err and "WRONG" not in err and "Traceback" not in err
