"""Load benchmark of the Telegram channel, against the tests' fake Bot API.

N simulated citizens (default 200) each do a whole contribution at the same time, through the
fake Bot API server (this process), talking to the bot under test (another process, so that
the load generator and the bot do not share a CPU core):

* ours: ``cnrbot run`` (polling) and ``cnrbot run --webhook``, on SQLite and on PostgreSQL
  (every step durably stored: inbox, conversation, contribution);
* the floor: a minimal python-telegram-bot ``ConversationHandler`` bot with in-memory state and
  the same flow, texts and keyboards (``--baseline-bot``, run by this script), in the same run.

Printed per configuration: updates/s (all updates of the load phase / its duration), latency
p50/p95/p99 from the update delivered (getUpdates answer or webhook POST) to the first reply
received, and a lone citizen's step p50 (one citizen, warm bot).

    python bench/telegram_load.py                   # 200 citizens, both modes, SQLite (+PG)
    python bench/telegram_load.py --citizens 50 --modes webhook --backends sqlite
    CNR_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/cnr_dev python ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SELF = str(Path(__file__).resolve())
sys.path.insert(0, str(ROOT))

from dialogs.messages import t  # noqa: E402
from tests.fakebotapi import FakeBotAPI, SentMessage  # noqa: E402
from tests.telegram_helpers import (  # noqa: E402
    LEVERS_FR,
    NEED_FR,
    SOLUTION_FR,
    open_campaign_file,
)

SECRET = "bench-secret-not-for-production-0123456789"


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Meter:
    api: FakeBotAPI
    delivered: dict[int, float] = field(default_factory=dict)  # chat -> first delivery time
    latencies: list[float] = field(default_factory=list)
    events: dict[int, asyncio.Event] = field(default_factory=dict)
    counting: bool = False
    updates: int = 0

    def attach(self) -> None:
        self.api.on_deliver = self.on_deliver
        self.api.on_send = self.on_send

    def on_deliver(self, update: dict[str, Any]) -> None:
        if self.api.delivered[update["update_id"]] > 1:
            return  # a re-delivery: the latency runs from the first
        chat = self.api._chat_of(update)
        self.delivered.setdefault(chat, time.perf_counter())
        if self.counting:
            self.updates += 1

    def on_send(self, chat_id: int, message: SentMessage) -> None:
        start = self.delivered.pop(chat_id, None)
        if start is not None and self.counting:
            self.latencies.append(time.perf_counter() - start)
        event = self.events.get(chat_id)
        if event is not None:
            event.set()


class Citizen:
    """Acts, then waits (on its own event) for the bot's message with a given button/text."""

    def __init__(self, api: FakeBotAPI, meter: Meter, user_id: int) -> None:
        self.api = api
        self.user = api.user(user_id)
        self.event = meter.events.setdefault(user_id, asyncio.Event())
        self.seen = 0

    async def expect(self, *, button: str | None = None, text: str | None = None) -> SentMessage:
        chat = self.api.chats[self.user.id]
        async with asyncio.timeout(120):
            while True:
                for i in range(self.seen, len(chat.messages)):
                    m = chat.messages[i]
                    ok_button = button is None or any(
                        b.get("callback_data", "").endswith(button) for b in m.buttons()
                    )
                    if ok_button and (text is None or text in m.text):
                        self.seen = i + 1
                        return m
                self.event.clear()
                await self.event.wait()

    async def press(self, message: SentMessage, choice: str) -> None:
        await self.api.press(self.user, message, choice)

    async def contribute(self) -> None:
        await self.api.send_text(self.user, "Bonjour")
        m = await self.expect(button="consent:yes")
        await self.press(m, "consent:yes")
        m = await self.expect(button="t:OISE")
        await self.press(m, "t:OISE")
        m = await self.expect(button="th:2")
        await self.press(m, "th:2")
        await self.expect(text=t("fr", "need.prompt")[:30])
        await self.api.send_text(self.user, NEED_FR)
        await self.expect(text=t("fr", "solution.prompt")[:30])
        await self.api.send_text(self.user, SOLUTION_FR)
        await self.expect(button="skip")
        await self.api.send_text(self.user, LEVERS_FR)
        m = await self.expect(button="p:usager")
        await self.press(m, "p:usager")
        m = await self.expect(button="send")
        await self.press(m, "send")
        await self.expect(text="HDF-OISE-")


# --- the bots under test --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_log(path: Path) -> Any:
    return path.open("w")


@contextlib.asynccontextmanager
async def bot_process(
    kind: str, mode: str, api: FakeBotAPI, workdir: Path, db_url: str, schema: str | None
) -> AsyncIterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CNR_TELEGRAM_TOKEN=api.token,
        CNR_TELEGRAM_API_BASE_URL=api.base_url,
        CNR_TELEGRAM_MAX_RATE="0",  # the fake server has no limits; nor has the floor
        CNR_DATABASE_URL=db_url,
        CNR_SECRET_KEY=SECRET,
        CNR_SECRET_FILE=str(workdir / "secret.key"),
        CNR_DEFAULT_CAMPAIGN_FILE=str(open_campaign_file(workdir)),
        CNR_WEBHOOK_MAX_CONNECTIONS="100",
    )
    if schema:
        env["CNR_DATABASE_SCHEMA"] = schema
    port = free_port()
    if kind == "ours":
        args = ["-m", "bot.cli", "run"]
        if os.environ.get("BENCH_PROFILE"):  # cProfile of the bot process, for optimising
            args = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *args]
        if mode == "webhook":
            args += ["--webhook", "--port", str(port), "--public-url", f"http://127.0.0.1:{port}"]
    else:
        args = [SELF, "--baseline-bot", mode, "--port", str(port)]
    log = open_log(workdir / f"{kind}-{mode}.log")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdout=log, stderr=log, cwd=workdir
    )
    try:
        if mode == "webhook":
            await api.wait_for(lambda: api.webhook is not None, 60)
        else:
            await api.wait_for(lambda: api.calls["getUpdates"] > 0, 60)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
        if mode == "webhook":
            api.webhook = None


@dataclass
class Result:
    label: str
    citizens: int
    updates: int
    seconds: float
    latencies: list[float]
    lone: list[float]
    cpu: float = float("nan")

    def line(self) -> str:
        q = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 2 else [0] * 99
        lone = statistics.median(self.lone) * 1000 if self.lone else float("nan")
        return (
            f"{self.label:<28} {self.updates / self.seconds:8.0f} upd/s   "
            f"p50 {q[49] * 1000:7.1f} ms  p95 {q[94] * 1000:7.1f} ms  "
            f"p99 {q[98] * 1000:7.1f} ms   lone p50 {lone:6.1f} ms   "
            f"bot CPU {self.cpu * 1000 / max(1, self.updates):5.1f} ms/update"
        )


async def run_one(kind: str, mode: str, backend: str, citizens: int, pg_url: str | None) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-{mode}-{backend}-"))
    schema = None
    if backend == "postgres":
        assert pg_url
        db_url, schema = pg_url, f"bench_{uuid.uuid4().hex[:12]}"
        await _pg(pg_url, f'CREATE SCHEMA "{schema}"')
    else:
        db_url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    try:
        async with FakeBotAPI(webhook_timeout=120) as api:
            meter = Meter(api)
            meter.attach()
            async with bot_process(kind, mode, api, workdir, db_url, schema) as pid:
                # warm-up, then a lone citizen (3 conversations), then the crowd
                await Citizen(api, meter, 1).contribute()
                meter.counting = True
                for i in range(3):
                    await Citizen(api, meter, 10 + i).contribute()
                lone = list(meter.latencies)
                meter.latencies.clear()
                meter.updates = 0
                crowd = [Citizen(api, meter, 100_000 + i) for i in range(citizens)]
                cpu_start = cpu_seconds(pid)
                start = time.perf_counter()
                await asyncio.gather(*(c.contribute() for c in crowd))
                seconds = time.perf_counter() - start
                cpu = cpu_seconds(pid) - cpu_start
                meter.counting = False
            label = f"{'ours' if kind == 'ours' else 'floor (ConversationHandler)'}"
            label = f"{label} {mode}" + (f" {backend}" if kind == "ours" else " memory")
            return Result(label, citizens, meter.updates, seconds, meter.latencies, lone, cpu)
    finally:
        if schema and pg_url:
            await _pg(pg_url, f'DROP SCHEMA "{schema}" CASCADE')


async def _pg(url: str, statement: str) -> None:
    import sqlalchemy as sa

    from storage.db import create_engine
    from storage.settings import Settings

    engine = create_engine(Settings(database_url=url, secret_key=SECRET))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def bench(args: argparse.Namespace) -> int:
    pg_url = args.pg_url or os.environ.get("CNR_TEST_POSTGRES_URL")
    backends = [b for b in args.backends.split(",") if b]
    if "postgres" in backends and not pg_url:
        print("(PostgreSQL skipped: set CNR_TEST_POSTGRES_URL or --pg-url)")
        backends.remove("postgres")
    modes = [m for m in args.modes.split(",") if m]
    print(
        f"{args.citizens} citizens x 1 contribution each (~9 updates); "
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    results: list[Result] = []
    for mode in modes:
        if not args.no_baseline:
            results.append(await run_one("floor", mode, "memory", args.citizens, pg_url))
            print(results[-1].line(), flush=True)
        for backend in backends:
            results.append(await run_one("ours", mode, backend, args.citizens, pg_url))
            print(results[-1].line(), flush=True)
    if not args.no_baseline:
        print("\nratios to the floor of the same mode (throughput >= 0.7, p99 <= 1.3 wanted):")
        for r in results:
            if r.label.startswith("ours"):
                mode = r.label.split()[1]
                floor = next(f for f in results if f.label.startswith("floor") and mode in f.label)
                fq = statistics.quantiles(floor.latencies, n=100)[98]
                rq = statistics.quantiles(r.latencies, n=100)[98]
                ratio = (r.updates / r.seconds) / (floor.updates / floor.seconds)
                print(f"  {r.label:<28} throughput x{ratio:.2f}   p99 x{rq / fq:.2f}")
    return 0


# --- the floor: a minimal ConversationHandler bot, state in memory -----------------------------


def baseline_bot(mode: str, port: int) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import (
        Application,
        CallbackQueryHandler,
        ContextTypes,
        ConversationHandler,
        MessageHandler,
        filters,
    )

    from storage.campaign_file import read_campaign_file
    from storage.settings import Settings

    settings = Settings()
    spec = read_campaign_file(Path(settings.default_campaign_file)).to_view()
    counter = {"n": 0}
    consent, territory, theme, need, solution, levers, profile, review = range(8)

    def kb(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data)] for data, label in pairs]
        )

    async def pressed(update: Update) -> str:
        q = update.callback_query
        assert q is not None and q.message is not None
        await q.answer()
        await q.edit_message_reply_markup(None)
        return str(q.data)

    async def start(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.effective_chat is not None
        text = (
            t("fr", "welcome", campaign=spec.name, region=spec.region)
            + "\n\n"
            + t("fr", "consent.prompt")
        )
        await update.effective_chat.send_message(
            text,
            reply_markup=kb(
                ("consent:yes", t("fr", "consent.accept")),
                ("consent:no", t("fr", "consent.decline")),
            ),
        )
        return consent

    async def on_consent(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        await pressed(update)
        assert update.effective_chat is not None
        await update.effective_chat.send_message(
            t("fr", "territory.prompt"),
            reply_markup=kb(*((f"t:{x.code}", x.name) for x in spec.territories)),
        )
        return territory

    async def on_territory(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        data = await pressed(update)
        assert update.effective_chat is not None and ctx.user_data is not None
        ctx.user_data["territory"] = data[2:]
        await update.effective_chat.send_message(
            t("fr", "theme.prompt"),
            reply_markup=kb(*((f"th:{x.code}", x.short("fr")) for x in spec.themes)),
        )
        return theme

    async def on_theme(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        await pressed(update)
        assert update.effective_chat is not None
        await update.effective_chat.send_message(t("fr", "need.prompt"))
        return need

    async def on_need(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.effective_chat is not None
        await update.effective_chat.send_message(t("fr", "solution.prompt"))
        return solution

    async def on_solution(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.effective_chat is not None
        await update.effective_chat.send_message(
            t("fr", "levers.prompt"), reply_markup=kb(("skip", t("fr", "levers.skip")))
        )
        return levers

    async def on_levers(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        if update.callback_query:
            await pressed(update)
        assert update.effective_chat is not None
        await update.effective_chat.send_message(
            t("fr", "profile.prompt"),
            reply_markup=kb(
                *((f"p:{p.code}", p.label("fr")) for p in spec.profiles),
                ("p:-", t("fr", "profile.skip")),
            ),
        )
        return profile

    async def on_profile(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        await pressed(update)
        assert update.effective_chat is not None
        await update.effective_chat.send_message(
            "Relisez votre contribution.", reply_markup=kb(("send", t("fr", "review.send")))
        )
        return review

    async def on_send(update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> int:
        await pressed(update)
        assert update.effective_chat is not None
        counter["n"] += 1
        await update.effective_chat.send_message(
            t("fr", "submitted", reference=f"HDF-OISE-{counter['n']:06d}")
        )
        return ConversationHandler.END

    text = filters.TEXT & ~filters.COMMAND
    conv = ConversationHandler(
        entry_points=[MessageHandler(filters.TEXT, start)],
        states={
            consent: [CallbackQueryHandler(on_consent)],
            territory: [CallbackQueryHandler(on_territory)],
            theme: [CallbackQueryHandler(on_theme)],
            need: [MessageHandler(text, on_need)],
            solution: [MessageHandler(text, on_solution)],
            levers: [MessageHandler(text, on_levers), CallbackQueryHandler(on_levers)],
            profile: [CallbackQueryHandler(on_profile)],
            review: [CallbackQueryHandler(on_send)],
        },
        fallbacks=[],
        per_message=False,
    )
    assert settings.telegram_token is not None
    app = (
        Application.builder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .build()
    )
    app.add_handler(conv)
    if mode == "webhook":
        app.run_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="benchsecret",
            max_connections=100,
        )
    else:
        app.run_polling(poll_interval=0, timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--modes", default="polling,webhook")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--baseline-bot", choices=["polling", "webhook"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_bot:
        baseline_bot(args.baseline_bot, args.port)
        return 0
    if (
        "webhook" in args.modes
        and not args.no_baseline
        and importlib.util.find_spec("tornado") is None
    ):
        print(
            "The floor bot's webhook mode needs python-telegram-bot's webhook server:\n"
            "    .venv/bin/pip install -e '.[bench]'\n"
            "(or run with --modes polling, or --no-baseline)",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
