"""Three web chat workers, faults survived (issue 13, point 2, the web chat's share): 100
citizens make a whole contribution at once over three real ``cnrbot web`` processes on one
PostgreSQL, each request to the next worker in turn, while

(a) one worker is killed with SIGKILL and started again,
(b) PostgreSQL "restarts" (every connection cut, the server away for two seconds),
(c) every message is sent twice, at once, to two workers (a double click, a retried request).

A citizen's browser does what the chat script does: a message that got no answer (a worker
gone, "temporarily unavailable") is sent again with the same id. Afterwards every conversation
is done, each of the 100 contributions is stored once, every message id was recorded once and
none failed, and every citizen saw their thank-you.

Selected with ``-m faults`` (also a ``postgres`` test); about a minute on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from storage.models import Contribution, ConversationRow, InboundMessage
from storage.service import DialogService
from storage.settings import Settings
from tests.integration.test_scale_faults import free_port, proxied
from tests.telegram_helpers import open_campaign_file
from tests.web_helpers import WebCitizen, contribute

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

WORKERS = 3
CITIZENS = 100
ROOT = str(Path(__file__).resolve().parents[2])
#: Problems a browser retries (same message id): the worker is gone or the database is away.
RETRIED = {500, 502, 503}


class Rotating:
    """What WebCitizen needs of a chat: a base URL, here the next worker's at each request."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._turn = itertools.count()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[next(self._turn) % len(self.ports)]}/"


class Browser(WebCitizen):
    """The chat script's behaviour under faults: each message sent twice at once to two
    workers (a twin), and sent again (same id) until it gets an answer."""

    twins = 0
    retries = 0
    #: Messages answered (each a new id: what the inbox must hold, once each).
    messages = 0

    async def post(self, data: dict[str, str], *, form: Any = None) -> int:
        for attempt in range(60):
            first, twin = await asyncio.gather(
                self._try(data), self._try(data), return_exceptions=True
            )
            Browser.twins += 1
            answered = [r for r in (first, twin) if isinstance(r, tuple) and r[0] == 200]
            if answered:
                status, body, _content_type = answered[0]
                self.status = status
                self.body = body
                self.json = json.loads(body)
                self._apply_json(self.json)
                Browser.messages += 1
                return status
            Browser.retries += 1
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
        raise AssertionError(f"no answer for a message after 60 tries: {first!r} {twin!r}")

    async def _try(self, data: dict[str, str]) -> tuple[int, str, str]:
        headers = {**self.headers, "Accept": "application/json"}
        async with self.session.post(
            self.chat.url + "message", data=data, headers=headers, allow_redirects=False
        ) as r:
            body = await r.text()
            if r.status in RETRIED or r.content_type != "application/json":
                return r.status, "", r.content_type
            return r.status, body, r.content_type

    async def open(self, query: str = "") -> Any:
        for _ in range(60):
            with contextlib.suppress(aiohttp.ClientError):
                page = await super().open(query)
                if self.status == 200:
                    return page
            await asyncio.sleep(0.3)
        raise AssertionError("the chat page never came")


class WebWorkers:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.ports = [free_port() for _ in range(WORKERS)]
        self.procs: list[asyncio.subprocess.Process | None] = [None] * WORKERS
        self.started = 0

    async def start(self, i: int) -> None:
        self.started += 1
        log = (self.logs / f"web{i}-{self.started}.log").open("w")
        self.procs[i] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "web",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.ports[i]),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{self.ports[i]}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"web worker {i} never answered")

    async def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop_all(self) -> list[int]:
        for proc in self.procs:
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        return [await asyncio.wait_for(p.wait(), 60) for p in self.procs if p is not None]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.returncode is None:
                proc.kill()


def web_env(settings: Settings, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        CNR_DATABASE_URL=database_url,
        CNR_DATABASE_SCHEMA=settings.database_schema or "",
        CNR_SECRET_KEY="test-secret-not-for-production",
        CNR_SECRET_FILE=str(settings.secret_file),
        CNR_DEFAULT_CAMPAIGN_FILE=str(open_campaign_file(settings.secret_file.parent)),
        # one address for every citizen here: the per-address limits would hold them back
        CNR_WEB_RATE_PER_ADDRESS="1000000",
        CNR_WEB_RATE_PER_PARTICIPANT="1000000",
        CNR_WEB_RATE_UNVERIFIED_PER_ADDRESS="1000000",
        CNR_WEB_RATE_UNVERIFIED_TOTAL="1000000",
        CNR_MAINTENANCE_INTERVAL="PT1S",
        PYTHONPATH=ROOT,
    )
    return env


async def answered(n: int) -> None:
    """Until ``n`` messages of all the citizens were answered."""
    for _ in range(3000):
        if Browser.messages >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {Browser.messages} messages answered, waiting for {n}")


@contextlib.asynccontextmanager
async def sessions(n: int) -> AsyncIterator[list[aiohttp.ClientSession]]:
    opened = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(n)]
    try:
        yield opened
    finally:
        for s in opened:
            await s.close()


async def test_three_web_workers_survive_kill_restart_twins_and_a_database_cut(
    pg_settings: Settings, tmp_path: Path
) -> None:
    Browser.twins = Browser.retries = Browser.messages = 0
    settings = pg_settings.model_copy(
        update={"default_campaign_file": str(open_campaign_file(tmp_path))}
    )
    service = await DialogService.open(settings)  # migrated, campaign loaded, once
    await service.close()
    async with proxied(settings) as (proxy, through):
        workers = WebWorkers(web_env(settings, through), tmp_path)
        try:
            for i in range(WORKERS):
                await workers.start(i)
            chat = Rotating(workers.ports)
            async with sessions(CITIZENS) as http:
                citizens = [
                    Browser(chat, script=True, session=s)  # type: ignore[arg-type]
                    for s in http
                ]
                runs = [asyncio.create_task(contribute(c)) for c in citizens]
                # the faults strike mid-way (800 messages in all), whatever the machine's pace
                await answered(150)
                await workers.kill(1)  # (a)
                await asyncio.sleep(1.0)
                await workers.start(1)
                await answered(400)
                await proxy.cut()  # (b)
                await asyncio.sleep(2.0)
                await proxy.start()
                await asyncio.wait_for(asyncio.gather(*runs), 300)
                assert all(any("HDF-OISE-" in r for r in c.replies) for c in citizens)
            codes = await workers.stop_all()
        finally:
            workers.kill_all()
    assert codes == [0] * WORKERS
    assert Browser.retries > 0  # the faults did strike: messages were sent again

    service = await DialogService.open(settings)
    try:
        async with service.sessions() as session:
            refs = list(await session.scalars(select(Contribution.reference)))
            states = list(await session.scalars(select(ConversationRow.state)))
            per_status = dict(
                (
                    await session.execute(
                        select(InboundMessage.status, func.count())
                        .where(InboundMessage.channel == "web")
                        .group_by(InboundMessage.status)
                    )
                ).all()
            )
    finally:
        await service.close()
    assert len(refs) == CITIZENS == len(set(refs))
    assert states == ["done"] * CITIZENS
    assert per_status.get("failed", 0) == 0
    # every message recorded once (twins and retries of one id share one row)
    assert sum(per_status.values()) == Browser.messages, (per_status, Browser.messages)
