"""The queue of contributions and the actions on them: the list, one contribution with its
neighbours, approve, reject, edit, reclassify, mark a duplicate, and the bulk actions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from moderation.highlight import KIND_LABELS, count_findings, highlight
from moderation.routes.synthesis import with_topic
from moderation.services import actions
from moderation.services import queue as queue_service
from moderation.services.actions import REJECT_REASONS, ActionResult
from moderation.services.queue import CHANNELS, STATUSES, TEXT_FIELDS, TEXT_LABELS, QueueFilters
from moderation.web import (
    actor_of,
    db_of,
    form_int,
    form_str,
    not_found,
    redirect,
    render,
    scope_of,
    settings_of,
)


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/contributions")


async def queue(request: web.Request) -> web.Response:
    db = db_of(request)
    scope = scope_of(request)
    filters = QueueFilters.parse(request.query, zone=settings_of(request).timezone)
    filters, topic = await with_topic(request, filters)
    page = await queue_service.queue_page(
        db, scope, filters, settings_of(request).console_page_size
    )
    territories, themes, languages = await queue_service.campaign_choices(db, scope)
    return render(
        request,
        "queue.html",
        {
            "page": page,
            "filters": filters,
            "topic": topic,
            # links carry cursors (keyset pages): back to this page, to the next, the previous
            "qs": urlencode(filters.query(page=page.page, start=page.start)),
            "prev_qs": urlencode(filters.query(page=page.page - 1, before=page.start)),
            "next_qs": urlencode(filters.query(page=page.page + 1, start=page.next_start)),
            "territories": territories,
            "themes": themes,
            "languages": languages,
            "statuses": STATUSES,
            "reasons": REJECT_REASONS,
            "channels": CHANNELS,
        },
    )


async def detail(
    request: web.Request,
    *,
    message: str | None = None,
    status: int = 200,
    form_values: dict[str, str] | None = None,
) -> web.Response:
    db = db_of(request)
    scope = scope_of(request)
    ref = request.match_info["ref"]
    filters = QueueFilters.parse(
        request.query if request.method == "GET" else _filter_params(await request.post()),
        zone=settings_of(request).timezone,
    )
    filters, _ = await with_topic(request, filters)
    c = await queue_service.get_contribution(db, scope, ref)
    if c is None:
        raise not_found()
    prev_ref, next_ref = await queue_service.neighbours(db, scope, filters, c)
    all_territories, themes = await queue_service.territories_and_themes(db, scope, c.campaign_id)
    moderator = await queue_service.staff_email(db, c.moderated_by)
    texts = {f: getattr(c, f) for f in TEXT_FIELDS}
    profiles = await queue_service.profile_labels(db, c.campaign_id)
    return render(
        request,
        "detail.html",
        {
            "c": c,
            "texts": texts,
            "highlighted": {f: highlight(v) for f, v in texts.items()},
            "pii_count": sum(count_findings(v) for v in texts.values()),
            "labels": TEXT_LABELS,
            "kinds": KIND_LABELS,
            "filters": filters,
            "filter_fields": filters.query(),
            "qs": urlencode(filters.query()),
            "prev_ref": prev_ref,
            "next_ref": next_ref,
            "territories": all_territories,
            "themes": themes,
            "statuses": STATUSES,
            "reasons": REJECT_REASONS,
            "channels": CHANNELS,
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
    "topic",
    "start",
    "before",
)


def _filter_params(form: Any) -> dict[str, str]:
    return {
        k[2:]: v
        for k, v in form.items()
        if k.startswith("f_") and k[2:] in _FILTER_NAMES and isinstance(v, str)
    }


async def _after_action(request: web.Request, res: ActionResult, form: Any) -> web.StreamResponse:
    """Success: go to the next item of the queue; otherwise show the item with the message."""
    db = db_of(request)
    if res.status == "ok":
        await db.commit()
        filters = QueueFilters.parse(_filter_params(form), zone=settings_of(request).timezone)
        filters, _ = await with_topic(request, filters)
        c = res.contribution
        next_ref = None
        if c is not None:
            _, next_ref = await queue_service.neighbours(db, scope_of(request), filters, c)
        qs = urlencode(filters.query())
        if next_ref:
            raise redirect(request, f"/contributions/{next_ref}?{qs}", res.message)
        raise redirect(request, f"/contributions?{qs}", res.message + " File terminée.")
    await db.rollback()
    if res.status == "not_found":
        raise not_found()
    status = 409 if res.status == "conflict" else 422
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf"}
    return await detail(request, message=res.message, status=status, form_values=values)


async def act(request: web.Request) -> web.StreamResponse:
    db = db_of(request)
    settings = settings_of(request)
    ref = request.match_info["ref"]
    action = request.match_info["action"]
    form = await request.post()
    version = form_int(form, "version")
    actor = actor_of(request)
    if action == "approve":
        res = await actions.approve(db, settings, actor, ref, version)
    elif action == "reject":
        res = await actions.reject(
            db,
            settings,
            actor,
            ref,
            version,
            form_str(form, "reason"),
            form_str(form, "note"),
            form_str(form, "citizen_reason"),
        )
    elif action == "edit":
        texts = {f: form_str(form, f) for f in TEXT_FIELDS if f in form}
        res = await actions.edit_texts(db, settings, actor, ref, version, texts)
    elif action == "reclassify":
        res = await actions.reclassify(
            db, actor, ref, version, form_int(form, "theme"), form_int(form, "territory")
        )
    elif action == "duplicate":
        res = await actions.mark_duplicate(db, actor, ref, version, form_str(form, "of"))
    else:
        raise not_found()
    return await _after_action(request, res, form)


#: Pages that send their selection to the bulk action and get the result back: the queue, or
#: the coordinated campaigns (a whole campaign decided at once).
_BULK_RETURNS = ("/contributions", "/campagnes")
#: A campaign can be larger than a page of the queue.
BULK_MAX_ITEMS = 2000


async def bulk(request: web.Request) -> web.StreamResponse:
    """Approve or reject the selected contributions, each as its own decision (version checked,
    audited, the citizen told), committed one by one."""
    db = db_of(request)
    settings = settings_of(request)
    form = await request.post()
    action = form_str(form, "bulk_action")
    selected = [v for v in form.getall("sel", []) if isinstance(v, str)][:BULK_MAX_ITEMS]
    back = form_str(form, "return_to")
    if back not in _BULK_RETURNS:
        back = "/contributions"
    if back == "/contributions":
        qs = urlencode(QueueFilters.parse(_filter_params(form)).query())  # (days as typed)
    else:
        campaign = form_int(form, "f_campaign")
        qs = urlencode({"campaign": campaign} if campaign is not None else {})
    if action not in ("approve", "reject"):
        raise redirect(request, f"{back}?{qs}", "Choisissez une action groupée.")
    if not selected:
        raise redirect(request, f"{back}?{qs}", "Aucune contribution sélectionnée.")
    reason = form_str(form, "reason")
    if action == "reject" and reason not in REJECT_REASONS:
        raise redirect(request, f"{back}?{qs}", "Choisissez un motif de rejet.")
    citizen_reason = form_str(form, "citizen_reason")
    if action == "reject" and reason == "other" and not citizen_reason.strip():
        raise redirect(
            request,
            f"{back}?{qs}",
            "« Autre motif » : écrivez la raison qui sera envoyée aux citoyens.",
        )
    done: list[str] = []
    handled: list[str] = []
    other: list[str] = []
    told: list[ActionResult] = []
    for item in selected:
        ref, _, raw_version = item.partition(":")
        version = int(raw_version) if raw_version.isdigit() and len(raw_version) < 12 else None
        if action == "approve":
            res = await actions.approve(db, settings, actor_of(request), ref, version)
        else:
            res = await actions.reject(
                db,
                settings,
                actor_of(request),
                ref,
                version,
                reason,
                form_str(form, "note"),
                citizen_reason,
            )
        if res.status == "ok":
            await db.commit()
            done.append(ref)
            if res.notified:
                told.append(res)
        else:
            await db.rollback()
            (handled if res.status == "conflict" else other).append(ref[:64])
    verb = "approuvée(s)" if action == "approve" else "rejetée(s)"
    parts = [f"{len(done)} contribution(s) {verb}."]
    if told:
        _, _, example = told[0].message.partition(" ; il lira ")
        parts.append(f"{len(told)} citoyen(s) en seront informé(s) ; le premier lira {example}")
    elif done:
        parts.append("Aucun citoyen n'est prévenu (avis désactivés ou déjà envoyés).")
    if handled:
        parts.append(f"Déjà traitée(s) par ailleurs, non modifiée(s) : {', '.join(handled)}.")
    if other:
        parts.append(f"Introuvable(s) ou invalide(s) : {len(other)}.")
    raise redirect(request, f"{back}?{qs}", " ".join(parts))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    r.add_get("/contributions", queue)
    r.add_post("/contributions/bulk", bulk)
    r.add_get("/contributions/{ref}", detail)
    r.add_post("/contributions/{ref}/{action}", act)
