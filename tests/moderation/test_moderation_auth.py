"""Console authentication: login, sessions, CSRF, throttling and lockout, security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.routes.signin import LOGIN_FAILED
from moderation.web import SESSION_COOKIE
from storage.models import AuditEntry, Staff, StaffSession
from storage.settings import Settings
from tests.moderation_helpers import PASSWORD, Console, World, csrf_of, new_console


@pytest.fixture
async def console(client: TestClient) -> AsyncIterator[Console]:
    yield Console(client)


async def _audit_actions(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as s:
        rows = await s.execute(select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id))
        return [(a, b) for a, b in rows]


async def test_login_sets_a_hardened_session_cookie_and_logout_ends_it(
    console: Console, staff_ids: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    page = await console.client.get("/login")
    assert page.status == 200
    html = await page.text()
    assert 'lang="fr"' in html and 'for="email"' in html and 'for="password"' in html
    token = csrf_of(html)
    resp = await console.client.post(
        "/login",
        data={"_csrf": token, "email": " OISE@ars.test ", "password": PASSWORD, "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 303
    raw = resp.headers.getall("Set-Cookie")
    session_cookie = next(c for c in raw if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=Strict" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP and secure cookies not forced
    token_value = resp.cookies[SESSION_COOKIE].value
    async with sessions() as s:
        rows = list(await s.scalars(select(StaffSession)))
    assert len(rows) == 1 and rows[0].token_hash != token_value  # only the hash is stored
    home = await console.client.get("/contributions")
    assert home.status == 200
    assert home.headers["Cache-Control"] == "no-store"
    console.csrf = csrf_of(await home.text())
    out = await console.post("/logout")
    assert out.status == 303  # type: ignore[attr-defined]
    after = await console.client.get("/contributions", allow_redirects=False)
    assert after.status == 303 and after.headers["Location"].startswith("/login")
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(StaffSession)) == 0
    actions = [a for a, _ in await _audit_actions(sessions)]
    assert actions == ["login", "logout"]


async def test_secure_cookie_when_configured(
    db_settings: Settings, engine: AsyncEngine, staff_ids: dict[str, int]
) -> None:
    settings = db_settings.model_copy(update={"console_secure_cookies": True})
    con = await new_console(settings, engine)
    try:
        page = await con.client.get("/login")
        login_cookie = next(
            c for c in page.headers.getall("Set-Cookie") if c.startswith("cnr_login_csrf=")
        )
        assert "Secure" in login_cookie
        token = csrf_of(await page.text())
        # over plain HTTP the client keeps Secure cookies to itself: send it by hand
        resp = await con.client.post(
            "/login",
            data={"_csrf": token, "email": "oise@ars.test", "password": PASSWORD},
            headers={"Cookie": f"cnr_login_csrf={token}"},
            allow_redirects=False,
        )
        assert resp.status == 303
        cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE))
        assert "Secure" in cookie
    finally:
        await con.client.close()


async def test_every_page_requires_a_session(console: Console, world: World) -> None:
    for path in (
        "/",
        "/contributions",
        "/contributions/HDF-OISE-000001",
        "/dashboard",
        "/exports",
        "/audit",
        "/audit.csv",
        "/staff",
        "/aide",
    ):
        resp = await console.client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"].startswith("/login"), path
    for path in (
        "/contributions/HDF-OISE-000001/approve",
        "/contributions/bulk",
        "/exports",
        "/staff",
        "/logout",
    ):
        resp = await console.client.post(path, data={}, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/login", path


async def test_same_message_for_unknown_user_and_wrong_password(
    console: Console, staff_ids: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await console.login("nobody@ars.test", PASSWORD) == 401
    page1 = await console.client.get("/login")
    assert await console.login("oise@ars.test", "wrong password!!") == 401
    # both answers carry the very same text
    for email, pw in (("nobody@ars.test", PASSWORD), ("oise@ars.test", "nope nope nope")):
        token = csrf_of(await (await console.client.get("/login")).text())
        resp = await console.client.post(
            "/login", data={"_csrf": token, "email": email, "password": pw}
        )
        assert resp.status == 401
        assert LOGIN_FAILED.replace("'", "&#39;") in await resp.text()
    assert page1.status == 200
    actions = await _audit_actions(sessions)
    assert [a for a, _ in actions] == ["login_failed"] * 4
    assert ("login_failed", "nobody@ars.test") in actions


async def test_account_locks_after_max_failures_even_with_the_right_password(
    db_settings: Settings,
    engine: AsyncEngine,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = db_settings.model_copy(update={"console_max_failed_logins": 3})
    con = await new_console(settings, engine)
    try:
        for _ in range(3):
            assert await con.login("oise@ars.test", "wrong password 123") == 401
        assert await con.login("oise@ars.test", PASSWORD) == 401  # locked
        async with sessions() as s:
            staff = await s.get_one(Staff, staff_ids["oise"])
            assert staff.locked_until is not None
            assert staff.locked_until > datetime.now(UTC) + timedelta(minutes=10)
            # the lock expires
            staff.locked_until = datetime.now(UTC) - timedelta(seconds=1)
            await s.commit()
        assert await con.login("oise@ars.test", PASSWORD) == 303
    finally:
        await con.client.close()


async def test_address_is_throttled_across_accounts(
    db_settings: Settings, engine: AsyncEngine, staff_ids: dict[str, int]
) -> None:
    # limit per address = 4 x per-account limit; spread over unknown accounts (no account lock)
    settings = db_settings.model_copy(update={"console_max_failed_logins": 1})
    con = await new_console(settings, engine)
    try:
        for i in range(4):
            assert await con.login(f"ghost{i}@ars.test", "whatever whatever") == 401
        # this address is now refused even for a valid account and password
        assert await con.login("somme@ars.test", PASSWORD) == 401
    finally:
        await con.client.close()


async def test_disabled_account_cannot_log_in_and_loses_its_sessions(
    console: Console, staff_ids: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await console.login("oise@ars.test") == 303
    async with sessions() as s:
        staff = await s.get_one(Staff, staff_ids["oise"])
        staff.disabled = True
        await s.commit()
    resp = await console.client.get("/contributions", allow_redirects=False)
    assert resp.status == 303
    assert await console.login("oise@ars.test") == 401


async def test_idle_session_expires(
    console: Console, staff_ids: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await console.login("oise@ars.test") == 303
    async with sessions() as s:
        row = await s.scalar(select(StaffSession))
        assert row is not None
        row.last_seen_at = datetime.now(UTC) - timedelta(minutes=31)
        await s.commit()
    resp = await console.client.get("/contributions", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_csrf_is_required_on_every_post(
    console: Console,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # login form: missing or wrong token
    resp = await console.client.post(
        "/login", data={"email": "oise@ars.test", "password": PASSWORD}, allow_redirects=False
    )
    assert resp.status == 403
    assert await console.login("oise@ars.test") == 303
    for path in (
        "/contributions/HDF-OISE-000001/approve",
        "/contributions/bulk",
        "/exports",
        "/logout",
    ):
        for bad in (
            "",
            "x",
            console.csrf[:-1] + ("A" if console.csrf[-1] != "A" else "B"),
            "\x00" * 5,
        ):
            r = await console.client.post(
                path, data={"_csrf": bad, "version": "1"}, allow_redirects=False
            )
            assert r.status == 403, (path, bad)
    async with sessions() as s:
        c = await s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "approve")
        )
    assert c == 0


async def test_security_headers_on_every_response(
    console: Console, staff_ids: dict[str, int], world: World
) -> None:
    for path in ("/login", "/static/console.css", "/static/console.js"):
        resp = await console.client.get(path)
        assert resp.status == 200, path
        h = resp.headers
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert "unsafe-inline" not in h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
    assert await console.login("admin@ars.test") == 303
    for path in ("/contributions", "/dashboard", "/audit", "/staff", "/nope"):
        resp = await console.client.get(path)
        assert resp.headers["Cache-Control"] == "no-store", path
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    traversal = await console.client.get("/static/../app.py")
    assert traversal.status in (403, 404)


async def test_open_redirect_after_login_is_refused(
    console: Console, staff_ids: dict[str, int]
) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        token = csrf_of(await (await console.client.get("/login")).text())
        resp = await console.client.post(
            "/login",
            data={"_csrf": token, "email": "oise@ars.test", "password": PASSWORD, "next": target},
            allow_redirects=False,
        )
        assert resp.status == 303
        assert resp.headers["Location"] == "/contributions"


HOSTILE_LOGINS = [
    ("", ""),
    ("   ", "   "),
    ("a" * 5000, "b" * 5000),
    ("oise@ars.test\x00", PASSWORD + "\x00"),
    ("<script>alert(1)</script>@x", "<b>pw</b>"),
    ("' OR 1=1 --", "' OR '1'='1"),
    ("\u202eoise@ars.test", "\u200b"),
    ("😀😀", "😀"),
]


async def test_hostile_login_input_is_refused_cleanly(
    console: Console, staff_ids: dict[str, int]
) -> None:
    for email, password in HOSTILE_LOGINS:
        token = csrf_of(await (await console.client.get("/login")).text())
        resp = await console.client.post(
            "/login",
            data={"_csrf": token, "email": email, "password": password},
            allow_redirects=False,
        )
        assert resp.status == 401, email[:20]
        text = await resp.text()
        assert "<script>alert" not in text


async def test_login_replaces_this_browser_session_and_purges_stale_ones(
    console: Console, staff_ids: dict[str, int], sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await console.login("oise@ars.test") == 303
    async with sessions() as s:
        s.add(
            StaffSession(
                token_hash="f" * 64,
                staff_id=staff_ids["somme"],
                csrf_token="x",
                last_seen_at=datetime.now(UTC) - timedelta(hours=2),
            )
        )
        await s.commit()
    assert await console.login("oise@ars.test") == 303  # again, same browser
    async with sessions() as s:
        rows = list(await s.scalars(select(StaffSession)))
    assert [r.staff_id for r in rows] == [staff_ids["oise"]]  # one fresh session, no leftovers


async def test_behind_the_reverse_proxy_addresses_and_https_come_from_its_headers(
    db_settings: Settings,
    engine: AsyncEngine,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The test client connects from 127.0.0.1, as nginx does in deploy/: its headers count."""
    settings = db_settings.model_copy(update={"console_max_failed_logins": 1})
    con = await new_console(settings, engine)

    async def attempt(addr: str, email: str, password: str) -> tuple[int, list[str]]:
        page = await con.client.get("/login", headers={"X-Forwarded-Proto": "https"})
        token = csrf_of(await page.text())
        resp = await con.client.post(
            "/login",
            data={"_csrf": token, "email": email, "password": password},
            headers={
                "X-Forwarded-For": f"203.0.113.9, {addr}",
                "X-Forwarded-Proto": "https",
                "Cookie": f"cnr_login_csrf={token}",
            },
            allow_redirects=False,
        )
        return resp.status, resp.headers.getall("Set-Cookie", [])

    try:
        for i in range(4):  # the address limit (4 x 1) for 10.1.1.1
            assert (await attempt("10.1.1.1", f"ghost{i}@ars.test", "nope nope nope"))[0] == 401
        assert (await attempt("10.1.1.1", "oise@ars.test", PASSWORD))[0] == 401
        # a colleague behind the same proxy is not blocked
        status, cookies = await attempt("10.2.2.2", "oise@ars.test", PASSWORD)
        assert status == 303
        [session_cookie] = [c for c in cookies if c.startswith("cnr_console=")]
        assert "Secure" in session_cookie
    finally:
        await con.client.close()
    async with sessions() as s:
        addrs = list(await s.scalars(select(AuditEntry.remote_addr).order_by(AuditEntry.id)))
    assert addrs == ["10.1.1.1"] * 5 + ["10.2.2.2"]
