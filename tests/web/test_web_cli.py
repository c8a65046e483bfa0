"""``cnrbot web`` as an operator runs it: a real process on its own port, a campaign tried on a
chosen day (``--date``), a SIGKILL in the middle of conversations losing and duplicating
nothing, SIGTERM stopping cleanly, a taken port or a bad date explained."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select as io_select
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import func, select

from dialogs.messages import t
from storage.db import create_engine
from storage.models import Contribution
from storage.settings import Settings
from tests.telegram_helpers import open_campaign_file
from tests.web_helpers import WebChat, WebCitizen, contribute

ROOT = str(Path(__file__).resolve().parents[2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def web_env(tmp_path: Path, *, open_campaign: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        CNR_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/web.db",
        CNR_SECRET_KEY="test-secret-not-for-production",
        CNR_SECRET_FILE=str(tmp_path / "secret.key"),
        PYTHONPATH=ROOT,
    )
    if open_campaign:
        env["CNR_DEFAULT_CAMPAIGN_FILE"] = str(open_campaign_file(tmp_path))
    return env


@contextlib.asynccontextmanager
async def web_process(env: dict[str, str], *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "web",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def started(proc: asyncio.subprocess.Process) -> str:
    """The line saying where the web chat listens."""
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while True:
            line = (await proc.stderr.readline()).decode()
            assert line, "cnrbot web ended before listening"
            if "web chat on" in line:
                return line.split("web chat on ", 1)[1].strip()


class _Remote(WebChat):
    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url


async def contributions(tmp_path: Path) -> int:
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/web.db"))
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(Contribution)) or 0)
    finally:
        await engine.dispose()


async def test_sigkill_mid_conversations_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    env = web_env(tmp_path)
    port = str(free_port())
    citizens = [WebCitizen(_Remote(""), address=f"192.0.2.{i}") for i in range(20)]
    async with web_process(env, "--port", port) as proc:
        url = await started(proc)
        for c in citizens:
            c.chat = _Remote(url)
            await c.open()
            await c.press("consent:yes")
            await c.press("t:OISE")
            await c.press("th:1")
        # half of them are sending their contribution when the worker is killed
        sending = [asyncio.create_task(contribute_rest(c)) for c in citizens[:10]]
        await asyncio.sleep(0)
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        outcomes = await asyncio.gather(*sending, return_exceptions=True)
    async with web_process(env, "--port", port) as proc:
        url = await started(proc)
        for c, outcome in zip(citizens, [*outcomes, *[None] * 10], strict=True):
            c.chat = _Remote(url)
            await c.open()  # the browser comes back: where was I?
            if c.state != "done":
                await contribute_rest(c)
            assert c.state == "done", (outcome, c.state)
            await c.command("mine")
            assert c.said("HDF-OISE-") and c.replies[0].count("HDF-OISE-") == 1
            await c.close()
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
    assert await contributions(tmp_path) == 20


async def contribute_rest(c: WebCitizen) -> None:
    """From wherever the citizen stands in the draft to the thank-you."""
    from tests.telegram_helpers import LEVERS_FR, NEED_FR, SOLUTION_FR

    steps = {
        "need": lambda: c.write(NEED_FR),
        "solution": lambda: c.write(SOLUTION_FR),
        "levers": lambda: c.write(LEVERS_FR),
        "profile": lambda: c.press("p:-"),
        "review": lambda: c.press("send"),
    }
    for _ in range(10):
        if c.state not in steps:
            return
        await steps[c.state]()


async def test_a_closed_campaign_is_tried_with_date_and_sigterm_stops(tmp_path: Path) -> None:
    env = web_env(tmp_path, open_campaign=False)  # the shipped campaign: closed in 2022
    async with web_process(env, "--port", str(free_port())) as proc:
        url = await started(proc)
        async with WebCitizen(_Remote(url)) as c:
            await c.open()
            closed = t("fr", "closed.ended", campaign="{c}", closed="{d}")
            assert c.said(closed.split("{c}")[0]) and c.said("est close depuis le 31 décembre 2022")
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
    async with web_process(env, "--port", str(free_port()), "--date", "2022-11-20") as proc:
        url = await started(proc)
        async with WebCitizen(_Remote(url)) as c:
            await contribute(c)
            assert c.said("HDF-OISE-000001")
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0


def _connect_all(port: int, n: int, wait: float) -> tuple[list[socket.socket], int]:
    """``n`` connections opened at once; how many the kernel completed within ``wait``
    seconds (a connection beyond the listen backlog has its SYN dropped: it stays pending)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    done: set[int] = set()
    deadline = time.monotonic() + wait
    while len(done) < n and time.monotonic() < deadline:
        _r, writable, _x = io_select.select(
            [], [s for s in socks if s.fileno() not in done], [], 0.05
        )
        done.update(
            s.fileno() for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        )
    return socks, len(done)


async def test_a_crowd_arriving_while_the_worker_is_busy_waits_in_the_backlog(
    tmp_path: Path,
) -> None:
    """500 visitors connect while the worker does not accept (stopped: as busy as can be):
    the kernel queues them all (a listen backlog of 1,024, not aiohttp's 128, whose overflow
    drops the connections and leaves visitors waiting for TCP's retries), and once the worker
    runs again every one of them gets its page."""
    port = free_port()
    async with web_process(web_env(tmp_path), "--port", str(port)) as proc:
        await started(proc)
        proc.send_signal(signal.SIGSTOP)
        try:
            socks, connected = await asyncio.to_thread(_connect_all, port, 500, 1.0)
        finally:
            proc.send_signal(signal.SIGCONT)
        try:
            assert connected == 500
            request = (
                f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            )

            def answer(s: socket.socket) -> bytes:
                s.setblocking(True)
                s.settimeout(30)
                s.sendall(request.encode())
                return s.recv(64)

            answers = await asyncio.to_thread(lambda: [answer(s) for s in socks])
            assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        finally:
            for s in socks:
                s.close()


async def test_a_taken_port_or_a_bad_date_is_explained(tmp_path: Path) -> None:
    env = web_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        async with web_process(env, "--port", port) as proc:
            assert await proc.wait() == 1
            assert proc.stderr is not None
            assert f"cannot listen on 127.0.0.1:{port}" in (await proc.stderr.read()).decode()
    async with web_process(env, "--date", "20-11-2022") as proc:
        assert await proc.wait() == 2
        assert proc.stderr is not None
        assert "--date" in (await proc.stderr.read()).decode()
