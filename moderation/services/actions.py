"""Moderation actions on one contribution: approve, reject, edit the texts, reclassify, mark a
duplicate. Each checks the version the moderator saw (optimistic locking), writes the change and
its audit entry in the caller's transaction, and queues the citizen's notice of a decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.validation import clean_text
from moderation.services.audit import audit
from moderation.services.outcomes import CITIZEN_REASON_MAX_CHARS, notice_params, told_sentence
from moderation.services.queue import (
    STATUSES,
    TEXT_FIELDS,
    TEXT_LABELS,
    get_contribution,
    staff_email,
)
from moderation.services.scope import Actor, Scope
from storage import moderation as store
from storage import vocabulary
from storage.settings import Settings

if TYPE_CHECKING:
    from storage.models import Contribution

#: The words of the citizen's notice (catalogues' ``reject_reason.<code>``), so that both sides
#: read the same reason; "other" is explained to the citizen in a reason written for them.
_REASON_LABELS = {
    "offtopic": "Hors sujet",
    "abusive": "Propos injurieux ou inappropriés",
    "personal_data": "Contient des données personnelles",
    "duplicate": "Reprend une contribution déjà reçue (doublon)",
    "other": "Autre motif (expliqué au citoyen)",
}
#: Every rejection reason (``storage.vocabulary``) as staff read it.
REJECT_REASONS = {code: _REASON_LABELS[code] for code in vocabulary.REJECT_REASONS}
NOTE_MAX_CHARS = 2000


async def queue_notification(
    session: AsyncSession, settings: Settings, contribution: Contribution, kind: str
) -> bool:
    """Queue the citizen's notice of a decision, once per meaning; False when none was added."""
    if not settings.notify_citizens:
        return False
    # the sender (bot.core.notifier) renders notify.<kind> in the participant's language;
    # the workers send it when this transaction commits
    return await store.queue_notice(
        session,
        contribution.participant_id,
        f"{kind}:{contribution.reference}",
        kind,
        notice_params(contribution, kind),
    )


@dataclass
class ActionResult:
    #: ok | conflict | not_found | invalid
    status: str
    message: str
    contribution: Contribution | None = None
    notified: bool = False


#: Free texts: the citizen's, and a moderator's note (which may quote them). The audit journal
#: records that they changed and their lengths, never their words; the citizen's originals
#: stay in ``Contribution.originals``, for admins.
FREE_TEXTS = frozenset((*TEXT_FIELDS, "reject_note", "citizen_reason"))


def _audited(field: str, value: Any) -> Any:
    """What the journal records of a field's value: a free text by its length, the originals
    kept by the names of their fields, anything else (a code, a number, a date) as it is."""
    if field in FREE_TEXTS:
        return None if value is None else {"chars": len(value)}
    if field == "originals":
        return sorted(value or {})
    return _jsonable(value)


def _snapshot(c: Contribution, fields: Sequence[str]) -> dict[str, Any]:
    return {f: _audited(f, getattr(c, f)) for f in fields}


def _handled_message(c: Contribution, by: str | None) -> str:
    who = f" par {by}" if by else ""
    when = f" le {c.moderated_at:%d/%m/%Y à %H:%M} UTC" if c.moderated_at else ""
    return (
        f"La contribution {c.reference} a déjà été traitée{who}{when} "
        f"(statut actuel : {STATUSES.get(c.status, c.status)}). "
        "Rien n'a été modifié ; relisez-la avant d'agir."
    )


async def _conflict(session: AsyncSession, scope: Scope, ref: str) -> ActionResult:
    fresh = await get_contribution(session, scope, ref)
    if fresh is None:
        return ActionResult("not_found", "Contribution introuvable.")
    by = await staff_email(session, fresh.moderated_by)
    return ActionResult("conflict", _handled_message(fresh, by), fresh)


async def _apply(
    session: AsyncSession,
    actor: Actor,
    ref: str,
    version: int | None,
    action: str,
    changes: dict[str, Any],
    *,
    now: datetime | None = None,
    check: Any = None,
) -> ActionResult:
    """Change ``ref`` if still at ``version``; audit before/after (free texts by their
    lengths only: :func:`_audited`). Caller commits."""
    now = now or datetime.now(UTC)
    c = await get_contribution(session, actor.scope, ref)
    if c is None:
        return ActionResult("not_found", "Contribution introuvable.")
    if version is None:
        return ActionResult("invalid", "Version manquante : rechargez la page.", c)
    if c.version != version:
        return await _conflict(session, actor.scope, ref)
    if check is not None:
        problem = await check(c)
        if problem:
            return ActionResult("invalid", problem, c)
    before = _snapshot(c, list(changes))
    changed = await store.change_contribution(
        session, c.id, version, changes, staff_id=actor.scope.staff_id, now=now
    )
    if not changed:
        return await _conflict(session, actor.scope, ref)
    fresh = await get_contribution(session, actor.scope, ref)
    if fresh is None:  # moved out of scope by this very action (reclassification)
        fresh = await store.contribution_by_id(session, c.id)
    await audit(
        session,
        actor=actor.scope.email,
        staff_id=actor.scope.staff_id,
        action=action,
        target=ref,
        before={**before, "version": version},
        after={**{k: _audited(k, v) for k, v in changes.items()}, "version": version + 1},
        remote_addr=actor.remote_addr,
        now=now,
    )
    return ActionResult("ok", "", fresh)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def approve(
    session: AsyncSession, settings: Settings, actor: Actor, ref: str, version: int | None
) -> ActionResult:
    res = await _apply(
        session,
        actor,
        ref,
        version,
        "approve",
        {
            "status": "approved",
            "reject_reason": None,
            "reject_note": None,
            "citizen_reason": None,
            "duplicate_of": None,
        },
    )
    return await _told(session, settings, res, "approved", f"Contribution {ref} approuvée.")


async def _told(
    session: AsyncSession, settings: Settings, res: ActionResult, kind: str, said: str
) -> ActionResult:
    """After a decision: the citizen's notice queued, and the confirmation saying whether,
    where and how they will be told."""
    if res.status == "ok" and res.contribution is not None:
        res.notified = await queue_notification(session, settings, res.contribution, kind)
        told = await told_sentence(session, settings, res.contribution, kind, res.notified)
        res.message = f"{said} {told}"
    return res


async def reject(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    ref: str,
    version: int | None,
    reason: str,
    note: str,
    citizen_reason: str = "",
) -> ActionResult:
    """Reject ``ref``: ``note`` is the moderator's internal comment (never sent); for "other",
    ``citizen_reason`` is the short reason the citizen's notice gives (required)."""
    note = clean_text(note)
    citizen_reason = clean_text(citizen_reason) if reason == "other" else ""
    if reason not in REJECT_REASONS:
        return ActionResult("invalid", "Choisissez un motif de rejet.")
    if len(note) > NOTE_MAX_CHARS:
        return ActionResult("invalid", f"Le commentaire dépasse {NOTE_MAX_CHARS} caractères.")
    if reason == "other" and not citizen_reason:
        return ActionResult(
            "invalid", "« Autre motif » : écrivez la raison qui sera envoyée au citoyen."
        )
    if len(citizen_reason) > CITIZEN_REASON_MAX_CHARS:
        return ActionResult(
            "invalid",
            f"La raison envoyée au citoyen dépasse {CITIZEN_REASON_MAX_CHARS} caractères.",
        )
    res = await _apply(
        session,
        actor,
        ref,
        version,
        "reject",
        {
            "status": "rejected",
            "reject_reason": reason,
            "reject_note": note or None,
            "citizen_reason": citizen_reason or None,
        },
    )
    said = f"Contribution {ref} rejetée ({REJECT_REASONS[reason].lower()})."
    return await _told(session, settings, res, "rejected", said)


async def edit_texts(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    ref: str,
    version: int | None,
    texts: Mapping[str, str],
) -> ActionResult:
    """Redact/edit the texts; the citizen's originals are kept once, for admins."""
    c = await get_contribution(session, actor.scope, ref)
    if c is None:
        return ActionResult("not_found", "Contribution introuvable.")
    if version is not None and c.version != version:
        return await _conflict(session, actor.scope, ref)
    new: dict[str, str | None] = {}
    for f in TEXT_FIELDS:
        if f not in texts:
            continue
        value = clean_text(texts[f])
        limit = settings.custom_theme_max_chars if f == "custom_theme" else settings.text_max_chars
        if len(value) > limit:
            return ActionResult("invalid", f"{TEXT_LABELS[f]} : {limit} caractères au plus.", c)
        if f in ("need", "solution") and not value:
            return ActionResult("invalid", f"{TEXT_LABELS[f]} : ce texte ne peut être vide.", c)
        if f == "custom_theme" and c.custom_theme is None and not value:
            continue
        new[f] = value or None
    changes = {f: v for f, v in new.items() if v != getattr(c, f)}
    if not changes:
        return ActionResult("invalid", "Aucun texte n'a été modifié.", c)
    originals = dict(c.originals or {})
    for f in changes:
        originals.setdefault(f, getattr(c, f))
    changes_all: dict[str, Any] = {**changes, "originals": originals}
    res = await _apply(session, actor, ref, version, "edit", changes_all)
    if res.status == "ok":
        res.message = f"Textes de {ref} modifiés ({len(changes)} champ(s))."
    return res


async def reclassify(
    session: AsyncSession,
    actor: Actor,
    ref: str,
    version: int | None,
    theme_id: int | None,
    territory_id: int | None,
) -> ActionResult:
    c = await get_contribution(session, actor.scope, ref)
    if c is None:
        return ActionResult("not_found", "Contribution introuvable.")
    if version is not None and c.version != version:
        return await _conflict(session, actor.scope, ref)
    changes: dict[str, Any] = {}
    if theme_id is not None and theme_id != c.theme_id:
        theme = await store.theme(session, theme_id)
        if theme is None or theme.campaign_id != c.campaign_id:
            return ActionResult("invalid", "Thème inconnu pour cette campagne.", c)
        changes["theme_id"] = theme_id
    if territory_id is not None and territory_id != c.territory_id:
        terr = await store.territory(session, territory_id)
        if terr is None or terr.campaign_id != c.campaign_id:
            return ActionResult("invalid", "Territoire inconnu pour cette campagne.", c)
        if not actor.scope.allows_territory(territory_id):
            # writing into another team's territory: an administrator does that
            return ActionResult(
                "invalid",
                "Ce territoire n'est pas dans votre périmètre : demandez à un administrateur.",
                c,
            )
        changes["territory_id"] = territory_id
    if not changes:
        return ActionResult("invalid", "Ni le thème ni le territoire n'ont changé.", c)
    res = await _apply(session, actor, ref, version, "reclassify", changes)
    if res.status == "ok":
        res.message = f"Contribution {ref} reclassée."
    return res


async def mark_duplicate(
    session: AsyncSession, actor: Actor, ref: str, version: int | None, of_ref: str
) -> ActionResult:
    of_ref = clean_text(of_ref).upper()

    async def check(c: Contribution) -> str | None:
        if not of_ref:
            return "Indiquez la référence de la contribution d'origine."
        if of_ref == c.reference:
            return "Une contribution ne peut pas être le doublon d'elle-même."
        original = await get_contribution(session, actor.scope, of_ref)
        if original is None or original.campaign_id != c.campaign_id:
            return f"Référence introuvable dans votre périmètre : {of_ref[:64]}"
        if original.duplicate_of == c.reference:
            return f"{of_ref} est déjà marquée comme doublon de {c.reference}."
        return None

    res = await _apply(
        session,
        actor,
        ref,
        version,
        "duplicate",
        {"status": "duplicate", "duplicate_of": of_ref[:64]},
        check=check,
    )
    if res.status == "ok":
        res.message = f"Contribution {ref} marquée comme doublon de {of_ref}."
    return res
