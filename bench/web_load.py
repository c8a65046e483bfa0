"""Load benchmark of the citizen web chat (``cnrbot web``), beside a floor measured in the same run.

N simulated citizens (default 200) each do a whole contribution at the same time, in a closed
loop (a citizen sends its next request when the previous one answered), over real HTTP, from
this process, to a server in another process (so that the load generator and the server do not
share a CPU core):

* ours: ``cnrbot web`` (one worker), on SQLite and on PostgreSQL: every message durably stored
  (the conversation, its effects, the inbox row with the encrypted replies, in one transaction);
* the floor: a bare aiohttp app (``--floor-server``, run by this script) whose handler reads the
  request, does one single-row ``INSERT`` + ``COMMIT`` on the same database (the engine of
  ``storage.db``: SQLite in WAL with its pragmas, writes taken in turn as ``storage`` does;
  PostgreSQL through asyncpg and SQLAlchemy, same pool size) and answers a small HTML page
  (a 303 to it for a form posted without JavaScript), for every request, GET or POST.

A conversation: ``GET /``, then one ``POST /message`` per step (consent, territory, theme,
need, solution, levers, profile, send), either as the chat script does (``json``: ``Accept:
application/json``, 9 requests) or as a browser without JavaScript (``form``: each POST
answered 303, then the ``GET /?r=...`` it points to, 17 requests). The floor's citizens make
the same requests. Each citizen comes from its own address (``X-Forwarded-For``, believed from
a loopback peer), as citizens on their own phones do. The crowd's connections are opened just
before the load phase (see ``_connect``), with a request that is not counted.

Printed per configuration: requests/s (all requests of the load phase / its duration), latency
p50/p95/p99 of one HTTP request, a lone citizen's request p50 (one citizen, warm server), the
server's CPU per request (``/proc``), and the ratios to the floor of the same database and
mode; with ``--repeat``, each run and the spread. Checked afterwards: every conversation ended
with its reference, each contribution is stored exactly once (counted in the database), and
every message is in the inbox once.

The rate limits are raised for the bench (``CNR_WEB_RATE_*``), so that it measures the chat, not
the 429 answers; no proof-of-work is solved (a first contribution without one is held to the
hourly "unverified" limits, raised too).

    python bench/web_load.py                        # 200 citizens, json and form, SQLite (+PG)
    python bench/web_load.py --backends sqlite --modes json --repeat 3
    CNR_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/cnr_dev python ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
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

from tests.telegram_helpers import (  # noqa: E402
    LEVERS_FR,
    NEED_FR,
    SOLUTION_FR,
    open_campaign_file,
)

SECRET = "bench-secret-not-for-production-0123456789"
#: Raised so that the bench measures the chat, not its 429 answers (printed with the figures).
RAISED_LIMITS = {
    "CNR_WEB_RATE_PER_ADDRESS": "1000000",
    "CNR_WEB_RATE_PER_PARTICIPANT": "1000000",
    "CNR_WEB_RATE_UNVERIFIED_PER_ADDRESS": "1000000",
    "CNR_WEB_RATE_UNVERIFIED_TOTAL": "1000000",
}
COOKIE = "cnr_id"
#: The steps of a contribution after the welcome page: (form field, value).
STEPS: tuple[tuple[str, str], ...] = (
    ("choice", "consent:yes"),
    ("choice", "t:OISE"),
    ("choice", "th:1"),
    ("text", NEED_FR),
    ("text", SOLUTION_FR),
    ("text", LEVERS_FR),
    ("choice", "p:-"),
    ("choice", "send"),
)
REFERENCE = re.compile(r"HDF-OISE-\d+")
_HIDDEN = re.compile(r'<input type="hidden" name="(mid|v|state)" value="([^"]*)">')


# --- the load ---------------------------------------------------------------------------------


class Failed(Exception):
    """A conversation did not go as a citizen expects (the run is reported as failed)."""


@dataclass
class Meter:
    counting: bool = False
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    references: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Citizen:
    """One citizen in a browser, as the chat script (``json``) or without JavaScript (``form``).
    Lean on purpose (regular expressions, no HTML parser): the load generator must not be the
    bottleneck."""

    def __init__(self, http: Any, base: str, mode: str, address: str, meter: Meter) -> None:
        self.http = http
        self.base = base
        self.mode = mode
        self.meter = meter
        self.headers = {
            "Accept-Language": "fr-FR,fr;q=0.9",
            "X-Forwarded-For": address,
            "Origin": base,
        }

    async def _do(self, method: str, path: str, data: dict[str, str] | None = None) -> Any:
        headers = dict(self.headers)
        if data is not None and self.mode == "json":
            headers["Accept"] = "application/json"
        start = time.perf_counter()
        async with self.http.request(
            method, self.base + path, data=data, headers=headers, allow_redirects=False
        ) as r:
            body = await r.read()
        if self.meter.counting:
            self.meter.latencies.append(time.perf_counter() - start)
            self.meter.requests += 1
        return r, body

    async def contribute(self) -> str:
        self.headers.pop("Cookie", None)
        r, body = await self._do("GET", "/")
        if r.status != 200 or COOKIE not in r.cookies:
            raise Failed(f"GET / answered {r.status} without a cookie")
        self.headers["Cookie"] = f"{COOKIE}={r.cookies[COOKIE].value}"
        fields = _fields(body.decode())
        reference = ""
        for name, value in STEPS:
            data = {**fields, name: value}
            if name == "text":
                data["send"] = "1"
            r, body = await self._do("POST", "/message", data)
            if self.mode == "json":
                answer = json.loads(body) if r.status == 200 else {}
                if answer.get("status") != "ok":
                    raise Failed(f"POST {value[:12]!r} answered {r.status} {body[:80]!r}")
                fields = {
                    "mid": str(answer["message_id"]),
                    "v": str(answer["version"]),
                    "state": str(answer["state"]),
                }
                text = str(answer["messages"])
            else:
                if r.status != 303:
                    raise Failed(f"POST {value[:12]!r} answered {r.status}, not 303")
                r, body = await self._do("GET", r.headers["Location"])
                if r.status != 200:
                    raise Failed(f"GET after POST {value[:12]!r} answered {r.status}")
                text = body.decode()
                fields = _fields(text)
            found = REFERENCE.search(text) if value == "send" else None
            reference = found.group(0) if found else reference
        if not reference:
            raise Failed(f"no reference at the end (state {fields.get('state')!r})")
        return reference

    async def run(self) -> None:
        try:
            reference = await self.contribute()
        except Failed as exc:
            self.meter.failures.append(str(exc))
            return
        if self.meter.counting:
            self.meter.references.append(reference)


def _fields(page: str) -> dict[str, str]:
    """The hidden fields of the answer form (it comes before the menu's, which repeats them)."""
    fields: dict[str, str] = {}
    for name, value in _HIDDEN.findall(page):
        fields.setdefault(name, value)
    return fields


def _address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


# --- the servers -------------------------------------------------------------------------------


def cpu_seconds(pid: int | str) -> float:
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


@contextlib.asynccontextmanager
async def server_process(
    kind: str, workdir: Path, db_url: str, schema: str | None, http: Any
) -> AsyncIterator[tuple[int, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNR_")}
    env.update(
        PYTHONPATH=str(ROOT),
        CNR_DATABASE_URL=db_url,
        CNR_SECRET_KEY=SECRET,
        CNR_SECRET_FILE=str(workdir / "secret.key"),
        CNR_DEFAULT_CAMPAIGN_FILE=str(open_campaign_file(workdir)),
        **RAISED_LIMITS,
    )
    if schema:
        env["CNR_DATABASE_SCHEMA"] = schema
    port = free_port()
    if kind == "ours":
        args = ["-m", "bot.cli", "web", "--listen", "127.0.0.1", "--port", str(port)]
        if os.environ.get("BENCH_PROFILE"):  # cProfile of the server, for optimising
            args = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *args]
    else:
        args = [SELF, "--floor-server", "--port", str(port)]
    log = (workdir / f"{kind}.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdout=log, stderr=log, cwd=workdir
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{kind} server exited: see {workdir / (kind + '.log')}")
            with contextlib.suppress(OSError):
                async with http.get(base + "/healthz") as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start: see {workdir}")
            await asyncio.sleep(0.1)
        yield proc.pid, base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


@dataclass
class Result:
    label: str
    kind: str
    backend: str
    mode: str
    requests: int
    seconds: float
    latencies: list[float]
    lone: list[float]
    cpu: float
    load_cpu: float
    checks: list[str]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def q(self, n: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[n - 1] if len(self.latencies) > 2 else 0

    def line(self) -> str:
        lone = statistics.median(self.lone) * 1000 if self.lone else float("nan")
        return (
            f"{self.label:<22} {self.rate:7.0f} req/s  p50 {self.q(50) * 1000:6.1f} ms  "
            f"p95 {self.q(95) * 1000:6.1f} ms  p99 {self.q(99) * 1000:6.1f} ms  "
            f"lone p50 {lone:5.1f} ms  server CPU {self.cpu * 1000 / max(1, self.requests):4.2f}"
            f" ms/req  (load generator {self.load_cpu * 1000 / max(1, self.requests):4.2f})"
            + ("" if not self.checks else "\n    " + "\n    ".join(self.checks))
        )


async def run_one(kind: str, backend: str, mode: str, citizens: int, pg_url: str | None) -> Result:
    import aiohttp

    workdir = Path(tempfile.mkdtemp(prefix=f"bench-web-{kind}-{backend}-{mode}-"))
    schema = None
    if backend == "postgres":
        assert pg_url
        db_url, schema = pg_url, f"bench_{uuid.uuid4().hex[:12]}"
        await _pg(pg_url, [f'CREATE SCHEMA "{schema}"'])
    else:
        db_url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    meter = Meter()
    keep = False
    try:
        async with (
            aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http,
            server_process(kind, workdir, db_url, schema, http) as (pid, base),
        ):
            # warm-up (2 conversations), then a lone citizen (3), then the crowd
            for i in range(2):
                await Citizen(http, base, mode, _address(1 + i), meter).run()
            meter.counting = True
            for i in range(3):
                await Citizen(http, base, mode, _address(10 + i), meter).run()
            lone = list(meter.latencies)
            meter.latencies.clear()
            meter.requests = 0
            crowd = [Citizen(http, base, mode, _address(100 + i), meter) for i in range(citizens)]
            await _connect(http, base, citizens)
            spy = await _py_spy(pid, f"{kind}-{backend}-{mode}")
            cpu_start, load_start = cpu_seconds(pid), time.process_time()
            start = time.perf_counter()
            await asyncio.gather(*(c.run() for c in crowd))
            seconds = time.perf_counter() - start
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
            cpu, load_cpu = cpu_seconds(pid) - cpu_start, time.process_time() - load_start
            meter.counting = False
        conversations = 2 + 3 + citizens
        per = len(STEPS) * (2 if mode == "form" else 1) + 1
        checks = list(dict.fromkeys(meter.failures))[:5]
        if meter.failures:
            checks.insert(0, f"FAILED: {len(meter.failures)} conversations")
        checks += await _check(kind, db_url, schema, conversations, per, meter)
        if checks:
            keep = True
            checks.append(f"(the server's log is kept: {workdir / (kind + '.log')})")
        label = f"{'ours' if kind == 'ours' else 'floor'} {backend} {mode}"
        return Result(
            label, kind, backend, mode, meter.requests, seconds, meter.latencies, lone, cpu,
            load_cpu, checks,
        )  # fmt: skip
    finally:
        if schema and pg_url:
            await _pg(pg_url, [f'DROP SCHEMA "{schema}" CASCADE'])
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


async def _connect(http: Any, base: str, n: int) -> None:
    """Open the crowd's ``n`` connections before the load phase (kept alive, then used by the
    citizens' requests): opened all at once by the crowd, they overflow the server's listen
    backlog (aiohttp's 128), and the SYN retransmissions that follow (1 s, then 3 s) made the
    p99 of either server, at random, rather than its handling of the requests."""

    async def one() -> None:
        async with http.get(base + "/healthz") as r:
            await r.read()

    await asyncio.gather(*(one() for _ in range(n)))


async def _py_spy(pid: int, name: str) -> Any:
    """``BENCH_PY_SPY=<dir>``: py-spy samples the server's thread holding the GIL during the
    crowd phase (collapsed stacks in ``<dir>/<configuration>.txt``, for a flame graph); py-spy
    from PyPI, on PATH or named by ``BENCH_PY_SPY_BIN``."""
    where = os.environ.get("BENCH_PY_SPY")
    if not where:
        return None
    out = Path(where) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = await asyncio.create_subprocess_exec(
        os.environ.get("BENCH_PY_SPY_BIN", "py-spy"),
        *("record", "--pid", str(pid), "--format", "raw", "--rate", "250", "--gil"),
        *("-o", str(out)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # attached
    return spy


async def _check(
    kind: str, db_url: str, schema: str | None, conversations: int, per: int, meter: Meter
) -> list[str]:
    """What the database holds afterwards (an empty list: as expected)."""
    import sqlalchemy as sa

    from storage.db import create_engine
    from storage.settings import Settings

    engine = create_engine(Settings(database_url=db_url, database_schema=schema, secret_key=SECRET))
    problems = []
    try:
        async with engine.connect() as db:
            if kind == "floor":
                rows = await db.scalar(sa.text("SELECT count(*) FROM floor_requests"))
                if rows != conversations * per:
                    problems.append(f"floor: {rows} rows for {conversations * per} requests")
                return problems
            stored, distinct = (
                await db.execute(
                    sa.text("SELECT count(*), count(DISTINCT reference) FROM contributions")
                )
            ).one()
            crowd = set(meter.references)
            if stored != conversations or distinct != stored:
                problems.append(
                    f"contributions: {stored} stored ({distinct} distinct references) "
                    f"for {conversations} conversations"
                )
            if len(crowd) != len(meter.references):
                problems.append("the same reference was given to two citizens")
            messages = await db.scalar(
                sa.text("SELECT count(*) FROM inbound_messages WHERE channel = 'web'")
            )
            if messages != conversations * len(STEPS):
                problems.append(
                    f"inbox: {messages} web messages for {conversations * len(STEPS)} sent"
                )
    finally:
        await engine.dispose()
    return problems


async def _pg(url: str, statements: list[str]) -> None:
    import sqlalchemy as sa

    from storage.db import create_engine
    from storage.settings import Settings

    engine = create_engine(Settings(database_url=url, secret_key=SECRET))
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def _spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return format(values[0], fmt)
    return (
        f"{format(statistics.median(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


async def bench(args: argparse.Namespace) -> int:
    pg_url = args.pg_url or os.environ.get("CNR_TEST_POSTGRES_URL")
    backends = [b for b in args.backends.split(",") if b]
    if "postgres" in backends and not pg_url:
        print("(PostgreSQL skipped: set CNR_TEST_POSTGRES_URL or --pg-url)")
        backends.remove("postgres")
    modes = [m for m in args.modes.split(",") if m]
    kinds = ["ours"] if args.no_baseline else ["floor", "ours"]
    print(
        f"{args.citizens} citizens at once x 1 contribution each (json: 9 requests, form: 17); "
        f"one worker; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n"
        f"rate limits raised for the bench: "
        + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
        + "; no proof-of-work solved",
        flush=True,
    )
    results: list[Result] = []
    failed = False
    for backend in backends:
        for mode in modes:
            for _ in range(args.repeat):
                for kind in kinds:  # interleaved: a change of the machine's load hits both
                    result = await run_one(kind, backend, mode, args.citizens, pg_url)
                    results.append(result)
                    failed |= bool(result.checks)
                    print(result.line(), f"[load {os.getloadavg()[0]:.1f}]", flush=True)
    if not args.no_baseline:
        print(
            "\nratios to the floor of the same database and mode, run by run "
            "(wanted: throughput >= 0.6, p99 <= 2.0):"
        )
        for backend in backends:
            for mode in modes:
                ours = [
                    r for r in results if (r.kind, r.backend, r.mode) == ("ours", backend, mode)
                ]
                floor = [
                    r for r in results if (r.kind, r.backend, r.mode) == ("floor", backend, mode)
                ]
                rate = [o.rate / f.rate for o, f in zip(ours, floor, strict=True)]
                p99 = [o.q(99) / f.q(99) for o, f in zip(ours, floor, strict=True)]
                print(
                    f"  {backend:<9} {mode:<5} throughput x{_spread(rate, '.2f')}   "
                    f"p99 x{_spread(p99, '.2f')}   "
                    f"(ours {_spread([o.rate for o in ours], '.0f')} req/s, "
                    f"floor {_spread([f.rate for f in floor], '.0f')} req/s; "
                    f"p99 ours {_spread([o.q(99) * 1000 for o in ours], '.0f')} ms, "
                    f"floor {_spread([f.q(99) * 1000 for f in floor], '.0f')} ms)"
                )
    print(f"machine load at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 1 if failed else 0


# --- the floor: a bare aiohttp app, one durable single-row commit per request -------------------


def floor_server(port: int) -> int:
    from bot.commands.run import run_loop

    return run_loop(_floor_serve(port))


async def _floor_serve(port: int) -> int:
    import sqlalchemy as sa
    from aiohttp import web

    from storage.db import create_engine
    from storage.settings import Settings

    settings = Settings()
    engine = create_engine(settings)  # storage's engine: same pragmas, driver and pool size
    metadata = sa.MetaData()
    table = sa.Table(
        "floor_requests",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("citizen", sa.String(64), nullable=False),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    insert = table.insert()
    # SQLite has one writer: taken in turn (as storage does) rather than "database is locked"
    # retries; PostgreSQL needs no such slot.
    slot = asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    page = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Floor</title></head>'
        '<body><form method="post" action="/message">'
        '<input type="hidden" name="mid" value="{mid}">'
        '<input type="hidden" name="v" value="1"><input type="hidden" name="state" value="x">'
        "<p>Merci. Référence HDF-OISE-{n:06d}</p>"
        '<button name="choice" value="ok">OK</button></form></body></html>'
    )
    counter = {"n": 0}

    async def handle(request: web.Request) -> web.StreamResponse:
        citizen = request.cookies.get(COOKIE) or secrets.token_urlsafe(32)
        form = await request.post() if request.method == "POST" else {}
        row = {
            "citizen": citizen,
            "path": request.path_qs[:200],
            "body": json.dumps({k: str(v) for k, v in form.items()}) if form else None,
            "at": time.time(),
        }
        async with slot, engine.begin() as conn:
            await conn.execute(insert, row)
        counter["n"] += 1
        mid = secrets.token_urlsafe(18)
        if request.method == "POST":
            if "application/json" in request.headers.get("Accept", ""):
                body = {"status": "ok", "message_id": mid, "version": 1, "state": "x"}
                body["messages"] = f"<li>Référence HDF-OISE-{counter['n']:06d}</li>"
                return web.json_response(body)
            raise web.HTTPSeeOther(f"/?r={mid}")
        response = web.Response(text=page.format(mid=mid, n=counter["n"]), content_type="text/html")
        if COOKIE not in request.cookies:
            response.set_cookie(COOKIE, citizen, httponly=True, samesite="Lax")
        return response

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", handle)
    app.router.add_post("/message", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await engine.dispose()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--modes", default="json,form", help="json (chat script), form (no JS)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        return floor_server(args.port)
    from bot.commands.run import run_loop

    return run_loop(bench(args))


if __name__ == "__main__":
    sys.exit(main())
