"""The web chat's abuse policy (bot.web.guard) on every kind of counter (memory, database on a
real SQLite file and a real PostgreSQL): floods, scripted first contributions with and without
a proof-of-work, replayed and forged proofs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web.guard import Guard, address_key
from bot.web.proof_of_work import ProofOfWork
from storage.ratelimit import DatabaseRateLimiter, RateLimiter, Verdict, create_limiter
from storage.settings import Settings
from tests.pow_helpers import GARBAGE, encode, solve, solved, tampered

#: 15 s into the current hour (the proofs are made and checked on the real clock)
T0 = datetime.now(UTC).replace(minute=0, second=15, microsecond=0)
HOUR_LEFT = 3600 - 15
MINUTE_LEFT = 60 - 15
A, B = "203.0.113.7", "198.51.100.23"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        secret_key="test-secret-not-for-production",
        secret_file=tmp_path / "secret.key",
        altcha_max_number=1_000,  # solved in milliseconds by the library's solver
    )


def make_guard(settings: Settings, limiter: RateLimiter, **overrides: Any) -> Guard:
    settings = settings.model_copy(update=overrides)
    return Guard(settings, limiter, ProofOfWork(settings, limiter))


@pytest.fixture
def guard(settings: Settings, limiter: RateLimiter) -> Guard:
    return make_guard(settings, limiter)


async def test_a_flood_from_one_address_is_refused_while_another_passes(guard: Guard) -> None:
    for n in range(1, 301):  # CNR_WEB_RATE_PER_ADDRESS, default 300 a minute
        assert await guard.request(A, now=T0) == Verdict(True, n)
    flood = [await guard.request(A, now=T0 + timedelta(seconds=s)) for s in range(20)]
    assert all(not v.allowed for v in flood)
    assert flood[0].retry_after == MINUTE_LEFT
    assert flood[-1].retry_after == MINUTE_LEFT - 19
    assert (await guard.request(B, now=T0)).allowed
    # the next minute, the address is served again
    assert await guard.request(A, now=T0 + timedelta(seconds=MINUTE_LEFT)) == Verdict(True, 1)


async def test_a_citizen_sending_too_fast_is_refused(guard: Guard) -> None:
    for n in range(1, 31):  # CNR_WEB_RATE_PER_PARTICIPANT, default 30 a minute
        assert await guard.request(A, "participant-1", now=T0) == Verdict(True, n)
    refused = await guard.request(A, "participant-1", now=T0)
    assert refused == Verdict(False, 31, MINUTE_LEFT)
    assert not (await guard.message("participant-1", now=T0)).allowed
    # the same address without that citizen (another citizen on the same Wi-Fi) passes
    assert await guard.request(A, "participant-2", now=T0) == Verdict(True, 32)
    assert await guard.message("participant-3", now=T0) == Verdict(True, 1)
    assert (await guard.request(A, now=T0)).allowed


async def test_messages_alone(guard: Guard) -> None:
    verdicts = [await guard.message("participant-1", now=T0) for _ in range(35)]
    assert [v.allowed for v in verdicts] == [True] * 30 + [False] * 5
    assert verdicts[-1].retry_after == MINUTE_LEFT


async def test_a_script_without_proof_from_one_address_is_held_back(
    settings: Settings, limiter: RateLimiter
) -> None:
    guard = make_guard(settings, limiter, web_rate_unverified_total=10)
    verdicts = [await guard.first_contribution(A, None, T0) for _ in range(50)]
    assert [v.allowed for v in verdicts] == [True] * 6 + [False] * 44  # 6 an hour per address
    assert verdicts[6] == Verdict(False, 7, HOUR_LEFT)
    assert verdicts[-1] == Verdict(False, 50, HOUR_LEFT)
    # the refused attempts did not use up the site's share: 4 others still pass (6 + 4 = 10)
    for n in range(4):
        assert (await guard.first_contribution(f"192.0.2.{n}", None, T0)).allowed
    assert await guard.first_contribution("192.0.2.99", None, T0) == Verdict(False, 11, HOUR_LEFT)
    # an hour later, the address gets its share again
    later = T0 + timedelta(seconds=HOUR_LEFT)
    assert await guard.first_contribution(A, None, later) == Verdict(True, 1)


async def test_a_script_without_proof_from_many_addresses_is_held_back(
    settings: Settings, limiter: RateLimiter
) -> None:
    guard = make_guard(settings, limiter, web_rate_unverified_total=20)
    verdicts = [await guard.first_contribution(f"10.0.{n}.1", "", T0) for n in range(50)]
    assert [v.allowed for v in verdicts] == [True] * 20 + [False] * 30
    assert verdicts[20] == Verdict(False, 21, HOUR_LEFT)


async def test_valid_proofs_pass(guard: Guard) -> None:
    # the address has used its share without proof...
    for _ in range(6):
        assert (await guard.first_contribution(A, None, T0)).allowed
    assert not (await guard.first_contribution(A, None, T0)).allowed
    # ...a browser solving the challenges is not held back
    for _ in range(50):
        assert await guard.first_contribution(A, solved(guard.pow), T0) == Verdict(True, 0)


async def test_a_replayed_proof_is_refused(guard: Guard) -> None:
    proof = solved(guard.pow)
    assert (await guard.first_contribution(A, proof, T0)).allowed
    # replayed, it counts as no proof: within the no-proof share, then refused
    replays = [await guard.first_contribution(A, proof, T0) for _ in range(8)]
    assert [v.allowed for v in replays] == [True] * 6 + [False] * 2
    # from another address too
    other = [await guard.first_contribution(B, proof, T0) for _ in range(7)]
    assert [v.allowed for v in other] == [True] * 6 + [False]
    assert not await guard.pow.verify(proof)


async def test_forged_expired_or_garbage_proofs_fall_back_to_the_strict_limit(
    guard: Guard, settings: Settings
) -> None:
    expired = encode(
        solve(
            guard.pow.challenge(datetime.now(UTC) - settings.altcha_expires - timedelta(seconds=2))
        )
    )
    _, forged = tampered(guard.pow)
    proofs: list[Any] = [expired, *forged.values(), *GARBAGE]
    assert len(proofs) > 30
    verdicts = [await guard.first_contribution(A, proof, T0) for proof in proofs]
    assert [v.allowed for v in verdicts] == [True] * 6 + [False] * (len(proofs) - 6)
    assert verdicts[-1].retry_after == HOUR_LEFT


async def test_an_ipv6_client_is_counted_by_its_64_network(
    settings: Settings, limiter: RateLimiter
) -> None:
    guard = make_guard(settings, limiter, web_rate_per_address=3)
    same_network = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:DB8:1:2:0:0:0:77"]
    for address in same_network:
        assert (await guard.request(address, now=T0)).allowed
    assert not (await guard.request("2001:db8:1:2:abcd::1", now=T0)).allowed
    assert (await guard.request("2001:db8:1:3::1", now=T0)).allowed
    # an IPv4 address and its IPv6-mapped form are one client
    for _ in range(3):
        assert (await guard.request("192.0.2.1", now=T0)).allowed
    assert not (await guard.request("::ffff:192.0.2.1", now=T0)).allowed


def test_address_key() -> None:
    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_key("2001:DB8:1:2::") == "2001:db8:1:2::/64"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("::1") == "::/64"
    for odd in ("", "unknown", "203.0.113.7, 10.0.0.1", " 203.0.113.7", "\x00", "\ud800"):
        assert address_key(odd) == odd


async def test_hostile_addresses_and_keys(guard: Guard) -> None:
    for value in ("", "\x00", "\ud800", "x" * 10_000, "'; DROP TABLE rate_counters; --"):
        assert (await guard.request(value, value, now=T0)).allowed
        assert (await guard.message(value, now=T0)).allowed
        assert (await guard.first_contribution(value, value, T0)).allowed


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_wired_as_the_web_chat_does(
    settings: Settings, db_settings: Settings, engine: AsyncEngine
) -> None:
    """With the limiter the factory picks for the database (memory on SQLite, the database on
    PostgreSQL) and the deployment's secret."""
    limiter = create_limiter(db_settings, engine)
    live = db_settings.model_copy(update={"altcha_max_number": 1_000})
    guard = Guard(live, limiter, ProofOfWork(live, limiter))
    assert (await guard.request(A, "participant", now=T0)).allowed
    assert (await guard.first_contribution(A, solved(guard.pow), T0)).allowed
    assert (await guard.first_contribution(A, None, T0)).allowed
    assert isinstance(limiter, DatabaseRateLimiter) == (engine.dialect.name == "postgresql")
