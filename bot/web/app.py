"""The citizen web chat (aiohttp + Jinja2): the conversation in any browser, without an
account, with or without JavaScript.

* ``GET /``: the conversation as it stands (``?territoire=oise`` from a poster preselects the
  territory, as Telegram's ``start`` parameter; ``?r=<message id>`` shows what a message just
  sent answered). A new visitor gets a random token in an ``HttpOnly``, ``SameSite=Lax`` cookie;
  nothing is stored about them until they accept the privacy notice.
* ``POST /message``: one message (a button, a text, a command of the menu), carrying a
  client-generated id; answered with a redirect to ``/?r=<id>`` (POST, redirect, GET), or with
  JSON holding the HTML of the replies and of the next step's controls (``chat.js``).
* ``GET /mes-donnees``: everything stored about the cookie's citizen, as a JSON file to
  download (computed at each request, never stored; a page saying so when nothing is).
* ``GET /accessibilite``: the accessibility statement (RGAA: « non conforme », no audit yet),
  and ``GET /donnees-personnelles``: the privacy notice the chat's "privacy" command gives;
  plain pages in the visitor's language, linked from the footer of every page, read only (no
  cookie set, nothing stored).
* ``GET /altcha/challenge``: a proof-of-work challenge (a citizen's first contribution).
* ``GET /healthz``, ``GET /readyz`` (``bot.core.health``).

Who a citizen is: the keyed HMAC of ``web:`` + their cookie token (``bot.web.channel``). No IP
address nor user agent is stored: the rate limits count keyed hashes of addresses
(``storage.ratelimit``), forgotten after their window.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import metrics
from bot.core.health import add_health_routes
from bot.core.http import client_address, trust_proxies
from bot.core.processor import DB_ERRORS
from bot.web import render
from bot.web.channel import Answer, WebChannel
from bot.web.guard import Guard
from bot.web.proof_of_work import ProofOfWork
from dialogs.commands import territory_from_link
from dialogs.messages import html_lang, normalise_lang, t
from dialogs.model import CampaignView
from dialogs.prompts import controller_name, privacy_notice
from dialogs.validation import SHORT_INPUT_MAX_CHARS
from moderation.dsfr import DSFR_VERSION, add_dsfr_static
from storage.ratelimit import Verdict, create_limiter
from storage.service import DialogService
from storage.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

COOKIE = "cnr_id"
COOKIE_MAX_AGE = int(timedelta(days=180).total_seconds())
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,48}")
#: A message's id in the inbox: the form's id, and the button's digest (``_button_id``).
RECORDED_ID = re.compile(r"[A-Za-z0-9_-]{8,48}(\.[0-9a-f]{10})?")
#: Origins allowed in CSP frame-ancestors (anything else in the setting is ignored).
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")
#: What a form field may hold besides the text (choice ids, commands, states).
FIELD_MAX = SHORT_INPUT_MAX_CHARS
#: The accessibility statement's recourse, the Défenseur des droits (shown, never fetched).
RECOURSE_FORM = "https://formulaire.defenseurdesdroits.fr/"
RECOURSE_ADDRESS = "Défenseur des droits, Libre réponse 71120, 75342 Paris CEDEX 07"
#: A contact of the campaign file (its data-protection officer's) that becomes a link: an
#: e-mail address or a web page; anything else is shown as text only.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
WEB_PAGE = re.compile(ORIGIN.pattern + r"(/[^\s<>\"']*)?")

SETTINGS = web.AppKey("settings", Settings)
CHANNEL = web.AppKey("channel", WebChannel)
GUARD = web.AppKey("guard", Guard)
POW = web.AppKey("pow", ProofOfWork)
CAMPAIGN = web.AppKey("campaign", dict[str, str])
#: The rate limits' and proof-of-work's clock (a fixed one in tests: windows then never end
#: in the middle of a test).
Clock = Callable[[], datetime]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")


def _asset_version() -> str:
    digest = hashlib.sha256()
    for name in ("chat.js", "chat.css"):
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:10]


ASSET_VERSION = _asset_version()


# --- application ------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    service: DialogService | None = None,
    maintenance_interval: float | None = None,
    today: date | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """The web chat. Its resources (the dialog service and its database engine, the channel,
    the rate limiter) are opened and closed with the application (``cleanup_ctx``); a
    ``service`` given is used and left open."""
    app = web.Application(
        client_max_size=settings.web_max_body_bytes,
        middlewares=[_errors, _headers],
        handler_args={"max_field_size": 8190},
    )
    app[SETTINGS] = settings
    trust_proxies(app, settings.trusted_proxies)
    app[CAMPAIGN] = {}
    app[CLOCK] = clock or _utcnow
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # packaged templates: no file check at every page
    )
    env.filters["paragraphs"] = render.paragraphs  # a message as the chat shows it

    async def resources(app: web.Application) -> AsyncIterator[None]:
        own = service is None
        svc = service or await DialogService.open(settings)
        channel = WebChannel(settings, svc, maintenance_interval=maintenance_interval, today=today)
        limiter = create_limiter(settings, svc.engine)
        pow_ = ProofOfWork(settings, limiter)
        app[CHANNEL] = channel
        app[POW] = pow_
        app[GUARD] = Guard(settings, limiter, pow_)
        await channel.start()
        try:
            yield
        finally:
            await channel.stop()
            if own:
                await svc.close()

    app.cleanup_ctx.append(resources)
    add_dsfr_static(app)
    app.router.add_static("/static", STATIC_DIR, follow_symlinks=False)
    app.router.add_get("/", page)
    app.router.add_post("/message", message)
    app.router.add_get("/mes-donnees", my_data)
    app.router.add_get("/accessibilite", accessibility)
    app.router.add_get("/donnees-personnelles", personal_data)
    app.router.add_get("/altcha/challenge", challenge)
    add_health_routes(app, _engine)
    return app


def _engine(app: web.Application) -> AsyncEngine | None:
    """The web chat's database engine (None until the application has started)."""
    return app[CHANNEL].service.engine if CHANNEL in app else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- middlewares ------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def csp(settings: Settings) -> str:
    return _csp(settings.web_frame_ancestors)


@functools.lru_cache(maxsize=8)
def _csp(frame_ancestors: str) -> str:
    """The policy for the setting's frame ancestors (made once: it is on every response)."""
    ancestors = [o for o in frame_ancestors.split() if ORIGIN.fullmatch(o)]
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; worker-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {' '.join(ancestors) if ancestors else chr(39) + 'none' + chr(39)}"
    )


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    h = response.headers
    h["Content-Security-Policy"] = _csp(request.app[SETTINGS].web_frame_ancestors)
    h["X-Content-Type-Options"] = "nosniff"
    # Not "no-referrer": with it, browsers send "Origin: null" on a same-origin form POST,
    # which _same_origin must refuse (the pages without JavaScript could not send anything).
    # "same-origin" still tells other sites nothing.
    h["Referrer-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith(("/static/", "/dsfr/")):
        h["Cache-Control"] = "no-store"
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error a citizen can meet is a page in their language (or JSON for the chat
    script); errors of the system are logged by class, never with a text or an identity."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].text_max_chars
        return _problem(request, 413, t(_lang(request), "web.too_large", max=limit))
    except web.HTTPNotFound:
        return _problem(request, 404, t(_lang(request), "web.not_found"))
    except web.HTTPMethodNotAllowed:
        return _problem(request, 405, t(_lang(request), "web.bad_form"))
    except web.HTTPException:
        raise
    except DB_ERRORS as exc:
        log.warning("web chat: database unavailable (%s)", type(exc).__name__)
        metrics.error(exc, "web")
        return _problem(request, 503, t(_lang(request), "web.unavailable"))
    except Exception as exc:
        log.error("web chat: %s on %s %s", type(exc).__name__, request.method, request.path)
        metrics.error(exc, "web")
        return _problem(request, 500, t(_lang(request), "channel.error"))


# --- pages ------------------------------------------------------------------------------------


async def challenge(request: web.Request) -> web.Response:
    verdict = await request.app[GUARD].request(client_address(request), now=request.app[CLOCK]())
    if not verdict.allowed:
        return _too_many(request, verdict)
    return web.json_response(request.app[POW].challenge())


async def my_data(request: web.Request) -> web.Response:
    """The citizen's data as a file (their right of access), computed now from their cookie:
    a plain link, no JavaScript needed; nothing stored, nothing cached."""
    channel = request.app[CHANNEL]
    token = _token(request)
    if token is None:
        return _problem(request, 404, t(_lang(request), "my_data.nothing"))
    verdict = await request.app[GUARD].request(
        client_address(request), channel.key(token), now=request.app[CLOCK]()
    )
    if not verdict.allowed:
        return _too_many(request, verdict)
    attachment = await channel.my_data(token)
    if attachment is None:
        return _problem(request, 404, t(_lang(request), "my_data.nothing"))
    return web.Response(
        body=attachment.data,
        content_type=attachment.media_type,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{attachment.filename}"',
            "Cache-Control": "no-store",
        },
    )


async def accessibility(request: web.Request) -> web.Response:
    """The accessibility statement (after the State's model): the status, what is checked,
    whom to tell of a problem (the privacy notice's contact, else the agency), the recourse."""
    lang = await _visitor_lang(request)
    campaign: CampaignView | None = None
    with contextlib.suppress(*DB_ERRORS):  # the statement stands without the database
        campaign = await request.app[CHANNEL].service.campaign_view()
    contact = campaign.controller.contact if campaign and campaign.controller else ""
    return await _plain_page(
        request,
        "accessibility.html",
        lang,
        current="accessibility",
        contact=contact,
        contact_href=_contact_href(contact),
        controller=(
            controller_name(lang, campaign) if campaign else t(lang, "privacy.controller_default")
        ),
        recourse_form=RECOURSE_FORM,
        recourse_address=RECOURSE_ADDRESS,
    )


async def personal_data(request: web.Request) -> web.Response:
    """The privacy notice, as the chat's "privacy" command says it, on a page of its own."""
    lang = await _visitor_lang(request)
    service = request.app[CHANNEL].service
    notice = privacy_notice(lang, await service.campaign_view(), service.limits)
    return await _plain_page(request, "privacy.html", lang, current="privacy", notice=notice)


async def page(request: web.Request) -> web.Response:
    channel = request.app[CHANNEL]
    token = _token(request)
    new = token is None
    token = token or secrets.token_urlsafe(32)
    hint = _lang_hint(request)
    shown = request.query.get("r", "")
    answered = not new and RECORDED_ID.fullmatch(shown) is not None
    if answered:
        answer = await channel.recorded(token, shown, hint)
    else:
        answer = await channel.current(token, hint, new=new)
    # Moderation news at a visit, as the chat script shows them (the page it loads), not on
    # each page a message just answered (``?r=``): without JavaScript that was a transaction
    # on the outbox at every step, a quarter of the web chat's CPU (bench/web_load.py).
    notices = await channel.notices(token, answer.lang) if not new and not answered else []
    territory = _field(request.query.get("territoire", ""))[:80]
    poster = None
    if territory and answer.state not in render.WELCOME_STATES:
        poster = await _poster(channel, territory)
    view = render.view(
        answer,
        territory=territory,
        poster=poster,
        notices=notices,
        proof=await _needs_proof(channel, token, answer, new),
    )
    response = await _render(request, "chat.html", view)
    if new:
        _set_cookie(request, response, token)
    return response


async def message(request: web.Request) -> web.StreamResponse:
    app = request.app
    channel, guard = app[CHANNEL], app[GUARD]
    form = await request.post()  # over the size limit: 413 (the errors middleware)
    token = _token(request)
    if token is None:
        return _problem(request, 400, t(_lang(request), "web.no_cookie"))
    if not _same_origin(request):
        return _problem(request, 403, t(_lang(request), "web.bad_form"))
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if len(fields) != len(form):  # a file sent where none is asked for
        return _problem(request, 400, t(_lang(request), "web.bad_form"))
    mid = fields.get("mid", "")
    if not MESSAGE_ID.fullmatch(mid):
        return _problem(request, 400, t(_lang(request), "web.bad_form"))
    address = client_address(request)
    now = app[CLOCK]()
    verdict = await guard.request(address, channel.key(token), now=now)
    if not verdict.allowed:
        return _too_many(request, verdict, kept=fields.get("text", ""))
    hint = _lang_hint(request)
    payload, message_id = _payload(fields, mid)
    sending = payload.get("kind") == "choice" and payload.get("value") == "send"
    if sending and await channel.first_contribution(token):
        gate = await guard.first_contribution(address, fields.get("altcha"), now=now)
        if not gate.allowed:
            minutes = max(1, -(-gate.retry_after // 60))
            message_ = t(_lang(request), "web.held_back", minutes=minutes)
            return _problem(request, 429, message_, gate)
    territory = _field(fields.get("territoire", ""))[:80]
    consenting = payload.get("kind") == "choice" and payload.get("value") == "consent:yes"
    if territory and consenting and fields.get("state") in render.WELCOME_STATES:
        # From a poster: the territory first (Telegram's /start <territory>), then the answer.
        start = {"kind": "command", "value": "start", "arg": territory}
        first = await channel.send(token, f"{message_id}-t", start, hint)
        if first.status != "ok":
            return _failed(request, first, fields)
        payload = {"kind": "choice", "value": "consent:yes", "version": None}
    answer = await channel.send(token, message_id, payload, hint)
    if answer.status != "ok":
        return _failed(request, answer, fields)
    text = fields.get("text", "") if payload["kind"] == "text" else ""
    kept = text if text and not answer.changed else ""
    if _wants_json(request):
        return await _chat_json(request, channel, token, answer, kept)
    if kept:
        # Not taken (too short, too long, the page was out of date): the page again, with
        # the citizen's text in the box (a redirect would lose it).
        view = render.view(answer, kept_text=kept)
        return await _render(request, "chat.html", view)
    channel.keep_for_page(token, message_id, answer)
    raise web.HTTPSeeOther(f"/?r={message_id}#fil")


# --- helpers ----------------------------------------------------------------------------------


def _payload(fields: dict[str, str], mid: str) -> tuple[dict[str, Any], str]:
    """The message of a form, and its id: the form's client id, and for a button the button
    too (several buttons of one page are several messages; one button pressed twice, one)."""
    version_text = fields.get("v", "")
    version = int(version_text) if version_text.isdigit() and len(version_text) < 10 else None
    state = _field(fields.get("state", ""))[:40] or None
    if "choice" in fields:
        value = _field(fields["choice"])
        return (
            {"kind": "choice", "value": value, "version": version},
            _button_id(mid, "choice", value),
        )
    if "command" in fields:
        value = _field(fields["command"])[:64]
        command: dict[str, Any] = {"kind": "command", "value": value}
        poster = _field(fields.get("territoire", ""))[:80]
        if value == "start" and poster:  # a poster's link opened mid-conversation
            command["arg"] = poster
        return command, _button_id(mid, "command", f"{value} {poster}".strip())
    return (
        {"kind": "text", "value": fields.get("text", ""), "state": state},
        mid,
    )


def _button_id(mid: str, kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:10]
    return f"{mid}.{digest}"


def _field(value: str) -> str:
    """A short form field (not a citizen's text): printable characters only, bounded."""
    return "".join(c for c in value[:FIELD_MAX] if c.isprintable())


def _token(request: web.Request) -> str | None:
    value = request.cookies.get(COOKIE, "")
    return value if TOKEN.fullmatch(value) else None


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].web_secure_cookies,
    )


def _same_origin(request: web.Request) -> bool:
    """A browser's POST from another site is refused (the Lax cookie already keeps it out;
    this is the second lock)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not sent by every browser on a same-origin form
    if origin == "null":
        return False
    host = urlsplit(origin).netloc
    forwarded = request.headers.get("X-Forwarded-Host", "")
    return host in (request.host, forwarded)


def _lang_hint(request: web.Request) -> str | None:
    """The browser's first language (like Telegram's language_code)."""
    header = request.headers.get("Accept-Language", "")[:200]
    first = header.split(",")[0].split(";")[0].strip()
    return first or None


def _lang(request: web.Request) -> str:
    return normalise_lang(_lang_hint(request))


async def _visitor_lang(request: web.Request) -> str:
    """The language the chat page would speak: the cookie's conversation's, else the
    browser's (read only: nothing is stored, no cookie is given)."""
    hint = _lang_hint(request)
    token = _token(request)
    if token is not None:
        with contextlib.suppress(*DB_ERRORS):
            return (await request.app[CHANNEL].current(token, hint)).lang
    return normalise_lang(hint)


def _contact_href(contact: str) -> str:
    """The link of a contact: ``mailto:`` for an e-mail address, a web page as it is; none
    for anything else."""
    if EMAIL.fullmatch(contact):
        return f"mailto:{contact}"
    return contact if WEB_PAGE.fullmatch(contact) else ""


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


async def _needs_proof(channel: WebChannel, token: str, answer: Answer, new: bool) -> bool:
    """The review of a first contribution carries the proof-of-work widget."""
    if new or answer.state != "review":
        return False
    if answer.contributed is not None:
        return not answer.contributed
    return await channel.first_contribution(token)


async def _poster(channel: WebChannel, link: str) -> tuple[str, str] | None:
    """The territory (code, name) a poster's link names, when it names one."""
    with contextlib.suppress(*DB_ERRORS):
        campaign = await channel.service.campaign_view()
        code = territory_from_link(campaign, link)
        found = campaign.territory(code) if code else None
        if found is not None:
            return found.code, found.name
    return None


async def _campaign_name(request: web.Request) -> str:
    cache = request.app[CAMPAIGN]
    if "name" not in cache:
        channel = request.app[CHANNEL]
        with contextlib.suppress(*DB_ERRORS):
            cache["name"] = (await channel.service.campaign_view()).name
    return str(cache.get("name", ""))


def _layout(lang: str, campaign: str) -> dict[str, Any]:
    """What ``base.html`` needs on every page, error pages included."""
    return {
        "lang": lang,
        "html_lang": html_lang(lang),
        "current": "",  # the footer link of the page shown, if it is one
        "t": lambda msg_id, **params: t(lang, msg_id, **params),
        "campaign": campaign,
        "dsfr_version": DSFR_VERSION,
        "asset_version": ASSET_VERSION,
    }


async def _context(request: web.Request, lang: str) -> dict[str, Any]:
    campaign = await _campaign_name(request) if CHANNEL in request.app else ""
    return {
        **_layout(lang, campaign),
        "menu": render.MENU,
        "text_max": request.app[SETTINGS].text_max_chars,
    }


async def _render(request: web.Request, template: str, view: render.View) -> web.Response:
    context = await _context(request, view.lang)
    context["view"] = view
    return aiohttp_jinja2.render_template(template, request, context)


async def _plain_page(
    request: web.Request, template: str, lang: str, **values: Any
) -> web.Response:
    """A page that is not the conversation: the same layout, no cookie, never cached (the
    middleware), and said to depend on the language's two sources for any cache between."""
    context = await _context(request, lang)
    context.update(values)
    response = aiohttp_jinja2.render_template(template, request, context)
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response


async def _chat_json(
    request: web.Request, channel: WebChannel, token: str, answer: Answer, kept: str
) -> web.Response:
    view = render.view(
        answer, kept_text=kept, proof=await _needs_proof(channel, token, answer, False)
    )
    context = await _context(request, view.lang)
    context["view"] = view
    env = aiohttp_jinja2.get_env(request.app)
    body = {
        "status": "ok",
        **view.json(),
        "menu_id": view.menu_id,
        "messages": env.get_template("_messages.html").render(context),
        "answer": env.get_template("_answer.html").render(context),
    }
    return web.json_response(body)


def _failed(request: web.Request, answer: Answer, fields: dict[str, str]) -> web.Response:
    lang = _lang(request)
    if answer.status == "unavailable":
        return _problem(request, 503, t(lang, "web.unavailable"), kept=fields.get("text", ""))
    return _problem(request, 500, t(lang, "channel.error"), kept=fields.get("text", ""))


def _too_many(request: web.Request, verdict: Verdict, kept: str = "") -> web.Response:
    seconds = max(1, verdict.retry_after)
    message = t(_lang(request), "web.too_many", seconds=seconds)
    return _problem(request, 429, message, verdict, kept=kept)


def _problem(
    request: web.Request,
    status: int,
    message: str,
    verdict: Verdict | None = None,
    *,
    kept: str = "",
) -> web.Response:
    """A clear answer to what went wrong: a page, or JSON for the chat script."""
    headers = {}
    if verdict is not None and verdict.retry_after:
        headers["Retry-After"] = str(max(1, verdict.retry_after))
    if _wants_json(request):
        return web.json_response(
            {"status": "problem", "problem": message}, status=status, headers=headers
        )
    context = {
        **_layout(_lang(request), request.app[CAMPAIGN].get("name", "")),
        "message": message,
        "kept_text": kept,
    }
    response = aiohttp_jinja2.render_template("error.html", request, context, status=status)
    response.headers.update(headers)
    return response
