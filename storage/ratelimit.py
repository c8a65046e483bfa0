"""Rate limits that hold across workers: fixed windows, counted in memory or in the database.

A limit is "at most ``limit`` hits of ``who`` (a client address, a participant key, the whole
site) per ``window`` under ``name``". Windows are fixed and aligned on the Unix epoch (a one-minute
window runs from :00 to :59): a client may therefore get up to twice its limit across a window
boundary, which is fine for abuse control, and in exchange a hit is one counter increment, atomic
on every backend, and the total over all workers never exceeds the limit within a window.

Two counters with one interface (:class:`RateLimiter`), chosen by :func:`create_limiter`:

* :class:`MemoryRateLimiter`: one process (SQLite deployments run one worker; SQLite's single
  writer is the bottleneck, so a request costs no database write). Expired windows are forgotten
  as time passes, and at most ``max_buckets`` counters are kept: under a flood from more
  distinct clients than that within one window, the counters closest to expiry are dropped
  first (those clients' limits restart; memory stays bounded).
* :class:`DatabaseRateLimiter`: several workers on one PostgreSQL. One atomic statement per
  check, ``INSERT … ON CONFLICT (bucket) DO UPDATE SET count = count + 1 RETURNING count``, in
  autocommit (no BEGIN/COMMIT round trips); several limits are checked in the same statement.
  It works on SQLite too (3.35 or later), which the tests exercise. Each worker computes windows
  from its own clock: keep the workers' clocks in sync (NTP).

Privacy: no address, participant key or other ``who`` is stored or kept in memory. A counter's
name (``bucket``) is ``name:`` + a keyed HMAC-SHA256 of the limit's name, window and ``who`` +
``:`` + the window number. The HMAC key is derived from the master secret with its own label
(:data:`RATE_LIMIT_INFO`), so the hash cannot be recomputed from a guessed address without the
secret, and since the window number is part of what is hashed, the same address gives unrelated
buckets from one window to the next: a counter says nothing beyond its own window, and is deleted
once the window is over (:func:`purge_expired`, called by the maintenance, for the database).
A "seen once" mark (:meth:`RateLimiter.once`, a used proof-of-work) is the same keyed hash, kept
until the expiry its caller gives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import hmac
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    Table,
    bindparam,
    case,
    delete,
    func,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.identity import derive_key
from storage.models import RateCounter
from storage.settings import Settings

__all__ = [
    "RATE_LIMIT_INFO",
    "DatabaseRateLimiter",
    "Limit",
    "MemoryRateLimiter",
    "RateLimiter",
    "Verdict",
    "create_limiter",
    "purge_expired",
]

#: HKDF label of the key that hashes who is counted (see the module's docstring).
RATE_LIMIT_INFO = b"cnr-sante-bot/rate-limit/v1"

#: A limit's name: short, lower-case, printable; it is the readable part of the bucket.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,47}")
_BUCKET_MAX = 120

_table: Table = RateCounter.__table__  # type: ignore[assignment]
_c = _table.c


@dataclass(frozen=True)
class Verdict:
    """The answer of a limit: ``allowed`` or not, the ``count`` of hits in the current window
    (this one included) and, when refused, ``retry_after``: seconds until the window ends (at
    least 1; 0 when allowed)."""

    allowed: bool
    count: int
    retry_after: int = 0

    @staticmethod
    def strictest(verdicts: Iterable[Verdict]) -> Verdict:
        """One verdict for several limits: refused if any is, with the longest wait."""
        verdicts = list(verdicts)
        if not verdicts:
            raise ValueError("no verdict to combine")
        refused = [v for v in verdicts if not v.allowed]
        if refused:
            return max(refused, key=lambda v: (v.retry_after, v.count))
        if len(verdicts) == 1:
            return verdicts[0]
        count = 0
        for verdict in verdicts:
            count = max(count, verdict.count)
        return Verdict(True, count, 0)


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` hits of ``who`` per ``window`` (whole seconds, at least one) under
    ``name``."""

    name: str
    who: str
    limit: int
    window: timedelta


class RateLimiter(ABC):
    """Fixed-window counters keyed by a keyed hash of who is counted.

    Subclasses only say how to count (:meth:`_increment`) and forget (:meth:`purge`).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the rate-limit key must be at least 16 bytes")
        self._key = key

    # --- the interface ----------------------------------------------------------------------

    async def hit(
        self, name: str, who: str, limit: int, window: timedelta, now: datetime | None = None
    ) -> Verdict:
        """Count one hit of ``who`` under ``name`` and say whether it is within ``limit`` per
        ``window``."""
        (verdict,) = await self.hit_many([Limit(name, who, limit, window)], now)
        return verdict

    async def hit_many(self, limits: Sequence[Limit], now: datetime | None = None) -> list[Verdict]:
        """Count one hit under each limit, at once (one statement in the database); the
        verdicts come in the order of ``limits``. Every limit is counted, refused or not."""
        now = _aware(now)
        planned: list[tuple[str, datetime, int, int]] = []
        for item in limits:
            if item.limit < 1:
                raise ValueError(f"limit of {item.name!r} must be at least 1")
            seconds = _window_seconds(item.window)
            number = int(now.timestamp()) // seconds
            end = (number + 1) * seconds
            bucket = self._bucket(item.name, f"{seconds}:{number}", item.who, str(number))
            retry = max(1, math.ceil(end - now.timestamp()))
            planned.append((bucket, datetime.fromtimestamp(end, UTC), item.limit, retry))
        if not planned:
            return []
        counts = await self._increment({b: e for b, e, _, _ in planned}, now)
        verdicts = []
        for bucket, _, limit, retry in planned:
            count = counts[bucket]
            allowed = count <= limit
            verdicts.append(Verdict(allowed, count, 0 if allowed else retry))
        return verdicts

    async def once(self, name: str, who: str, until: datetime, now: datetime | None = None) -> bool:
        """True the first time ``who`` is presented under ``name``, False every later time
        until ``until`` (after which it is forgotten). Used to accept a token only once (a
        solved proof-of-work), across workers with the database counter."""
        now = _aware(now)
        until = _aware(until)
        if until <= now:
            return False
        bucket = self._bucket(name, "once", who, "once")
        counts = await self._increment({bucket: until}, now)
        return counts[bucket] == 1

    @abstractmethod
    async def purge(self, now: datetime | None = None) -> int:
        """Forget the counters whose window is over; return how many."""

    # --- for subclasses ----------------------------------------------------------------------

    @abstractmethod
    async def _increment(self, buckets: dict[str, datetime], now: datetime) -> dict[str, int]:
        """Add one to each bucket (created with its expiry, or restarted when expired) and
        return the new counts."""

    def _bucket(self, name: str, scope: str, who: str, suffix: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid rate-limit name {name!r}")
        message = b"\x00".join(
            (name.encode(), scope.encode(), who.encode("utf-8", "surrogatepass"))
        )
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        tag = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return f"{name}:{tag}:{suffix}"[:_BUCKET_MAX]


class MemoryRateLimiter(RateLimiter):
    """Counters in this process's memory (one worker)."""

    def __init__(self, key: bytes, max_buckets: int = 100_000) -> None:
        super().__init__(key)
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.max_buckets = max_buckets
        self._counts: dict[str, tuple[int, datetime]] = {}
        #: (expiry, bucket), soonest first; an entry whose bucket was dropped or restarted
        #: since is stale and skipped.
        self._expiries: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        """How many counters are held (for tests and metrics)."""
        return len(self._counts)

    async def purge(self, now: datetime | None = None) -> int:
        return self._forget(_aware(now))

    async def _increment(self, buckets: dict[str, datetime], now: datetime) -> dict[str, int]:
        # no await in here: the whole update is atomic for the event loop
        self._forget(now)
        counts: dict[str, int] = {}
        for bucket, expires_at in buckets.items():
            entry = self._counts.get(bucket)
            if entry is None:
                self._make_room()
                count, expires_at = 1, expires_at
                heapq.heappush(self._expiries, (expires_at, bucket))
            else:
                count, expires_at = entry[0] + 1, entry[1]
            self._counts[bucket] = (count, expires_at)
            counts[bucket] = count
        return counts

    def _forget(self, now: datetime) -> int:
        forgotten = 0
        while self._expiries and self._expiries[0][0] <= now:
            forgotten += self._drop(*heapq.heappop(self._expiries))
        return forgotten

    def _make_room(self) -> None:
        while len(self._counts) >= self.max_buckets and self._expiries:
            self._drop(*heapq.heappop(self._expiries))

    def _drop(self, expires_at: datetime, bucket: str) -> int:
        entry = self._counts.get(bucket)
        if entry is not None and entry[1] == expires_at:
            del self._counts[bucket]
            return 1
        return 0


class DatabaseRateLimiter(RateLimiter):
    """Counters in the ``rate_counters`` table, shared by every worker of the database.

    Hits arriving together (concurrent requests) are counted together: one statement adds
    each bucket's hits of the group and returns the new counts, from which each hit gets the
    count it would have had alone (a group commit; one connection, whatever the load)."""

    def __init__(self, key: bytes, engine: AsyncEngine) -> None:
        super().__init__(key)
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"no rate-limit counter for {dialect}")
        self._pg = dialect == "postgresql"
        #: the upsert is the whole transaction: on PostgreSQL, autocommit spares BEGIN/COMMIT
        self._engine = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self._pg else engine
        )
        self._insert = postgresql.insert if self._pg else sqlite.insert
        #: SQLite's upsert of n buckets, built once per n, with bound parameters only: a
        #: statement with its values in it (a multi-row ``values([...])`` is never cached by
        #: SQLAlchemy) was compiled again at every request, ~2.5 ms of CPU on PostgreSQL.
        #: PostgreSQL's takes arrays: one statement whatever the number of buckets.
        self._upserts: dict[int, Any] = {}
        #: Hits waiting for the statement in flight, and their futures.
        self._waiting: list[tuple[dict[str, datetime], datetime, asyncio.Future[dict[str, int]]]]
        self._waiting = []
        self._writer: asyncio.Task[None] | None = None

    async def purge(self, now: datetime | None = None) -> int:
        async with self._engine.begin() as conn:
            return await purge_expired(conn, _aware(now))

    def _upsert(self, n: int) -> Any:
        """``INSERT … ON CONFLICT (bucket) DO UPDATE`` adding ``n`` hits to their buckets (a
        bucket whose window is over starts again)."""
        key = 0 if self._pg else n
        stmt = self._upserts.get(key)
        if stmt is not None:
            return stmt
        if self._pg:
            source: Any = select(
                func.unnest(
                    bindparam("buckets", type_=postgresql.ARRAY(_c.bucket.type)),
                    bindparam("hits", type_=postgresql.ARRAY(_c.count.type)),
                    bindparam("expiries", type_=postgresql.ARRAY(DateTime(timezone=True))),
                )
                .table_valued("bucket", "count", "expires_at")
                .render_derived(name="hit")
            )
        else:
            # ``SELECT :b0, :n0, :e0 UNION ALL …`` (``WHERE true``: SQLite's upsert after a
            # SELECT needs a WHERE to parse)
            rows = [
                select(
                    bindparam(f"b{i}", type_=_c.bucket.type),
                    bindparam(f"n{i}", type_=_c.count.type),
                    bindparam(f"e{i}", type_=_c.expires_at.type),
                ).where(true())
                for i in range(n)
            ]
            source = rows[0] if n == 1 else union_all(*rows)
        insert: Any = self._insert(_table).from_select(["bucket", "count", "expires_at"], source)
        expired = _c.expires_at <= bindparam("now", type_=_c.expires_at.type)
        added = insert.excluded["count"]
        stmt = insert.on_conflict_do_update(
            index_elements=[_c.bucket],
            set_={
                "count": case((expired, added), else_=_c.count + added),
                "expires_at": case((expired, insert.excluded.expires_at), else_=_c.expires_at),
            },
        ).returning(_c.bucket, _c.count)
        self._upserts[key] = stmt
        return stmt

    async def _increment(self, buckets: dict[str, datetime], now: datetime) -> dict[str, int]:
        future: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        self._waiting.append((buckets, now, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._count_waiting())
        return await future

    async def _count_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            #: bucket -> [hits, expiry]
            hits: dict[str, list[Any]] = {}
            for buckets, _now, _future in group:
                for bucket, expires_at in buckets.items():
                    hits.setdefault(bucket, [0, expires_at])[0] += 1
            try:
                totals = await self._add(hits, max(now for _, now, _ in group))
            except BaseException as exc:
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            # the hits of one bucket in the group are counted in their order of arrival
            count = {bucket: totals[bucket] - n for bucket, (n, _expiry) in hits.items()}
            for buckets, _now, future in group:
                counts = {}
                for bucket in buckets:
                    count[bucket] += 1
                    counts[bucket] = count[bucket]
                if not future.done():
                    future.set_result(counts)

    async def _add(self, hits: dict[str, list[Any]], now: datetime) -> dict[str, int]:
        # sorted: concurrent multi-row upserts then lock rows in the same order (no deadlock)
        ordered = sorted(hits.items())
        params: dict[str, Any] = {"now": now}
        if self._pg:
            params["buckets"] = [b for b, _ in ordered]
            params["hits"] = [n for _, (n, _) in ordered]
            params["expiries"] = [e for _, (_, e) in ordered]
        else:
            for i, (bucket, (n, expires_at)) in enumerate(ordered):
                params[f"b{i}"] = bucket
                params[f"n{i}"] = n
                params[f"e{i}"] = expires_at
        async with self._engine.begin() as conn:
            result = await conn.execute(self._upsert(len(ordered)), params)
            return {bucket: int(count) for bucket, count in result.all()}


async def purge_expired(session_or_conn: AsyncSession | AsyncConnection, now: datetime) -> int:
    """Delete the database counters whose window is over; return how many. The caller commits
    (the hourly maintenance, in its own transaction)."""
    result: Any = await session_or_conn.execute(
        delete(RateCounter).where(RateCounter.expires_at <= _aware(now))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def create_limiter(settings: Settings, engine: AsyncEngine) -> RateLimiter:
    """The database counter on PostgreSQL (several workers), the memory one otherwise (SQLite
    runs one worker)."""
    key = derive_key(settings.master_secret(), RATE_LIMIT_INFO)
    if engine.dialect.name == "postgresql":
        return DatabaseRateLimiter(key, engine)
    return MemoryRateLimiter(key)


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime given to the rate limiter")
    return now


def _window_seconds(window: timedelta) -> int:
    seconds = window.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError("a rate-limit window is a whole number of seconds, at least one")
    return int(seconds)
