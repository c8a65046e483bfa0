"""Rate limits (storage.ratelimit): the memory counter and the database counter on a real SQLite
file and a real PostgreSQL, with explicit clocks (no sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine, session_factory
from storage.identity import derive_key
from storage.models import RateCounter
from storage.ratelimit import (
    RATE_LIMIT_INFO,
    DatabaseRateLimiter,
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    Verdict,
    create_limiter,
    purge_expired,
)
from storage.settings import Settings
from tests.ratelimit_fixtures import KEY

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
#: 15 s into a minute, 15 s into an hour
T0 = datetime(2026, 3, 2, 10, 0, 15, tzinfo=UTC)
ADDRESS = "203.0.113.7"
HOSTILE = [
    "",
    "x" * 10_240,
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff\ud800",
    "'; DROP TABLE rate_counters; --",
    "%s %(x)s :x ? $1",
    "é\u202e\u200b",
]


async def stored_buckets(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(RateCounter.bucket))).scalars())


async def test_limit_reached_then_refused_with_the_rest_of_the_window(
    limiter: RateLimiter,
) -> None:
    for n in range(1, 6):
        assert await limiter.hit("web-address", ADDRESS, 5, MINUTE, T0) == Verdict(True, n, 0)
    refused = await limiter.hit("web-address", ADDRESS, 5, MINUTE, T0 + timedelta(seconds=5))
    assert refused == Verdict(False, 6, 40)  # 10:00:20 -> the window ends at 10:01:00
    late = await limiter.hit("web-address", ADDRESS, 5, MINUTE, T0 + timedelta(seconds=44.2))
    assert late == Verdict(False, 7, 1)  # never 0 while refused: rounded up
    hourly = await limiter.hit("hourly", ADDRESS, 1, HOUR, T0)
    assert hourly.allowed
    assert (await limiter.hit("hourly", ADDRESS, 1, HOUR, T0)).retry_after == 3600 - 15


async def test_another_who_and_another_name_are_unaffected(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("web-address", ADDRESS, 2, MINUTE, T0)
    assert not (await limiter.hit("web-address", ADDRESS, 2, MINUTE, T0)).allowed
    assert await limiter.hit("web-address", "203.0.113.8", 2, MINUTE, T0) == Verdict(True, 1)
    assert await limiter.hit("other-limit", ADDRESS, 2, MINUTE, T0) == Verdict(True, 1)
    # the same name with another window is another counter
    assert await limiter.hit("web-address", ADDRESS, 2, HOUR, T0) == Verdict(True, 1)


async def test_a_new_window_is_allowed_again(limiter: RateLimiter) -> None:
    for _ in range(4):
        await limiter.hit("web-address", ADDRESS, 3, MINUTE, T0)
    just_before = T0 + timedelta(seconds=44, microseconds=999_999)
    assert not (await limiter.hit("web-address", ADDRESS, 3, MINUTE, just_before)).allowed
    next_window = T0 + timedelta(seconds=45)  # 10:01:00
    assert await limiter.hit("web-address", ADDRESS, 3, MINUTE, next_window) == Verdict(True, 1)


async def test_several_limits_in_one_call(limiter: RateLimiter) -> None:
    limits = [
        Limit("web-address", ADDRESS, 3, MINUTE),
        Limit("web-participant", "participant-key", 2, MINUTE),
    ]
    assert await limiter.hit_many(limits, T0) == [Verdict(True, 1), Verdict(True, 1)]
    assert await limiter.hit_many(limits, T0) == [Verdict(True, 2), Verdict(True, 2)]
    third = await limiter.hit_many(limits, T0)
    assert third == [Verdict(True, 3), Verdict(False, 3, 45)]
    assert Verdict.strictest(third) == Verdict(False, 3, 45)
    assert await limiter.hit_many([], T0) == []
    # the same limit twice in one call counts once (one bucket)
    twice = await limiter.hit_many([limits[0], limits[0]], T0)
    assert twice == [Verdict(False, 4, 45), Verdict(False, 4, 45)]


def test_strictest_verdict() -> None:
    assert Verdict.strictest([Verdict(True, 3), Verdict(True, 9)]) == Verdict(True, 9)
    assert Verdict.strictest(
        [Verdict(False, 7, 10), Verdict(True, 1), Verdict(False, 2, 3000)]
    ) == Verdict(False, 2, 3000)
    with pytest.raises(ValueError):
        Verdict.strictest([])


async def test_once(limiter: RateLimiter) -> None:
    until = T0 + timedelta(minutes=20)
    assert await limiter.once("altcha-used", "signature-1", until, T0)
    assert not await limiter.once("altcha-used", "signature-1", until, T0 + timedelta(minutes=1))
    assert not await limiter.once("altcha-used", "signature-1", until, T0 + timedelta(minutes=19))
    assert await limiter.once("altcha-used", "signature-2", until, T0)
    # already expired: never accepted (nothing is stored)
    assert not await limiter.once("altcha-used", "signature-3", T0, T0)
    # after ``until`` the mark is gone (forgotten, or restarted when not purged yet)
    assert await limiter.once("altcha-used", "signature-1", until + HOUR, until)


async def test_the_counters_do_not_hold_who_in_clear(
    limiter: RateLimiter, engine: AsyncEngine
) -> None:
    participant = "c0ffee" * 10
    await limiter.hit_many(
        [
            Limit("web-address", ADDRESS, 5, MINUTE),
            Limit("web-participant", participant, 5, MINUTE),
        ],
        T0,
    )

    async def current() -> set[str]:
        if isinstance(limiter, MemoryRateLimiter):
            return set(limiter._counts)
        return set(await stored_buckets(engine))

    seen = await current()
    # the next window (the memory counter forgets the previous one by then)
    await limiter.hit("web-address", ADDRESS, 5, MINUTE, T0 + MINUTE)
    await limiter.once("altcha-used", "solved-challenge-signature", T0 + HOUR, T0 + MINUTE)
    buckets = sorted(seen | await current())
    assert len(buckets) == 4
    window = int(T0.timestamp()) // 60
    for bucket in buckets:
        assert len(bucket) <= 120
        for secret in (ADDRESS, "203", "113", participant, "c0ffee", "solved"):
            assert secret not in bucket
    names = sorted(b.split(":")[0] for b in buckets)
    assert names == ["altcha-used", "web-address", "web-address", "web-participant"]
    by_window = sorted(
        (b for b in buckets if b.startswith("web-address:")), key=lambda b: b.rsplit(":", 1)[1]
    )
    assert [b.rsplit(":", 1)[1] for b in by_window] == [str(window), str(window + 1)]
    # one address in two windows: two unrelated hashes (nothing links them)
    assert by_window[0].split(":")[1] != by_window[1].split(":")[1]


async def test_a_bucket_depends_on_the_secret(limiter: RateLimiter) -> None:
    other = MemoryRateLimiter(b"another key of 32 bytes........")
    mine = limiter._bucket("web-address", "60:1", ADDRESS, "1")
    assert mine != other._bucket("web-address", "60:1", ADDRESS, "1")
    assert mine == limiter._bucket("web-address", "60:1", ADDRESS, "1")


async def test_hostile_who_values(kind: str, limiter: RateLimiter, engine: AsyncEngine) -> None:
    for who in HOSTILE:
        assert await limiter.hit("web-address", who, 1, MINUTE, T0) == Verdict(True, 1)
        assert not (await limiter.hit("web-address", who, 1, MINUTE, T0)).allowed
        assert await limiter.once("altcha-used", who, T0 + MINUTE, T0)
        assert not await limiter.once("altcha-used", who, T0 + MINUTE, T0)
    if kind != "memory":
        buckets = await stored_buckets(engine)
        assert len(buckets) == 2 * len(HOSTILE)  # each value its own counter
        assert all(b.isascii() and b.isprintable() and len(b) <= 120 for b in buckets)


async def test_invalid_arguments_are_refused(limiter: RateLimiter) -> None:
    naive = datetime(2026, 3, 2, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        await limiter.hit("web-address", ADDRESS, 1, MINUTE, naive)
    for name in ("", "Web", "a:b", "x" * 49, "é"):
        with pytest.raises(ValueError, match="name"):
            await limiter.hit(name, ADDRESS, 1, MINUTE, T0)
    with pytest.raises(ValueError, match="window"):
        await limiter.hit("web-address", ADDRESS, 1, timedelta(milliseconds=1500), T0)
    with pytest.raises(ValueError, match="at least 1"):
        await limiter.hit("web-address", ADDRESS, 0, MINUTE, T0)
    with pytest.raises(ValueError, match="key"):
        MemoryRateLimiter(b"short")


async def test_purge_expired(kind: str, limiter: RateLimiter, engine: AsyncEngine) -> None:
    for n in range(3):
        await limiter.hit("web-address", f"198.51.100.{n}", 5, MINUTE, T0)
    await limiter.hit("unverified", ADDRESS, 5, HOUR, T0)
    await limiter.once("altcha-used", "sig", T0 + timedelta(minutes=20), T0)
    later = T0 + timedelta(minutes=2)
    if kind == "memory":
        assert await limiter.purge(later) == 3
        assert len(limiter) == 2  # type: ignore[arg-type]
        assert await limiter.purge(T0 + 2 * HOUR) == 2
        return
    async with session_factory(engine)() as session:
        assert await purge_expired(session, later) == 3
        await session.commit()
    assert len(await stored_buckets(engine)) == 2
    async with engine.begin() as conn:
        assert await purge_expired(conn, later) == 0
    assert await limiter.purge(T0 + 2 * HOUR) == 2
    assert await stored_buckets(engine) == []
    # a purged window that is still current starts again from zero (no harm: it was over)
    assert await limiter.hit("unverified", ADDRESS, 5, HOUR, T0 + 2 * HOUR) == Verdict(True, 1)


async def test_memory_forgets_expired_windows_by_itself() -> None:
    limiter = MemoryRateLimiter(KEY)
    for n in range(5_000):
        await limiter.hit("web-address", f"2001:db8::{n:x}", 300, MINUTE, T0)
    assert len(limiter) == 5_000
    await limiter.hit("web-address", ADDRESS, 300, MINUTE, T0 + MINUTE)
    assert len(limiter) == 1
    assert len(limiter._expiries) == 1


async def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    limiter = MemoryRateLimiter(KEY, max_buckets=1_000)
    await limiter.once("altcha-used", "kept-longest", T0 + HOUR, T0)
    for n in range(20_000):
        verdict = await limiter.hit(
            "web-address", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 5, MINUTE, T0
        )
        assert verdict.allowed
        assert len(limiter) <= 1_000
    assert len(limiter._expiries) <= 1_000
    # the counters closest to expiry went first: the one-hour mark is still there
    assert not await limiter.once("altcha-used", "kept-longest", T0 + HOUR, T0)
    # a client hitting now is counted as usual
    for n in range(1, 4):
        assert (await limiter.hit("web-address", ADDRESS, 2, MINUTE, T0)).count == n


async def test_three_workers_on_postgresql_never_allow_more_than_the_limit(
    pg_settings: Settings, pg_engine: AsyncEngine
) -> None:
    key = derive_key(pg_settings.master_secret(), RATE_LIMIT_INFO)
    engines = [pg_engine, create_engine(pg_settings), create_engine(pg_settings)]
    try:
        workers = [DatabaseRateLimiter(key, e) for e in engines]

        async def flood(worker: DatabaseRateLimiter) -> list[Verdict]:
            return list(
                await asyncio.gather(
                    *(
                        worker.hit_many(
                            [
                                Limit("web-address", ADDRESS, 25, MINUTE),
                                Limit("web-total", "", 40, MINUTE),
                            ],
                            T0,
                        )
                        for _ in range(40)
                    )
                )
            )

        results = await asyncio.gather(*(flood(w) for w in workers))
        per_address = [r[0] for batch in results for r in batch]
        total = [r[1] for batch in results for r in batch]
        assert sum(v.allowed for v in per_address) == 25
        assert sum(v.allowed for v in total) == 40
        # every hit was counted exactly once
        assert sorted(v.count for v in per_address) == list(range(1, 121))
        # a proof-of-work accepted once across the three workers
        until = T0 + timedelta(minutes=20)
        firsts = await asyncio.gather(
            *(w.once("altcha-used", "sig", until, T0) for w in workers for _ in range(10))
        )
        assert sum(firsts) == 1
    finally:
        for e in engines[1:]:
            await e.dispose()


async def test_memory_counter_under_concurrent_hits() -> None:
    limiter = MemoryRateLimiter(KEY)
    verdicts = await asyncio.gather(
        *(limiter.hit("web-address", ADDRESS, 10, MINUTE, T0) for _ in range(100))
    )
    assert sum(v.allowed for v in verdicts) == 10


@pytest.fixture
async def settings_engine(db_settings: Settings) -> AsyncIterator[tuple[Settings, AsyncEngine]]:
    engine = create_engine(db_settings)
    try:
        yield db_settings, engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_create_limiter_picks_by_database(
    backend: str, settings_engine: tuple[Settings, AsyncEngine]
) -> None:
    settings, engine = settings_engine
    limiter = create_limiter(settings, engine)
    expected = DatabaseRateLimiter if backend == "postgres" else MemoryRateLimiter
    assert type(limiter) is expected
    # the key comes from the master secret: two limiters of one deployment agree
    again = create_limiter(settings, engine)
    assert limiter._bucket("a", "b", "c", "d") == again._bucket("a", "b", "c", "d")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_database_counter_is_one_statement(engine: AsyncEngine) -> None:
    statements: list[str] = []

    from sqlalchemy import event

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        limiter = DatabaseRateLimiter(KEY, engine)
        await limiter.hit_many(
            [Limit("web-address", ADDRESS, 5, MINUTE), Limit("web-participant", "p", 5, MINUTE)],
            T0,
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert statements == ["INSERT"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from rate_counters"))).scalar() == 2


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_concurrent_hits_are_counted_together(engine: AsyncEngine) -> None:
    """Hits arriving together share one statement (a group), and each is still counted once,
    in order: 50 requests at once make one or two statements (the first may go alone), not
    50, and see the counts 1 to 50."""
    statements: list[str] = []

    from sqlalchemy import event

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        limiter = DatabaseRateLimiter(KEY, engine)
        verdicts = await asyncio.gather(
            *(
                limiter.hit_many(
                    [
                        Limit("web-address", f"198.51.100.{i % 5}", 8, MINUTE),
                        Limit("web-total", "", 30, MINUTE),
                    ],
                    T0,
                )
                for i in range(50)
            )
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert statements in (["INSERT"], ["INSERT", "INSERT"])
    assert sorted(total.count for _address, total in verdicts) == list(range(1, 51))
    assert sum(total.allowed for _address, total in verdicts) == 30
    for i in range(5):
        mine = [address for n, (address, _total) in enumerate(verdicts) if n % 5 == i]
        assert [v.count for v in mine] == list(range(1, 11))  # in their order of arrival
        assert [v.allowed for v in mine] == [True] * 8 + [False] * 2
