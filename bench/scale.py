"""Scaling: the Telegram load (webhook) and the web chat load against 1, 2 and 3 worker
processes on one PostgreSQL, beside one SQLite worker, in the same run.

Per configuration: throughput and latency p99 (Telegram: updates/s, from the webhook POST to
the first reply; web: requests/s of the chat script's ``json`` mode), the workers' CPU per
update/request, and the Bot API calls made per contribution, counted at the fake Bot API by
method (answerCallbackQuery, sendMessage, editMessageText/ReplyMarkup...): they bound what a bot
can do under Telegram's sending limit (~30 messages/s overall). The load generators and the
fake are bench/telegram_load.py's and bench/web_load.py's; Telegram's deliveries are spread
over the workers by update id (a load balancer), web citizens over the workers in turn.

    CNR_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/cnr_dev \\
        python bench/scale.py --citizens 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import telegram_load as tg  # noqa: E402
from bench import web_load as web  # noqa: E402
from tests.fakebotapi import FakeBotAPI  # noqa: E402
from tests.telegram_helpers import open_campaign_file  # noqa: E402

SENDING = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] * 1000 if len(values) > 2 else float("nan")


@contextlib.asynccontextmanager
async def workers(
    command: list[str], n: int, env: dict[str, str], workdir: Path
) -> AsyncIterator[list[tuple[int, int]]]:
    """``n`` processes of ``cnrbot <command>``, each on its own port, healthy; (pid, port)."""
    import aiohttp

    procs: list[tuple[asyncio.subprocess.Process, int]] = []
    try:
        for i in range(n):
            port = tg.free_port()
            args = [*command, "--port", str(port)]
            if command[0] == "run":
                args += ["--webhook", "--public-url", f"http://127.0.0.1:{port}"]
                if i:
                    args.append("--no-register")
            log = (workdir / f"{command[0]}-{i}.log").open("w")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", *args, env=env, stdout=log, stderr=log
            )
            log.close()
            procs.append((proc, port))
            async with aiohttp.ClientSession() as http:
                for _ in range(600):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    await asyncio.sleep(0.1)
        yield [(p.pid, port) for p, port in procs]
    finally:
        for proc, _ in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()


def environment(workdir: Path, db_url: str, schema: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CNR_DATABASE_URL=db_url,
        CNR_SECRET_KEY=tg.SECRET,
        CNR_SECRET_FILE=str(workdir / "secret.key"),
        CNR_DEFAULT_CAMPAIGN_FILE=str(open_campaign_file(workdir)),
        CNR_WEBHOOK_MAX_CONNECTIONS="100",
        **web.RAISED_LIMITS,
    )
    if schema:
        env["CNR_DATABASE_SCHEMA"] = schema
    return env


async def telegram(n: int, env: dict[str, str], workdir: Path, citizens: int) -> str:
    async with FakeBotAPI(webhook_timeout=120) as api:
        env = {
            **env,
            "CNR_TELEGRAM_TOKEN": api.token,
            "CNR_TELEGRAM_API_BASE_URL": api.base_url,
            "CNR_TELEGRAM_MAX_RATE": "0",
        }
        async with workers(["run", "--listen", "127.0.0.1"], n, env, workdir) as procs:
            await api.wait_for(lambda: api.webhook is not None, 60)
            assert api.webhook is not None
            hook = api.webhook["url"]
            first = procs[0][1]
            api.webhook_balance = [hook.replace(f":{first}/", f":{p}/") for _, p in procs[1:]]
            meter = tg.Meter(api)
            meter.attach()
            await tg.Citizen(api, meter, 1).contribute()  # warm-up
            meter.counting = True
            calls = Counter(api.calls)
            cpu = sum(tg.cpu_seconds(pid) for pid, _ in procs)
            start = time.perf_counter()
            crowd = [tg.Citizen(api, meter, 100_000 + i) for i in range(citizens)]
            await asyncio.gather(*(c.contribute() for c in crowd))
            seconds = time.perf_counter() - start
            cpu = sum(tg.cpu_seconds(pid) for pid, _ in procs) - cpu
            made = Counter(api.calls)
            made.subtract(calls)
            per = {m: made[m] / citizens for m in SENDING if made[m]}
            sent = sum(made[m] for m in SENDING) / citizens
        api.webhook = None
    return (
        f"telegram {meter.updates / seconds:6.0f} upd/s  p99 {p99(meter.latencies):7.1f} ms  "
        f"CPU {cpu * 1000 / max(1, meter.updates):5.1f} ms/update   Bot API calls per "
        f"contribution {sent:.1f} (" + ", ".join(f"{m} {v:.1f}" for m, v in per.items()) + ")"
    )


async def webchat(n: int, env: dict[str, str], workdir: Path, citizens: int) -> str:
    import aiohttp

    async with (
        workers(["web", "--listen", "127.0.0.1"], n, env, workdir) as procs,
        aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            connector=aiohttp.TCPConnector(limit=0),
        ) as http,
    ):
        bases = [f"http://127.0.0.1:{port}" for _, port in procs]
        meter = web.Meter()
        await web.Citizen(http, bases[0], "json", web._address(0), meter).run()  # warm-up
        meter.counting = True
        cpu = sum(tg.cpu_seconds(pid) for pid, _ in procs)
        start = time.perf_counter()
        crowd = [
            web.Citizen(http, bases[i % n], "json", web._address(i + 1), meter)
            for i in range(citizens)
        ]
        await asyncio.gather(*(c.run() for c in crowd))
        seconds = time.perf_counter() - start
        cpu = sum(tg.cpu_seconds(pid) for pid, _ in procs) - cpu
    failed = f"  FAILED {len(meter.failures)}: {meter.failures[:2]}" if meter.failures else ""
    return (
        f"web      {meter.requests / seconds:6.0f} req/s  p99 {p99(meter.latencies):7.1f} ms  "
        f"CPU {cpu * 1000 / max(1, meter.requests):5.1f} ms/request{failed}"
    )


async def configuration(backend: str, n: int, citizens: int, pg_url: str | None) -> None:
    for channel in (telegram, webchat):
        workdir = Path(tempfile.mkdtemp(prefix=f"scale-{backend}-{n}-"))
        schema = None
        if backend == "postgres":
            assert pg_url
            db_url, schema = pg_url, f"scale_{uuid.uuid4().hex[:12]}"
            await tg._pg(pg_url, f'CREATE SCHEMA "{schema}"')
        else:
            db_url = f"sqlite+aiosqlite:///{workdir}/scale.db"
        try:
            line = await channel(n, environment(workdir, db_url, schema), workdir, citizens)
            label = f"{backend} x{n}"
            print(f"{label:<12} {line}   (load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            if schema and pg_url:
                await tg._pg(pg_url, f'DROP SCHEMA "{schema}" CASCADE')


async def bench(args: argparse.Namespace) -> int:
    pg_url = args.pg_url or os.environ.get("CNR_TEST_POSTGRES_URL")
    print(
        f"{args.citizens} citizens x 1 contribution each; machine: {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    await configuration("sqlite", 1, args.citizens, pg_url)
    if not pg_url:
        print("(PostgreSQL skipped: set CNR_TEST_POSTGRES_URL or --pg-url)")
        return 0
    for n in args.workers:
        await configuration("postgres", n, args.citizens, pg_url)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pg-url")
    args = parser.parse_args()
    try:
        import uvloop

        return int(uvloop.run(bench(args)))
    except ImportError:
        return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
