"""The console's security review (issue 13, point 6): the password check off the event loop
and after the throttles, the target of ``next``, bidi controls in addresses, the proxies
believed, a lockout an attacker cannot hold, and ``Origin`` on every state-changing request."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.http import client_address, from_proxy, is_https, trust_proxies
from moderation import security
from moderation.security import BIDI_CONTROLS
from moderation.services import accounts
from moderation.web import CROSS_ORIGIN
from storage.models import AuditEntry, Contribution, Staff
from storage.settings import Settings
from tests.moderation_helpers import PASSWORD, Console, World, csrf_of, new_console


class CountingHasher(PasswordHasher):
    """The tests' cheap hasher, counting the password checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    h = CountingHasher()
    monkeypatch.setattr(security, "_hasher", h)
    monkeypatch.setattr(security, "_DUMMY_HASH", h.hash("dummy password"))
    return h


async def _login(
    con: Console, email: str, password: str, *, addr: str | None = None, **form: str
) -> Any:
    """One sign-in, from ``addr`` (as the reverse proxy on loopback names it) when given."""
    page = await con.client.get("/login")
    token = csrf_of(await page.text())
    headers = {"X-Forwarded-For": addr} if addr else {}
    return await con.client.post(
        "/login",
        data={"_csrf": token, "email": email, "password": password, **form},
        headers=headers,
        allow_redirects=False,
    )


async def _audit(sessions: async_sessionmaker[AsyncSession]) -> list[AuditEntry]:
    async with sessions() as s:
        return list(await s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
async def console(
    db_settings: Settings, engine: AsyncEngine, staff_ids: dict[str, int]
) -> AsyncIterator[Console]:
    con = await new_console(db_settings.model_copy(update={"console_max_failed_logins": 3}), engine)
    try:
        yield con
    finally:
        await con.client.close()


# --- the password check: off the event loop, after the throttles ---------------------------------


async def test_wrong_logins_being_hashed_do_not_hold_up_another_page(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    started, release = threading.Event(), threading.Event()
    cheap = security._hasher

    class HeldHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            events.append("hash started")
            started.set()
            release.wait(5)  # on the event loop, this would hold every request meanwhile
            events.append("hash done")
            return cheap.verify(hash, password)

    monkeypatch.setattr(security, "_hasher", HeldHasher())
    token = csrf_of(await (await console.client.get("/login")).text())
    attempts = [
        asyncio.create_task(
            console.client.post(
                "/login",
                data={"_csrf": token, "email": "oise@ars.test", "password": f"wrong {i} wrong"},
                allow_redirects=False,
            )
        )
        for i in range(3)
    ]
    assert await asyncio.to_thread(started.wait, 10)
    page = await console.client.get("/login")  # served while the hashes are held
    events.append(f"page served {page.status}")
    release.set()
    answers = await asyncio.gather(*attempts)
    assert [a.status for a in answers] == [401, 401, 401]
    assert events.index("hash started") < events.index("page served 200")
    assert events.index("page served 200") < events.index("hash done")


async def test_a_blocked_address_costs_no_hash_and_no_audit_row_per_try(
    console: Console, hasher: CountingHasher, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # 3 failures lock an account; 12 (4 x 3) from one address block the address
    for i in range(12):
        resp = await _login(console, f"ghost{i}@ars.test", "wrong wrong wrong", addr="10.1.1.1")
        assert resp.status == 401
    assert hasher.verified == 12
    assert len(await _audit(sessions)) == 12
    for i in range(20):
        password = PASSWORD if i % 2 else "still wrong!!"
        resp = await _login(console, "oise@ars.test", password, addr="10.1.1.1")
        assert resp.status == 401
    assert hasher.verified == 12  # not one more hash
    entries = await _audit(sessions)
    assert len(entries) == 13  # the block is audited once, not per try
    assert entries[-1].after == {"reason": "throttled"}
    # another address is not concerned
    assert (await _login(console, "oise@ars.test", PASSWORD, addr="10.2.2.2")).status == 303


async def test_an_address_that_failed_on_a_locked_account_costs_no_hash(
    console: Console,
    hasher: CountingHasher,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for _ in range(3):
        assert (await _login(console, "oise@ars.test", "wrong!!", addr="10.1.1.1")).status == 401
    assert hasher.verified == 3
    for _ in range(5):
        assert (await _login(console, "oise@ars.test", PASSWORD, addr="10.1.1.1")).status == 401
    assert hasher.verified == 3
    reasons = [e.after and e.after["reason"] for e in await _audit(sessions)]
    assert reasons == ["password", "password", "password, locked", "locked"]


async def test_hammering_an_account_does_not_keep_its_owner_out(
    console: Console, staff_ids: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def locked_until() -> datetime | None:
        async with sessions() as s:
            return (await s.get_one(Staff, staff_ids["oise"])).locked_until

    for _ in range(3):
        assert (await _login(console, "oise@ars.test", "guess!!", addr="10.6.6.6")).status == 401
    assert await locked_until() is not None
    # the attacker's address is refused even with the right password...
    assert (await _login(console, "oise@ars.test", PASSWORD, addr="10.6.6.6")).status == 401
    # ...while the owner, from a clean address, signs in and lifts the lock
    assert (await _login(console, "oise@ars.test", PASSWORD, addr="10.7.7.7")).status == 303
    async with sessions() as s:
        staff = await s.get_one(Staff, staff_ids["oise"])
        assert (staff.locked_until, staff.failed_logins) == (None, 0)
    # the attacker goes on (and locks the account again): the owner still gets in
    for _ in range(3):
        assert (await _login(console, "oise@ars.test", "guess!!", addr="10.6.6.6")).status == 401
    assert await locked_until() is not None
    assert (await _login(console, "oise@ars.test", PASSWORD, addr="10.7.7.7")).status == 303


# --- next -----------------------------------------------------------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example/",
    "/\r\n/evil.example/",
    "/\n/evil.example/",
    "\t//evil.example/",
    " /evil.example/",
    "/ /evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/\\/evil.example/",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "/%09/evil.example/",
    "/%2F/evil.example/",
    "/%2f%2fevil.example/",
    "%2F%2Fevil.example/",
    "/%5Cevil.example/",
    "/%0d%0a/evil.example/",
    "/\u3000/evil.example/",
    "/\u00a0/evil.example/",
    "/\u2028/evil.example/",
    "/\u200b/evil.example/",
    "/\u202e/evil.example/",
    "/\x00/evil.example/",
    "/x#@evil.example",
]


async def test_next_is_only_a_same_site_absolute_path(
    console: Console, staff_ids: dict[str, int]
) -> None:
    raw = await console.client.get("/login?next=/%09/evil.example/")  # the reported case
    assert 'name="next" value="/contributions"' in await raw.text()
    for target in HOSTILE_NEXT:
        page = await console.client.get("/login", params={"next": target})
        assert 'name="next" value="/contributions"' in await page.text(), repr(target)
        resp = await _login(console, "oise@ars.test", PASSWORD, next=target)
        assert resp.status == 303, repr(target)
        assert resp.headers["Location"] == "/contributions", repr(target)
    kept = "/contributions/HDF-OISE-000001?status=pending&q=m%C3%A9decin+absent"
    resp = await _login(console, "oise@ars.test", PASSWORD, next=kept)
    assert resp.headers["Location"] == kept


# --- bidi controls in addresses ------------------------------------------------------------------


@pytest.mark.parametrize("char", sorted(BIDI_CONTROLS))
def test_an_address_with_a_bidi_control_is_refused(char: str) -> None:
    for email in (f"{char}admin@ars.test", f"admin@ars{char}.test", f"admin@ars.test{char}"):
        with pytest.raises(accounts.AccountError):
            accounts.normalise_email(email)


async def test_bidi_controls_are_refused_at_account_creation_and_sign_in(
    admin: Console,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resp = await admin.post(
        "/staff",
        {
            "email": "moc.tset-sra@\u202eoise2@ars.test",
            "role": "moderator",
            "territories": str(world.territories["OISE"]),
        },
    )
    assert resp.status == 422  # type: ignore[attr-defined]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Staff)) == 3
    other = Console(admin.client)
    resp = await _login(other, "oise@ars.test\u200e", PASSWORD)
    assert resp.status == 401
    for entry in await _audit(sessions):
        assert not BIDI_CONTROLS & set(entry.actor), entry.actor


async def test_bidi_controls_are_shown_escaped_in_the_journal_and_its_csv(
    admin: Console, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:  # as written before addresses were checked
        s.add(
            AuditEntry(
                at=datetime.now(UTC),
                actor="gpj.\u202eexe@ars.test",
                action="login_failed",
                target="cible\u2066x\u2069",
                after={"reason": "a\u200fb"},
                remote_addr="10.0.0.1",
            )
        )
        await s.commit()
    page = await (await admin.client.get("/audit")).text()
    assert not BIDI_CONTROLS & set(page)
    assert "gpj.\\u202eexe@ars.test" in page and "cible\\u2066x\\u2069" in page
    body = (await (await admin.client.get("/audit.csv")).read()).decode("utf-8-sig")
    assert not BIDI_CONTROLS & set(body)
    rows = list(csv.DictReader(io.StringIO(body)))
    [row] = [r for r in rows if r["actor"].startswith("gpj.")]
    assert row["actor"] == "gpj.\\u202eexe@ars.test"
    assert row["target"] == "cible\\u2066x\\u2069"
    assert "a\\u200fb" in row["after"]


# --- the proxies believed ------------------------------------------------------------------------


def _request(peer: str, app: web.Application, **headers: str) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default
    )
    return make_mocked_request("GET", "/", headers=headers, app=app, transport=transport)


def test_forwarded_headers_are_believed_only_from_the_trusted_proxies() -> None:
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    default = web.Application()  # trusts loopback only
    for peer in ("10.0.0.7", "192.168.1.2", "172.17.0.3", "fd00::1", "203.0.113.50"):
        req = _request(peer, default, **headers)
        assert not from_proxy(req), peer
        assert (client_address(req), is_https(req)) == (peer, False), peer
    for peer in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
        req = _request(peer, default, **headers)
        assert (client_address(req), is_https(req)) == ("203.0.113.9", True), peer
    named = web.Application()
    trust_proxies(named, [ip_network("10.0.0.7/32"), ip_network("fd00::/8")])
    for peer in ("10.0.0.7", "fd00::1"):
        assert client_address(_request(peer, named, **headers)) == "203.0.113.9", peer
    for peer in ("10.0.0.8", "127.0.0.1"):
        assert client_address(_request(peer, named, **headers)) == peer, peer


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().trusted_proxies == (ip_network("127.0.0.0/8"), ip_network("::1/128"))
    monkeypatch.setenv("CNR_TRUSTED_PROXIES", "10.0.0.5, 172.16.0.0/12,fd00::/8")
    assert Settings().trusted_proxies == (
        ip_network("10.0.0.5/32"),
        ip_network("172.16.0.0/12"),
        ip_network("fd00::/8"),
    )
    monkeypatch.setenv("CNR_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    assert Settings().trusted_proxies == (ip_network("10.0.0.0/8"),)
    for wrong in ("10.0.0.1/8", "not-an-address"):
        monkeypatch.setenv("CNR_TRUSTED_PROXIES", wrong)
        with pytest.raises(ValueError):
            Settings()


async def test_the_console_and_the_web_chat_trust_the_proxies_of_the_settings(
    db_settings: Settings,
    engine: AsyncEngine,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from bot.core.http import TRUSTED_PROXIES
    from bot.web.app import create_app as create_web_app

    elsewhere = db_settings.model_copy(update={"trusted_proxies": (ip_network("10.9.9.9/32"),)})
    assert create_web_app(elsewhere)[TRUSTED_PROXIES] == (ip_network("10.9.9.9/32"),)
    con = await new_console(elsewhere, engine)  # the test client comes from 127.0.0.1
    try:
        resp = await _login(con, "oise@ars.test", PASSWORD, addr="203.0.113.9")
        assert resp.status == 303
    finally:
        await con.client.close()
    con = await new_console(db_settings, engine)  # loopback trusted by default
    try:
        resp = await _login(con, "oise@ars.test", PASSWORD, addr="203.0.113.9")
        assert resp.status == 303
    finally:
        await con.client.close()
    addrs = [e.remote_addr for e in await _audit(sessions)]
    assert addrs == ["127.0.0.1", "203.0.113.9"]


# --- Origin --------------------------------------------------------------------------------------


def _origin(client: TestClient) -> str:
    return f"http://{client.host}:{client.port}"


async def test_a_post_from_another_origin_is_refused(
    console: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    own = _origin(console.client)
    # sign-in: a right token and password, from another site's page
    for origin in ("https://evil.example", f"{own}.evil.example", "http://127.0.0.1", "x"):
        page = await console.client.get("/login")
        token = csrf_of(await page.text())
        resp = await console.client.post(
            "/login",
            data={"_csrf": token, "email": "oise@ars.test", "password": PASSWORD},
            headers={"Origin": origin},
            allow_redirects=False,
        )
        assert resp.status == 403, origin
        assert CROSS_ORIGIN.replace("'", "&#39;") in await resp.text()
    assert await console.login("oise@ars.test") == 303
    for origin in ("https://evil.example", own.replace("http:", "https:"), "http://x", own + "/x"):
        resp = await console.post(
            "/contributions/HDF-OISE-000001/approve", {"version": "1"}, headers={"Origin": origin}
        )
        assert resp.status == 403, origin  # type: ignore[attr-defined]
    async with sessions() as s:
        status = await s.scalar(
            select(Contribution.status).where(Contribution.reference == "HDF-OISE-000001")
        )
    assert status == "pending"
    # its own origin goes through; none, or "null" (what a browser sends under the console's
    # Referrer-Policy: no-referrer), leaves it to the CSRF token
    resp = await console.post(
        "/contributions/HDF-OISE-000001/approve", {"version": "1"}, headers={"Origin": own}
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    resp = await console.post("/contributions/HDF-OISE-000002/approve", {"version": "1"})
    assert resp.status == 303  # type: ignore[attr-defined]
    resp = await console.post(
        "/contributions/HDF-OISE-000003/approve", {"version": "1"}, headers={"Origin": "null"}
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    for origin in (own, "null"):
        resp = await console.post(
            "/contributions/HDF-OISE-000003/approve",
            {"version": "2", "_csrf": "wrong"},
            headers={"Origin": origin},
        )
        assert resp.status == 403  # type: ignore[attr-defined]


async def test_behind_the_proxy_the_origin_is_the_public_one(
    console: Console, staff_ids: dict[str, int]
) -> None:
    public = {"Host": "console.ars.example:8443", "X-Forwarded-Proto": "https"}
    page = await console.client.get("/login", headers=public)
    token = csrf_of(await page.text())
    cookie = {"Cookie": f"cnr_login_csrf={token}"}
    for origin, status in (
        ("https://console.ars.example:8443", 303),
        ("http://console.ars.example:8443", 403),
        ("https://console.ars.example", 403),
    ):
        resp = await console.client.post(
            "/login",
            data={"_csrf": token, "email": "oise@ars.test", "password": PASSWORD},
            headers={**public, **cookie, "Origin": origin},
            allow_redirects=False,
        )
        assert resp.status == status, origin
