"""Console benchmark: the staff pages on a national consultation's volume (PostgreSQL).

A database of its own is created on the PostgreSQL server of ``CNR_TEST_POSTGRES_URL`` (or
``--pg``), migrated, loaded with the Hauts-de-France campaign and ``--n`` contributions
(100,000: ``bench/bulk.py``, one INSERT ... SELECT), then dropped at the end. The console runs
in this process (aiohttp, as ``cnrbot console``), signed in as an admin and as the moderator
of one territory; each page is requested ``--runs`` times (after warm-up requests), its
p50/p95 printed beside a bare indexed ``SELECT`` of the same rows (the page's 25 rows, the one
contribution, the dashboard's counts), measured in the same loop. Target: p95 <= 150 ms for
every page. The pages:

- queue: the first page of the pending contributions, oldest first;
- deep (number): the page at 80 % of the queue, asked by its number (``?page=N``);
- deep (link): the page after it, reached by the "Page suivante" link (a keyset cursor);
- search: a frequent word (~8 % of the rows) and a rare one (a place name);
- detail: a contribution of the deep page, with its neighbours in the queue;
- dashboard: the campaign's counts and charts.

    .venv/bin/python bench/console.py [--pg URL] [--n 100000] [--runs 40] [--repeat 2]

The machine's load average is printed with the figures (they move with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bulk import generate_postgres  # noqa: E402
from moderation.app import create_app  # noqa: E402
from moderation.services import accounts  # noqa: E402
from storage.campaign_file import builtin_campaign_path, read_campaign_file  # noqa: E402
from storage.campaigns_db import load_campaign  # noqa: E402
from storage.db import create_engine, session_factory, upgrade  # noqa: E402
from storage.models import Territory  # noqa: E402
from storage.settings import Settings  # noqa: E402

PASSWORD = "bench password not for production"
PAGE_SIZE = 25
TARGET_MS = 150.0
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_ROW = re.compile(r'data-rowlink href="/contributions/([A-Z0-9-]+)\?')
_NEXT = re.compile(r'href="(/contributions\?[^"]+)" rel="next"')
_PAGES = re.compile(r"page (\d+) sur (\d+)")
SEARCH_COLUMNS = ("reference", "need", "solution", "levers", "custom_theme")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        database=u.database or "postgres",
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def login(client: TestClient, email: str) -> None:
    page = await (await client.get("/login")).text()
    token = _CSRF.search(page)
    assert token, "no CSRF token on /login"
    resp = await client.post(
        "/login",
        data={"_csrf": token.group(1), "email": email, "password": PASSWORD, "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 303, f"login of {email}: {resp.status}"


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


class Case:
    """A page and the bare SELECT of its rows."""

    def __init__(
        self, name: str, path: str, bare: Callable[[], Awaitable[object]], rows: list[str]
    ) -> None:
        self.name = name
        self.path = path
        self.bare = bare
        self.rows = rows
        self.page_ms: list[float] = []
        self.bare_ms: list[float] = []


async def measure(client: TestClient, cases: list[Case], runs: int, warm: int = 3) -> None:
    for i in range(warm + runs):
        for case in cases:
            t0 = time.perf_counter()
            resp = await client.get(case.path)
            body = await resp.text()
            t1 = time.perf_counter()
            assert resp.status == 200, (case.name, resp.status)
            await case.bare()
            t2 = time.perf_counter()
            if i >= warm:
                case.page_ms.append((t1 - t0) * 1000)
                case.bare_ms.append((t2 - t1) * 1000)
            if i == 0 and case.rows:
                shown = _ROW.findall(body)
                assert shown == case.rows, f"{case.name}: the page does not show the bare rows"


async def role_cases(
    client: TestClient,
    engine: Any,
    campaign_id: int,
    territory_id: int | None,
) -> list[Case]:
    """The pages of a role, with the bare SELECTs of the same rows (checked to match)."""
    scope = "" if territory_id is None else f" AND territory_id = {territory_id}"
    cols = "*"

    async def rows(sql: str, **params: object) -> list[str]:
        async with engine.connect() as conn:
            return [r.reference for r in await conn.execute(sa.text(sql), params)]

    def bare(sql: str, **params: object) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            async with engine.connect() as conn:
                return (await conn.execute(sa.text(sql), params)).all()

        return run

    order = " ORDER BY created_at, id LIMIT :size"
    first_sql = f"SELECT {cols} FROM contributions WHERE status = 'pending'{scope}{order}"
    cases = [
        Case(
            "queue",
            "/contributions",
            bare(first_sql, size=PAGE_SIZE),
            await rows(first_sql, size=PAGE_SIZE),
        )
    ]
    first = await (await client.get("/contributions")).text()
    found = _PAGES.search(first)
    pages = int(found.group(2)) if found else 1
    deep = max(1, int(pages * 0.8))
    async with engine.connect() as conn:
        key = (
            await conn.execute(
                sa.text(
                    f"SELECT created_at, id FROM contributions WHERE status = 'pending'{scope} "
                    "ORDER BY created_at, id OFFSET :o LIMIT 1"
                ),
                {"o": (deep - 1) * PAGE_SIZE},
            )
        ).one()
    keyset = (
        f"SELECT {cols} FROM contributions WHERE status = 'pending'{scope} "
        "AND (created_at, id) >= (:at, :id)" + order
    )
    cases.append(
        Case(
            f"deep p.{deep}/{pages} (number)",
            f"/contributions?page={deep}",
            bare(keyset, at=key.created_at, id=key.id, size=PAGE_SIZE),
            await rows(keyset, at=key.created_at, id=key.id, size=PAGE_SIZE),
        )
    )
    deep_page = await (await client.get(f"/contributions?page={deep}")).text()
    link = _NEXT.search(deep_page)
    assert link, "no next link on the deep page"
    async with engine.connect() as conn:
        after = (
            await conn.execute(
                sa.text(
                    f"SELECT created_at, id FROM contributions WHERE status = 'pending'{scope} "
                    "ORDER BY created_at, id OFFSET :o LIMIT 1"
                ),
                {"o": deep * PAGE_SIZE},
            )
        ).one()
    cases.append(
        Case(
            f"deep p.{deep + 1} (link)",
            unescape(link.group(1)),
            bare(keyset, at=after.created_at, id=after.id, size=PAGE_SIZE),
            await rows(keyset, at=after.created_at, id=after.id, size=PAGE_SIZE),
        )
    )
    rare = [cases[1].rows[-1]]  # a row of the deep page: its place name is rare
    async with engine.connect() as conn:
        rare_word = str(
            await conn.scalar(
                sa.text(
                    "SELECT split_part(need, ' à ', 2) FROM contributions WHERE reference = :r"
                ),
                {"r": rare[0]},
            )
        ).rstrip(".")
    for label, word in (("search (frequent)", "pédiatre"), ("search (rare)", rare_word)):
        like = " OR ".join(f"{c} ILIKE :p" for c in SEARCH_COLUMNS)
        sql = f"SELECT {cols} FROM contributions WHERE status = 'pending'{scope} AND ({like})"
        sql += order
        cases.append(
            Case(
                label,
                "/contributions?" + f"q={word}",
                bare(sql, p=f"%{word.lower()}%", size=PAGE_SIZE),
                await rows(sql, p=f"%{word.lower()}%", size=PAGE_SIZE),
            )
        )
    ref = cases[1].rows[PAGE_SIZE // 2]
    cases.append(
        Case(
            "detail",
            f"/contributions/{ref}?page={deep}",
            bare(f"SELECT {cols} FROM contributions WHERE reference = :r", r=ref),
            [],
        )
    )
    cases.append(
        Case(
            "dashboard",
            "/dashboard",
            bare(
                "SELECT territory_id, theme_id, status, count(*) FROM contributions "
                f"WHERE campaign_id = :c{scope} GROUP BY 1, 2, 3",
                c=campaign_id,
            ),
            [],
        )
    )
    return cases


def report(role: str, cases: list[Case]) -> bool:
    ok = True
    for case in cases:
        p50, p95 = quantiles(case.page_ms)
        b50, b95 = quantiles(case.bare_ms)
        met = p95 <= TARGET_MS
        ok &= met
        print(
            f"{role:>9} {case.name:<24} {p50:>7.1f} {p95:>7.1f} {b50:>7.2f} {b95:>7.2f} "
            f"{p50 / b50:>7.1f} {'yes' if met else 'NO':>4}",
            flush=True,
        )
    return ok


async def bench(args: argparse.Namespace) -> int:
    name = f"cnr_bench_console_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    base = make_url(args.pg)
    await _admin(args.pg, f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        secret_key="bench-secret-not-for-production",
        console_page_size=PAGE_SIZE,
    )
    engine = create_engine(settings)
    try:
        print(f"machine: {os.cpu_count()} cores, load {load()}; database {name}", flush=True)
        t0 = time.perf_counter()
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as s, s.begin():
            spec = read_campaign_file(builtin_campaign_path("hauts-de-france-2022.toml"))
            campaign_id = (await load_campaign(s, spec)).campaign_id
            territory = await s.scalar(
                sa.select(Territory)
                .where(Territory.campaign_id == campaign_id)
                .order_by(Territory.position)
            )
            assert territory is not None
            territory_id = territory.id
            await accounts.add_staff(s, "admin@bench.example", "admin", PASSWORD, [])
            await accounts.add_staff(
                s, "moderateur@bench.example", "moderator", PASSWORD, [territory]
            )
        t1 = time.perf_counter()
        await generate_postgres(engine, campaign_id, args.n)
        print(
            f"{args.n} contributions generated in {time.perf_counter() - t1:.1f} s "
            f"(schema and campaign {t1 - t0:.1f} s); load {load()}",
            flush=True,
        )
        app = create_app(settings, sessions)
        ok = True
        for repeat in range(args.repeat):
            print(
                f"\nrun {repeat + 1}/{args.repeat}: {args.runs} requests a page, "
                f"page size {PAGE_SIZE}, load {load()}"
            )
            print(
                f"{'role':>9} {'page':<24} {'p50 ms':>7} {'p95 ms':>7} {'SQL p50':>7} "
                f"{'SQL p95':>7} {'x SQL':>7} {'<=150':>4}"
            )
            for role, email, scope in (
                ("admin", "admin@bench.example", None),
                ("moderator", "moderateur@bench.example", territory_id),
            ):
                client = TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True))
                await client.start_server()
                try:
                    await login(client, email)
                    cases = await role_cases(client, engine, campaign_id, scope)
                    await measure(client, cases, args.runs)
                    ok &= report(role, cases)
                finally:
                    await client.close()
                app = create_app(settings, sessions)
            print(f"load at the end of run {repeat + 1}: {load()}", flush=True)
        print(f"\ntarget p95 <= {TARGET_MS:.0f} ms on every page: {'met' if ok else 'NOT met'}")
        return 0
    finally:
        await engine.dispose()
        await _admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("CNR_TEST_POSTGRES_URL"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not args.pg:
        parser.error("a PostgreSQL server is needed: --pg URL or CNR_TEST_POSTGRES_URL")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
