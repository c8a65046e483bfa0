"""The web chat's proof-of-work (bot.web.proof_of_work): challenges solved with the altcha
library's own solver, checked once, on every kind of counter."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import altcha
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.web.proof_of_work import ProofOfWork
from storage.db import create_engine
from storage.ratelimit import DatabaseRateLimiter, MemoryRateLimiter, RateLimiter
from storage.settings import Settings
from tests.pow_helpers import GARBAGE, encode, solve, solved, tampered
from tests.ratelimit_fixtures import KEY

FAST = 1_000  # the smallest difficulty the settings allow: solved in a few milliseconds


def fast(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"altcha_max_number": FAST, **overrides})


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(
        secret_key="test-secret-not-for-production",
        secret_file=tmp_path / "secret.key",
        altcha_max_number=FAST,
    )


@pytest.fixture
def pow(settings: Settings, limiter: RateLimiter) -> ProofOfWork:
    return ProofOfWork(settings, limiter)


def test_a_challenge_is_what_the_widget_expects(settings: Settings) -> None:
    pow = ProofOfWork(settings, MemoryRateLimiter(KEY))
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    challenge = pow.challenge(now)
    assert set(challenge) == {"parameters", "signature"}
    parameters = challenge["parameters"]
    assert parameters["algorithm"] == "SHA-256"
    assert parameters["cost"] == 1
    assert parameters["expiresAt"] == int((now + timedelta(minutes=20)).timestamp())
    assert len(parameters["keyPrefix"]) == 32  # half of the key: only the secret counter fits
    assert json.loads(json.dumps(challenge)) == challenge
    assert pow.challenge(now) != challenge
    # the secret counter is within the configured difficulty
    counters = [solve(pow.challenge())["solution"]["counter"] for _ in range(20)]
    assert all(0 <= c <= FAST for c in counters)
    assert len(set(counters)) > 1


def test_the_difficulty_and_expiry_come_from_the_settings(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"altcha_max_number": 5_000, "altcha_expires": timedelta(minutes=3)}
    )
    pow = ProofOfWork(tuned, MemoryRateLimiter(KEY))
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert pow.challenge(now)["parameters"]["expiresAt"] == int(now.timestamp()) + 180
    counters = [solve(pow.challenge())["solution"]["counter"] for _ in range(30)]
    assert max(counters) > FAST  # spread over 0..5000
    assert max(counters) <= 5_000


async def test_a_solution_is_accepted_once(pow: ProofOfWork) -> None:
    proof = solved(pow)
    assert await pow.verify(proof)
    assert not await pow.verify(proof)
    assert not await pow.verify(proof)
    assert await pow.verify(solved(pow))  # another challenge: fine


async def test_a_solution_is_accepted_once_across_workers(
    pg_settings: Settings, pg_engine: AsyncEngine
) -> None:
    settings = fast(pg_settings)
    other = create_engine(settings)
    try:
        workers = [
            ProofOfWork(settings, DatabaseRateLimiter(KEY, engine))
            for engine in (pg_engine, other, other)
        ]
        proof = solved(workers[0])
        results = await asyncio.gather(*(w.verify(proof) for w in workers for _ in range(5)))
        assert sum(results) == 1
    finally:
        await other.dispose()


async def test_an_expired_challenge_is_refused(pow: ProofOfWork, settings: Settings) -> None:
    issued = datetime.now(UTC) - settings.altcha_expires - timedelta(seconds=2)
    assert not await pow.verify(solved(pow, issued))
    # and a valid one presented after its expiry
    proof = solved(pow)
    assert not await pow.verify(proof, datetime.now(UTC) + settings.altcha_expires)
    assert await pow.verify(proof)


async def test_a_tampered_solution_is_refused(pow: ProofOfWork) -> None:
    good, variants = tampered(pow)
    for name, proof in variants.items():
        assert not await pow.verify(proof), name
    assert await pow.verify(good)  # the untouched proof was valid (and still unused)


async def test_a_solution_of_another_deployment_is_refused(
    pow: ProofOfWork, settings: Settings
) -> None:
    other = ProofOfWork(
        settings.model_copy(update={"secret_key": None, "secret_file": settings.secret_file}),
        MemoryRateLimiter(KEY),
    )
    assert not await pow.verify(solved(other))
    # the library's own challenges, signed with some other key, as well
    foreign = altcha.create_challenge("SHA-256", 1, counter=5, hmac_secret="other secret")
    assert not await pow.verify(encode(solve(foreign.to_dict())))
    # ALTCHA v1 payloads (the legacy protocol) are not accepted
    v1 = altcha.create_challenge_v1(max_number=FAST, hmac_key="k")
    v1_solution = altcha.solve_challenge_v1(v1)
    assert v1_solution is not None
    v1_payload = altcha.PayloadV1(
        v1.algorithm, v1.challenge, v1_solution.number, v1.salt, v1.signature
    )
    assert not await pow.verify(v1_payload.to_base64())


async def test_garbage_is_false_and_never_raises(pow: ProofOfWork, limiter: RateLimiter) -> None:
    for payload in GARBAGE:
        assert await pow.verify(payload) is False, repr(payload)[:60]
    if isinstance(limiter, MemoryRateLimiter):
        assert len(limiter) == 0  # nothing remembered for garbage


async def test_a_bug_in_the_check_is_false_and_logged(
    pow: ProofOfWork, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("library surprise")

    monkeypatch.setattr(altcha, "verify_solution", broken)
    assert not await pow.verify(solved(pow))
    assert "proof-of-work check failed unexpectedly" in caplog.text
