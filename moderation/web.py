"""What every route of the console shares: the keys of what is stored on the application and
on a request, cookies and flash messages, page rendering, form reading, the security headers
and the error pages. The routes are in :mod:`moderation.routes`, one module per page family."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from yarl import URL

from bot.core.http import client_address, is_https
from moderation.dsfr import DSFR_VERSION
from moderation.security import LoginThrottle
from moderation.services.audit import By
from moderation.services.scope import Actor, Scope
from storage.settings import Settings

if TYPE_CHECKING:
    from storage.models import Staff, StaffSession

HERE = Path(__file__).parent
SESSION_COOKIE = "cnr_console"
LOGIN_CSRF_COOKIE = "cnr_login_csrf"
FLASH_COOKIE = "cnr_flash"
#: A confirmation quotes the citizen's notice (up to ~700 characters): well under a cookie's 4 KB.
FLASH_MAX_CHARS = 1200
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
#: Static files: no session, no database, cacheable.
STATIC = ("/static/", "/dsfr/")

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", AsyncEngine)
SESSIONS_KEY = web.AppKey("sessions", async_sessionmaker[AsyncSession])
THROTTLE_KEY = web.AppKey("throttle", LoginThrottle)
DB_KEY = web.RequestKey("db", AsyncSession)
STAFF_KEY: web.RequestKey[Staff] = web.RequestKey("staff")
SCOPE_KEY = web.RequestKey("scope", Scope)
CSRF_KEY = web.RequestKey("csrf", str)
SESSION_ROW_KEY: web.RequestKey[StaffSession] = web.RequestKey("session_row")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Stored instants are UTC (SQLite gives them back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS_KEY]


def db_of(request: web.Request) -> AsyncSession:
    db: AsyncSession = request[DB_KEY]
    return db


def scope_of(request: web.Request) -> Scope:
    scope: Scope = request[SCOPE_KEY]
    return scope


def actor_of(request: web.Request) -> Actor:
    """The signed-in staff member acting on contributions."""
    return Actor(scope_of(request), client_address(request))


def by_of(request: web.Request) -> By:
    """The signed-in staff member, as the audit journal names them."""
    scope = scope_of(request)
    return By(scope.email, scope.staff_id, client_address(request))


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, **kw: Any
) -> None:
    secure = settings_of(request).console_secure_cookies or is_https(request)
    response.set_cookie(
        name, value, httponly=True, samesite="Strict", secure=secure, path="/", **kw
    )


def _flash(request: web.Request, response: web.StreamResponse, message: str) -> None:
    encoded = base64.urlsafe_b64encode(message[:FLASH_MAX_CHARS].encode()).decode()
    set_cookie(request, response, FLASH_COOKIE, encoded)


def _read_flash(request: web.Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()[:FLASH_MAX_CHARS]
    except (ValueError, UnicodeDecodeError):
        return None


def redirect(request: web.Request, location: str, flash: str | None = None) -> web.HTTPSeeOther:
    resp = web.HTTPSeeOther(location)
    if flash:
        _flash(request, resp, flash)
    return resp


def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    ctx = dict(context)
    flash = _read_flash(request)
    ctx.setdefault("flash", flash)
    resp = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if flash is not None:
        resp.del_cookie(FLASH_COOKIE, path="/")
    return resp


def not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text="Page introuvable.", content_type="text/plain")


def require_admin(request: web.Request) -> None:
    if not scope_of(request).is_admin:
        raise web.HTTPForbidden(text="Réservé aux administrateurs.", content_type="text/plain")


def form_int(form: Any, name: str) -> int | None:
    raw = form.get(name)
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def form_str(form: Any, name: str) -> str:
    raw = form.get(name, "")
    return raw if isinstance(raw, str) else ""


_LANG_TAG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")


def other_lang(language: str | None) -> str:
    """The ``lang`` attribute of a citizen's text when it is not French (RGAA 8.7), else "".

    Easy-to-read French (``falc``) is French; anything that is not a language tag is left out.
    """
    code = (language or "").strip()
    if code == "falc" or code.split("-")[0] == "fr" or not _LANG_TAG.fullmatch(code):
        return ""
    return code


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith(STATIC):
        h["Cache-Control"] = "no-store"
    if is_https(request):
        h["Strict-Transport-Security"] = "max-age=31536000"


#: The answer to a state-changing request sent by another site's page.
CROSS_ORIGIN = (
    "Requête refusée : elle vient d'une autre page que la console (en-tête Origin). "
    "Ouvrez la console à son adresse habituelle, rechargez la page et recommencez."
)


def same_origin(request: web.Request) -> bool:
    """The request's ``Origin`` is the console's own (scheme, host and port it was reached at,
    through a believed proxy), or withheld: then the CSRF token alone decides.

    Withheld is no header, or ``null``: under the console's own ``Referrer-Policy:
    no-referrer`` a browser sends ``Origin: null`` with the console's forms."""
    given = request.headers.get("Origin")
    if given is None or given.strip() == "null":
        return True
    try:
        own = URL.build(scheme="https" if is_https(request) else "http", authority=request.host)
        origin = URL(given.strip())
    except (ValueError, TypeError):
        return False
    return (
        origin.is_absolute()
        and origin.raw_path in ("", "/")
        and not origin.raw_query_string
        and origin.user is None
        and (origin.scheme.lower(), (origin.host or "").lower(), origin.port)
        == (own.scheme, (own.host or "").lower(), own.port)
    )


async def cross_origin_refusal(request: web.Request) -> web.Response:
    """403 with a page that says what happened (answered before any session is opened, so
    before the template context is: it is given here)."""
    context = {**await template_context(request), "status": 403, "message": CROSS_ORIGIN}
    context["flash"] = None
    return aiohttp_jinja2.render_template("error.html", request, context, status=403)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (403, 404, 405, 413) and STAFF_KEY in request:
            text = exc.text if exc.status != 404 else "Page introuvable."
            return aiohttp_jinja2.render_template(
                "error.html",
                request,
                {"status": exc.status, "message": text or exc.reason, "flash": None},
                status=exc.status,
            )
        raise


async def template_context(request: web.Request) -> dict[str, Any]:
    staff = request.get(STAFF_KEY)
    return {
        "me": staff,
        "scope": request.get(SCOPE_KEY),
        "csrf": request.get(CSRF_KEY, ""),
        "path": request.path,
        "dsfr_version": DSFR_VERSION,
    }
