"""The staff console: an aiohttp application, server-rendered with Jinja2 (autoescaped).

``create_app(settings, sessions)`` builds it; ``cnrbot console`` serves it on its own listener.
Security: argon2 passwords, server-side sessions (token hash only), CSRF token on every form,
login throttling, scope checked on the server for every route, CSP without inline scripts.
"""

from __future__ import annotations

import base64
import csv
import io
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moderation import accounts, service
from moderation.charts import bar_chart, column_chart
from moderation.dsfr import DSFR_VERSION, add_dsfr_static
from moderation.exports import ExportUnavailable, export_formats, run_export
from moderation.highlight import KIND_LABELS, count_findings, highlight
from moderation.security import (
    AddressThrottle,
    generate_password,
    new_token,
    same_token,
    token_hash,
    verify_password,
)
from storage.models import AuditEntry, Campaign, Staff, StaffSession, Territory
from storage.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "cnr_console"
LOGIN_CSRF_COOKIE = "cnr_login_csrf"
FLASH_COOKIE = "cnr_flash"
LOGIN_FAILED = (
    "Connexion impossible : adresse ou mot de passe incorrect, ou trop de tentatives. "
    "Réessayez plus tard ou contactez un administrateur."
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
#: Static files: no session, no database, cacheable.
STATIC = ("/static/", "/dsfr/")

SETTINGS_KEY = web.AppKey("settings", Settings)
SESSIONS_KEY = web.AppKey("sessions", async_sessionmaker[AsyncSession])
THROTTLE_KEY = web.AppKey("throttle", AddressThrottle)
DB_KEY = web.RequestKey("db", AsyncSession)
STAFF_KEY = web.RequestKey("staff", Staff)
SCOPE_KEY = web.RequestKey("scope", service.Scope)
CSRF_KEY = web.RequestKey("csrf", str)
SESSION_ROW_KEY = web.RequestKey("session_row", StaffSession)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- helpers --------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    """Stored instants are UTC (SQLite gives them back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _settings(request: web.Request) -> Settings:
    return request.app[SETTINGS_KEY]


def _db(request: web.Request) -> AsyncSession:
    db: AsyncSession = request[DB_KEY]
    return db


def _scope(request: web.Request) -> service.Scope:
    scope: service.Scope = request[SCOPE_KEY]
    return scope


def _actor(request: web.Request) -> service.Actor:
    return service.Actor(_scope(request), client_address(request))


def _from_proxy(request: web.Request) -> bool:
    """The peer is a reverse proxy we may believe: loopback or a private network address.

    The console is meant to be reached only through the reverse proxy of ``deploy/`` (which
    sets X-Forwarded-For / X-Forwarded-Proto); a public peer's headers are ignored.
    """
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return peer.is_loopback or peer.is_private


def client_address(request: web.Request) -> str:
    """The client's address: the proxy's X-Forwarded-For (last hop) when from a proxy."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and _from_proxy(request):
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass
    return request.remote or "?"


def _is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "")
    return proto.strip().lower() == "https" and _from_proxy(request)


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, **kw: Any
) -> None:
    secure = _settings(request).console_secure_cookies or _is_https(request)
    response.set_cookie(
        name, value, httponly=True, samesite="Strict", secure=secure, path="/", **kw
    )


def _flash(request: web.Request, response: web.StreamResponse, message: str) -> None:
    encoded = base64.urlsafe_b64encode(message[:500].encode()).decode()
    _set_cookie(request, response, FLASH_COOKIE, encoded)


def _read_flash(request: web.Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()[:500]
    except (ValueError, UnicodeDecodeError):
        return None


def _redirect(request: web.Request, location: str, flash: str | None = None) -> web.HTTPSeeOther:
    resp = web.HTTPSeeOther(location)
    if flash:
        _flash(request, resp, flash)
    return resp


def _safe_next(raw: str | None) -> str:
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw[:500]
    return "/contributions"


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    ctx = dict(context)
    flash = _read_flash(request)
    ctx.setdefault("flash", flash)
    resp = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    if flash is not None:
        resp.del_cookie(FLASH_COOKIE, path="/")
    return resp


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text="Page introuvable.", content_type="text/plain")


def _require_admin(request: web.Request) -> None:
    if not _scope(request).is_admin:
        raise web.HTTPForbidden(text="Réservé aux administrateurs.", content_type="text/plain")


def _form_int(form: Any, name: str) -> int | None:
    raw = form.get(name)
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _form_str(form: Any, name: str) -> str:
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


# --- middlewares ----------------------------------------------------------------------------------


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith(STATIC):
        h["Cache-Control"] = "no-store"
    if _is_https(request):
        h["Strict-Transport-Security"] = "max-age=31536000"


@web.middleware
async def _session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(STATIC):
        return await handler(request)
    sessions = request.app[SESSIONS_KEY]
    async with sessions() as db:
        request[DB_KEY] = db
        if request.path == "/login":
            return await handler(request)
        staff, row = await _load_session(request, db)
        if staff is None or row is None:
            if request.method == "GET":
                target = request.path_qs if request.path != "/" else "/contributions"
                raise web.HTTPSeeOther("/login?" + urlencode({"next": target}))
            raise web.HTTPSeeOther("/login")
        request[STAFF_KEY] = staff
        request[SCOPE_KEY] = await service.scope_for(db, staff)
        request[CSRF_KEY] = row.csrf_token
        request[SESSION_ROW_KEY] = row
        if request.method not in ("GET", "HEAD"):
            form = await request.post()
            if not same_token(row.csrf_token, _form_str(form, "_csrf")):
                await db.rollback()
                raise web.HTTPForbidden(
                    text="Jeton de sécurité invalide : rechargez la page et recommencez.",
                    content_type="text/plain",
                )
        await db.commit()  # last_seen_at
        # detached: a handler's rollback must not expire what the templates read
        db.expunge(staff)
        db.expunge(row)
        return await handler(request)


async def _load_session(
    request: web.Request, db: AsyncSession
) -> tuple[Staff | None, StaffSession | None]:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None, None
    row = await db.get(StaffSession, token_hash(token))
    if row is None:
        return None, None
    now = _now()
    staff = await db.get(Staff, row.staff_id)
    if (
        staff is None
        or staff.disabled
        or now - row.last_seen_at > _settings(request).console_session_idle
    ):
        await db.delete(row)
        await db.commit()
        return None, None
    row.last_seen_at = now
    return staff, row


@web.middleware
async def _error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
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


# --- login / logout -------------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    resp = _render(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(request.query.get("next")), "error": None},
    )
    _set_cookie(request, resp, LOGIN_CSRF_COOKIE, token)
    return resp


async def login_submit(request: web.Request) -> web.StreamResponse:
    settings = _settings(request)
    db = _db(request)
    form = await request.post()
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not same_token(cookie_token, _form_str(form, "_csrf")):
        raise web.HTTPForbidden(
            text="Jeton de sécurité invalide : rechargez la page de connexion.",
            content_type="text/plain",
        )
    raw_email = _form_str(form, "email")
    password = _form_str(form, "password")
    next_url = _safe_next(_form_str(form, "next"))
    addr = client_address(request)
    now = _now()
    throttle = request.app[THROTTLE_KEY]
    try:
        email = accounts.normalise_email(raw_email)
    except accounts.AccountError:
        email = ""
    staff = await db.scalar(select(Staff).where(Staff.email == email)) if email else None
    ok = verify_password(staff.password_hash if staff else None, password)
    locked = staff is not None and staff.locked_until is not None and staff.locked_until > now
    ip_blocked = throttle.blocked(addr, now)
    if staff is None or staff.disabled or locked or ip_blocked or not ok:
        throttle.failed(addr, now)
        reason = (
            "unknown"
            if staff is None
            else "disabled"
            if staff.disabled
            else "locked"
            if locked
            else "throttled"
            if ip_blocked
            else "password"
        )
        if staff is not None and not ok:
            staff.failed_logins += 1
            if staff.failed_logins >= settings.console_max_failed_logins:
                staff.locked_until = now + settings.console_lockout
                staff.failed_logins = 0
                reason = "password, locked"
        await service.audit(
            db,
            actor=(email or "?")[:254],
            staff_id=staff.id if staff else None,
            action="login_failed",
            target=None,
            after={"reason": reason},
            remote_addr=addr,
            now=now,
        )
        await db.commit()
        resp = _render(
            request,
            "login.html",
            {"login_csrf": cookie_token, "next": next_url, "error": LOGIN_FAILED, "email": email},
            status=401,
        )
        return resp
    throttle.succeeded(addr)
    previous = request.cookies.get(SESSION_COOKIE)
    stale = StaffSession.last_seen_at < now - settings.console_session_idle
    if previous and len(previous) <= 200:
        stale = stale | (StaffSession.token_hash == token_hash(previous))
    await db.execute(delete(StaffSession).where(stale))
    staff.failed_logins = 0
    staff.locked_until = None
    staff.last_login_at = now
    token = new_token()
    db.add(
        StaffSession(
            token_hash=token_hash(token),
            staff_id=staff.id,
            csrf_token=new_token(),
            created_at=now,
            last_seen_at=now,
        )
    )
    await service.audit(
        db, actor=staff.email, staff_id=staff.id, action="login", remote_addr=addr, now=now
    )
    await db.commit()
    resp = web.HTTPSeeOther(next_url)
    _set_cookie(request, resp, SESSION_COOKIE, token)
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    db = _db(request)
    staff: Staff = request[STAFF_KEY]
    row: StaffSession = request[SESSION_ROW_KEY]
    await db.execute(delete(StaffSession).where(StaffSession.token_hash == row.token_hash))
    await service.audit(
        db,
        actor=staff.email,
        staff_id=staff.id,
        action="logout",
        remote_addr=client_address(request),
    )
    await db.commit()
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


# --- the queue ------------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/contributions")


async def queue(request: web.Request) -> web.Response:
    db = _db(request)
    scope = _scope(request)
    filters = service.QueueFilters.parse(request.query, zone=_settings(request).timezone)
    page = await service.queue_page(db, scope, filters, _settings(request).console_page_size)
    territories, themes, languages = await service.campaign_choices(db, scope)
    return _render(
        request,
        "queue.html",
        {
            "page": page,
            "filters": filters,
            "qs": urlencode(filters.query()),
            "prev_qs": urlencode(filters.query(page=page.page - 1)),
            "next_qs": urlencode(filters.query(page=page.page + 1)),
            "territories": territories,
            "themes": themes,
            "languages": languages,
            "statuses": service.STATUSES,
            "reasons": service.REJECT_REASONS,
            "channels": service.CHANNELS,
        },
    )


async def detail(
    request: web.Request,
    *,
    message: str | None = None,
    status: int = 200,
    form_values: dict[str, str] | None = None,
) -> web.Response:
    db = _db(request)
    scope = _scope(request)
    ref = request.match_info["ref"]
    filters = service.QueueFilters.parse(
        request.query if request.method == "GET" else _filter_params(await request.post()),
        zone=_settings(request).timezone,
    )
    c = await service.get_contribution(db, scope, ref)
    if c is None:
        raise _not_found()
    prev_ref, next_ref = await service.neighbours(db, scope, filters, c)
    all_territories, themes = await service.territories_and_themes(db, scope, c.campaign_id)
    moderator = None
    if c.moderated_by is not None:
        moderator = await db.scalar(select(Staff.email).where(Staff.id == c.moderated_by))
    texts = {f: getattr(c, f) for f in service.TEXT_FIELDS}
    campaign = await db.get_one(Campaign, c.campaign_id)
    profiles = {
        str(p.get("code")): str(p.get("label_fr") or p.get("code"))
        for p in (campaign.spec or {}).get("profiles") or []
        if isinstance(p, dict)
    }
    return _render(
        request,
        "detail.html",
        {
            "c": c,
            "texts": texts,
            "highlighted": {f: highlight(v) for f, v in texts.items()},
            "pii_count": sum(count_findings(v) for v in texts.values()),
            "labels": service.TEXT_LABELS,
            "kinds": KIND_LABELS,
            "filters": filters,
            "filter_fields": filters.query(),
            "qs": urlencode(filters.query()),
            "prev_ref": prev_ref,
            "next_ref": next_ref,
            "territories": all_territories,
            "themes": themes,
            "statuses": service.STATUSES,
            "reasons": service.REJECT_REASONS,
            "channels": service.CHANNELS,
            "moderator": moderator,
            "profile_label": profiles.get(c.profile or "", c.profile),
            "message": message,
            "form_values": form_values or {},
            "show_originals": scope.is_admin and bool(c.originals),
        },
        status=status,
    )


_FILTER_NAMES = (
    "territory",
    "theme",
    "status",
    "language",
    "channel",
    "since",
    "until",
    "q",
    "page",
)


def _filter_params(form: Any) -> dict[str, str]:
    return {
        k[2:]: v
        for k, v in form.items()
        if k.startswith("f_") and k[2:] in _FILTER_NAMES and isinstance(v, str)
    }


async def _after_action(
    request: web.Request, res: service.ActionResult, form: Any
) -> web.StreamResponse:
    """Success: go to the next item of the queue; otherwise show the item with the message."""
    db = _db(request)
    if res.status == "ok":
        await db.commit()
        filters = service.QueueFilters.parse(_filter_params(form), zone=_settings(request).timezone)
        c = res.contribution
        next_ref = None
        if c is not None:
            _, next_ref = await service.neighbours(db, _scope(request), filters, c)
        qs = urlencode(filters.query())
        if next_ref:
            raise _redirect(request, f"/contributions/{next_ref}?{qs}", res.message)
        raise _redirect(request, f"/contributions?{qs}", res.message + " File terminée.")
    await db.rollback()
    if res.status == "not_found":
        raise _not_found()
    status = 409 if res.status == "conflict" else 422
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf"}
    return await detail(request, message=res.message, status=status, form_values=values)


async def act(request: web.Request) -> web.StreamResponse:
    db = _db(request)
    settings = _settings(request)
    ref = request.match_info["ref"]
    action = request.match_info["action"]
    form = await request.post()
    version = _form_int(form, "version")
    actor = _actor(request)
    if action == "approve":
        res = await service.approve(db, settings, actor, ref, version)
    elif action == "reject":
        res = await service.reject(
            db, settings, actor, ref, version, _form_str(form, "reason"), _form_str(form, "note")
        )
    elif action == "edit":
        texts = {f: _form_str(form, f) for f in service.TEXT_FIELDS if f in form}
        res = await service.edit_texts(db, settings, actor, ref, version, texts)
    elif action == "reclassify":
        res = await service.reclassify(
            db, actor, ref, version, _form_int(form, "theme"), _form_int(form, "territory")
        )
    elif action == "duplicate":
        res = await service.mark_duplicate(db, actor, ref, version, _form_str(form, "of"))
    else:
        raise _not_found()
    return await _after_action(request, res, form)


async def bulk(request: web.Request) -> web.StreamResponse:
    db = _db(request)
    settings = _settings(request)
    form = await request.post()
    action = _form_str(form, "bulk_action")
    selected = [v for v in form.getall("sel", []) if isinstance(v, str)][:500]
    qs = urlencode(service.QueueFilters.parse(_filter_params(form)).query())  # (days as typed)
    if action not in ("approve", "reject"):
        raise _redirect(request, f"/contributions?{qs}", "Choisissez une action groupée.")
    if not selected:
        raise _redirect(request, f"/contributions?{qs}", "Aucune contribution sélectionnée.")
    reason = _form_str(form, "reason")
    if action == "reject" and reason not in service.REJECT_REASONS:
        raise _redirect(request, f"/contributions?{qs}", "Choisissez un motif de rejet.")
    done: list[str] = []
    handled: list[str] = []
    other: list[str] = []
    for item in selected:
        ref, _, raw_version = item.partition(":")
        version = int(raw_version) if raw_version.isdigit() and len(raw_version) < 12 else None
        if action == "approve":
            res = await service.approve(db, settings, _actor(request), ref, version)
        else:
            res = await service.reject(
                db, settings, _actor(request), ref, version, reason, _form_str(form, "note")
            )
        if res.status == "ok":
            await db.commit()
            done.append(ref)
        else:
            await db.rollback()
            (handled if res.status == "conflict" else other).append(ref[:64])
    verb = "approuvée(s)" if action == "approve" else "rejetée(s)"
    parts = [f"{len(done)} contribution(s) {verb}."]
    if handled:
        parts.append(f"Déjà traitée(s) par ailleurs, non modifiée(s) : {', '.join(handled)}.")
    if other:
        parts.append(f"Introuvable(s) ou invalide(s) : {len(other)}.")
    raise _redirect(request, f"/contributions?{qs}", " ".join(parts))


# --- dashboard ------------------------------------------------------------------------------------


async def dashboard_view(request: web.Request) -> web.Response:
    db = _db(request)
    raw = request.query.get("campaign", "")
    campaign_id = int(raw) if raw.isdigit() and len(raw) < 12 else None
    data = await service.dashboard(
        db, _scope(request), campaign_id, zone=_settings(request).timezone
    )
    charts = {}
    if data is not None:
        charts["per_day"] = column_chart(
            [(d.strftime("%d/%m/%Y"), n) for d, n in data.per_day],
            title="Contributions reçues par jour",
        )
        charts["per_theme"] = bar_chart(
            [(f"{t.code} — {t.label_fr}", n) for t, n in data.per_theme],
            title="Contributions par thème (en rouge : aucune)",
        )
        charts["per_status"] = bar_chart(
            [(service.STATUSES[s], n) for s, n in data.by_status.items()],
            title="Contributions par statut",
            highlight_zero=False,
        )
    return _render(
        request, "dashboard.html", {"d": data, "charts": charts, "statuses": service.STATUSES}
    )


# --- exports --------------------------------------------------------------------------------------


async def exports_form(request: web.Request) -> web.Response:
    territories, _, _ = await service.campaign_choices(_db(request), _scope(request))
    return _render(request, "exports.html", _exports_context(request, territories, None))


def _exports_context(
    request: web.Request, territories: list[Territory], error: str | None
) -> dict[str, Any]:
    return {
        "territories": territories,
        "formats": export_formats(),
        "error": error,
        "region": _scope(request).is_admin,
    }


async def exports_submit(request: web.Request) -> web.StreamResponse:
    db = _db(request)
    scope = _scope(request)
    form = await request.post()
    territories, _, _ = await service.campaign_choices(db, scope)
    allowed = {str(t.id): t for t in territories}
    raw = _form_str(form, "territory")
    fmt = _form_str(form, "format")

    def fail(message: str, status: int) -> web.Response:
        return _render(
            request, "exports.html", _exports_context(request, territories, message), status=status
        )

    territory: Territory | None
    if scope.is_admin and raw.startswith("region:") and raw[7:].isdigit() and len(raw) < 20:
        campaign = await db.get(Campaign, int(raw[7:]))
        territory = None
        if campaign is None:
            return fail("Campagne inconnue.", 422)
    elif raw in allowed:
        territory = allowed[raw]
        campaign = await db.get_one(Campaign, territory.campaign_id)
    else:
        return fail("Choisissez un territoire de votre périmètre.", 422)
    if fmt not in export_formats():
        return fail("Choisissez un format proposé.", 422)
    target = territory.code if territory is not None else f"{campaign.code}:région"
    try:
        filename, content_type, body = await run_export(
            _settings(request), campaign, territory, fmt
        )
    except ExportUnavailable as exc:
        return fail(str(exc), 409)
    await service.audit(
        db,
        actor=scope.email,
        staff_id=scope.staff_id,
        action="export",
        target=target,
        after={"format": fmt, "campaign": campaign.code, "scope": target, "bytes": len(body)},
        remote_addr=client_address(request),
    )
    await db.commit()
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:120]
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8" if fmt in ("md", "csv") else None,
        headers={"Content-Disposition": f'attachment; filename="{safe_name}"'},
    )


# --- audit log (admins) ---------------------------------------------------------------------------


async def audit_view(request: web.Request) -> web.Response:
    _require_admin(request)
    filters = service.AuditFilters.parse(request.query, zone=_settings(request).timezone)
    rows, total, page, pages = await service.audit_page(
        _db(request), filters, _settings(request).console_page_size
    )
    actions = sorted(
        a for a in await _db(request).scalars(select(AuditEntry.action).distinct()) if a
    )
    return _render(
        request,
        "audit.html",
        {
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "filters": filters,
            "actions": actions,
            "qs": urlencode(filters.query(page=1)),
            "prev_qs": urlencode(filters.query(page=page - 1)),
            "next_qs": urlencode(filters.query(page=page + 1)),
        },
    )


def neutralise(value: object) -> str:
    """A spreadsheet cell that cannot run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    if text and text[0] in ("=", "+", "-", "@", "\t", "\r", "\n"):
        return "'" + text
    return text


async def audit_csv(request: web.Request) -> web.Response:
    _require_admin(request)
    import json

    db = _db(request)
    filters = service.AuditFilters.parse(request.query, zone=_settings(request).timezone)
    rows = await service.audit_rows(db, filters)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "at", "actor", "action", "target", "before", "after", "remote_addr"])
    for r in rows:
        writer.writerow(
            [
                neutralise(v)
                for v in (
                    r.id,
                    r.at.isoformat(),
                    r.actor,
                    r.action,
                    r.target,
                    json.dumps(r.before, ensure_ascii=False) if r.before is not None else "",
                    json.dumps(r.after, ensure_ascii=False) if r.after is not None else "",
                    r.remote_addr,
                )
            ]
        )
    scope = _scope(request)
    await service.audit(
        db,
        actor=scope.email,
        staff_id=scope.staff_id,
        action="export_audit",
        after={"rows": len(rows), **filters.query()},
        remote_addr=client_address(request),
    )
    await db.commit()
    return web.Response(
        body=("\ufeff" + buf.getvalue()).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="journal-audit.csv"'},
    )


# --- staff (admins) -------------------------------------------------------------------------------


async def staff_view(
    request: web.Request,
    *,
    error: str | None = None,
    secret: tuple[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    _require_admin(request)
    db = _db(request)
    territories = list(
        await db.scalars(select(Territory).order_by(Territory.campaign_id, Territory.position))
    )
    return _render(
        request,
        "staff.html",
        {
            "staff": await accounts.list_staff(db),
            "territories": territories,
            "roles": accounts.ROLES,
            "error": error,
            "secret": secret,
            "now": _now(),
        },
        status=status,
    )


async def staff_get(request: web.Request) -> web.Response:
    return await staff_view(request)


async def staff_add(request: web.Request) -> web.Response:
    _require_admin(request)
    db = _db(request)
    form = await request.post()
    ids = [
        int(v)
        for v in form.getall("territories", [])
        if isinstance(v, str) and v.isdigit() and len(v) < 12
    ]
    territories = list(await db.scalars(select(Territory).where(Territory.id.in_(ids))))
    password = generate_password()
    scope = _scope(request)
    try:
        staff = await accounts.add_staff(
            db, _form_str(form, "email"), _form_str(form, "role"), password, territories
        )
    except accounts.AccountError as exc:
        await db.rollback()
        return await staff_view(request, error=str(exc), status=422)
    await service.audit(
        db,
        actor=scope.email,
        staff_id=scope.staff_id,
        action="staff_add",
        target=staff.email,
        after={"role": staff.role, "territories": sorted(t.code for t in territories)},
        remote_addr=client_address(request),
    )
    await db.commit()
    return await staff_view(request, secret=(staff.email, password))


async def staff_change(request: web.Request) -> web.Response:
    _require_admin(request)
    db = _db(request)
    scope = _scope(request)
    what = request.match_info["what"]
    raw_id = request.match_info["id"]
    staff = await db.get(Staff, int(raw_id)) if raw_id.isdigit() and len(raw_id) < 12 else None
    if staff is None:
        raise _not_found()
    secret = None
    before: dict[str, Any] | None
    after: dict[str, Any]
    if what in ("disable", "enable"):
        if staff.id == scope.staff_id:
            return await staff_view(
                request, error="Vous ne pouvez pas désactiver votre propre compte.", status=422
            )
        before = {"disabled": staff.disabled}
        await accounts.set_disabled(db, staff, what == "disable")
        after = {"disabled": staff.disabled}
    elif what == "reset":
        if staff.id == scope.staff_id:
            return await staff_view(
                request,
                error="Changez votre propre mot de passe avec « cnrbot staff reset-password ».",
                status=422,
            )
        password = generate_password()
        await accounts.reset_password(db, staff, password)
        before, after = None, {"password": "reset"}
        secret = (staff.email, password)
    elif what == "unlock":
        before = {"locked_until": staff.locked_until.isoformat() if staff.locked_until else None}
        staff.locked_until = None
        staff.failed_logins = 0
        after = {"locked_until": None}
    else:
        raise _not_found()
    await service.audit(
        db,
        actor=scope.email,
        staff_id=scope.staff_id,
        action=f"staff_{what}",
        target=staff.email,
        before=before,
        after=after,
        remote_addr=client_address(request),
    )
    await db.commit()
    return await staff_view(request, secret=secret)


async def help_page(request: web.Request) -> web.Response:
    return _render(request, "help.html", {})


# --- the application ------------------------------------------------------------------------------


def create_app(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    """The console application (no listener: see ``cnrbot console``)."""
    app = web.Application(
        middlewares=[_session_middleware, _error_pages], client_max_size=1024 * 1024
    )
    app[SETTINGS_KEY] = settings
    app[SESSIONS_KEY] = sessions
    # Per-address limit: several colleagues may share one address, so more than per account.
    app[THROTTLE_KEY] = AddressThrottle(
        settings.console_max_failed_logins * 4, settings.console_lockout
    )
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        context_processors=[_context],
        undefined=jinja2.StrictUndefined,
    )
    zone = ZoneInfo(settings.timezone)  # times shown as staff live them (CNR_TIMEZONE)
    env.filters["dt"] = lambda v: (
        _as_utc(v).astimezone(zone).strftime("%d/%m/%Y %H:%M") if v else ""
    )
    env.filters["d"] = lambda v: v.strftime("%d/%m/%Y") if v else ""
    env.filters["other_lang"] = other_lang
    env.globals["urlencode"] = urlencode
    app.on_response_prepare.append(_security_headers)
    app.on_startup.append(_startup)
    r = app.router
    r.add_get("/login", login_form)
    r.add_post("/login", login_submit)
    r.add_post("/logout", logout)
    r.add_get("/", index)
    r.add_get("/contributions", queue)
    r.add_post("/contributions/bulk", bulk)
    r.add_get("/contributions/{ref}", detail)
    r.add_post("/contributions/{ref}/{action}", act)
    r.add_get("/dashboard", dashboard_view)
    r.add_get("/exports", exports_form)
    r.add_post("/exports", exports_submit)
    r.add_get("/audit", audit_view)
    r.add_get("/audit.csv", audit_csv)
    r.add_get("/staff", staff_get)
    r.add_post("/staff", staff_add)
    r.add_post("/staff/{id}/{what}", staff_change)
    r.add_get("/aide", help_page)
    r.add_static("/static/", HERE / "static", append_version=False)
    add_dsfr_static(app)
    return app


async def _startup(app: web.Application) -> None:
    sessions = app[SESSIONS_KEY]
    bind = sessions.kw.get("bind")
    if bind is not None and service.install_sqlite_casefold(bind):
        await bind.dispose()


async def _context(request: web.Request) -> dict[str, Any]:
    staff = request.get(STAFF_KEY)
    return {
        "me": staff,
        "scope": request.get(SCOPE_KEY),
        "csrf": request.get(CSRF_KEY, ""),
        "path": request.path,
        "dsfr_version": DSFR_VERSION,
    }
