"""Signing in and out, and the middleware that opens every page's database session and checks
its staff session, and for a state-changing request its ``Origin`` and CSRF token (the lockouts
are in :mod:`moderation.services.accounts`)."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlencode

from aiohttp import web

from bot.core.http import client_address
from moderation.security import new_token, same_token
from moderation.services import accounts
from moderation.services.scope import scope_for
from moderation.web import (
    CSRF_KEY,
    DB_KEY,
    LOGIN_CSRF_COOKIE,
    SCOPE_KEY,
    SESSION_COOKIE,
    SESSION_ROW_KEY,
    SESSIONS_KEY,
    STAFF_KEY,
    STATIC,
    THROTTLE_KEY,
    Handler,
    cross_origin_refusal,
    db_of,
    form_str,
    now,
    render,
    same_origin,
    set_cookie,
    settings_of,
)

if TYPE_CHECKING:
    from storage.models import Staff, StaffSession

LOGIN_FAILED = (
    "Connexion impossible : adresse ou mot de passe incorrect, ou trop de tentatives. "
    "Réessayez plus tard ou contactez un administrateur."
)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(STATIC):
        return await handler(request)
    if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin(request):
        return await cross_origin_refusal(request)  # before the CSRF token: another site's page
    sessions = request.app[SESSIONS_KEY]
    async with sessions() as db:
        request[DB_KEY] = db
        if request.path == "/login":
            return await handler(request)
        staff, row = await accounts.load_session(
            db,
            request.cookies.get(SESSION_COOKIE),
            settings_of(request).console_session_idle,
            now(),
        )
        if staff is None or row is None:
            if request.method == "GET":
                target = request.path_qs if request.path != "/" else HOME
                raise web.HTTPSeeOther("/login?" + urlencode({"next": target}))
            raise web.HTTPSeeOther("/login")
        request[STAFF_KEY] = staff
        request[SCOPE_KEY] = await scope_for(db, staff)
        request[CSRF_KEY] = row.csrf_token
        request[SESSION_ROW_KEY] = row
        if request.method not in ("GET", "HEAD"):
            form = await request.post()
            if not same_token(row.csrf_token, form_str(form, "_csrf")):
                await db.rollback()
                raise web.HTTPForbidden(
                    text="Jeton de sécurité invalide : rechargez la page et recommencez.",
                    content_type="text/plain",
                )
        await accounts.commit_seen(db, staff, row)  # last_seen_at; detached for the templates
        return await handler(request)


#: Where a sign-in goes when ``next`` is missing or refused.
HOME = "/contributions"
#: A same-site absolute path, as the console writes them: printable ASCII without blanks,
#: backslashes or a fragment, not starting with "//" (another site, for a browser).
_PCHARS = r"A-Za-z0-9\-._~!$&'()*+,;=:@%/"
_NEXT = re.compile(rf"/(?![/\\])[{_PCHARS}]*(?:\?[{_PCHARS}?]*)?")


def _safe_next(raw: str | None) -> str:
    """``raw`` when it is a same-site absolute path (the page a session-less visit was sent
    away from), else the queue. Control characters and blanks are refused, not stripped
    (a browser drops a tab: ``/%09/evil.example/`` would go to ``//evil.example/``), and so
    is a path whose percent-decoding starts like another site's or hides one of them."""
    if not raw or len(raw) > 500 or not _NEXT.fullmatch(raw):
        return HOME
    path = unquote(raw.partition("?")[0])
    if path.startswith(("//", "/\\")) or any(
        c == "\\" or c.isspace() or unicodedata.category(c)[0] in "CZ" for c in path
    ):
        return HOME
    return raw


async def login_form(request: web.Request) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    resp = render(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(request.query.get("next")), "error": None},
    )
    set_cookie(request, resp, LOGIN_CSRF_COOKIE, token)
    return resp


async def login_submit(request: web.Request) -> web.StreamResponse:
    db = db_of(request)
    form = await request.post()
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not same_token(cookie_token, form_str(form, "_csrf")):
        raise web.HTTPForbidden(
            text="Jeton de sécurité invalide : rechargez la page de connexion.",
            content_type="text/plain",
        )
    next_url = _safe_next(form_str(form, "next"))
    outcome = await accounts.sign_in(
        db,
        settings_of(request),
        request.app[THROTTLE_KEY],
        form_str(form, "email"),
        form_str(form, "password"),
        addr=client_address(request),
        now=now(),
        previous_token=request.cookies.get(SESSION_COOKIE),
    )
    await db.commit()
    if outcome.token is None:
        return render(
            request,
            "login.html",
            {
                "login_csrf": cookie_token,
                "next": next_url,
                "error": LOGIN_FAILED,
                "email": outcome.email,
            },
            status=401,
        )
    resp = web.HTTPSeeOther(next_url)
    set_cookie(request, resp, SESSION_COOKIE, outcome.token)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    db = db_of(request)
    staff: Staff = request[STAFF_KEY]
    row: StaffSession = request[SESSION_ROW_KEY]
    await accounts.sign_out(db, staff, row, client_address(request))
    await db.commit()
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


def setup(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
