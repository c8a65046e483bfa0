"""What a decision means for the citizen, as the console tells the moderator: whether and where
the citizen will be told, and the very text of the notice they will read (in their language).

The notice is rendered by the same function the senders use (``dialogs.notices.notice_text``),
from the same parameters the outbox row carries (:func:`notice_params`), so the confirmation
shows exactly what will be sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.messages import normalise_lang
from dialogs.notices import notice_text
from storage.moderation import participant_lang
from storage.settings import Settings

if TYPE_CHECKING:
    from storage.models import Contribution

#: The longest reason a moderator may write for the citizen (``contributions.citizen_reason``).
CITIZEN_REASON_MAX_CHARS = 300

#: Where the citizen reads their notice, by channel (what the confirmation says).
_WHERE = {
    "telegram": "dans sa conversation Telegram, dans les secondes qui viennent",
    "web": "dans le chat du site web, à sa prochaine visite",
}
_LANGS = {"fr": "français", "en": "anglais", "falc": "français facile"}


def notice_params(contribution: Contribution, kind: str) -> dict[str, Any]:
    """The parameters of the citizen's notice of a decision (stored with the outbox row)."""
    params: dict[str, Any] = {"reference": contribution.reference}
    if kind == "rejected":
        params["reason"] = contribution.reject_reason or "other"
        if contribution.reject_reason == "other" and contribution.citizen_reason:
            params["reason_text"] = contribution.citizen_reason
    return params


async def notice_preview(
    session: AsyncSession, contribution: Contribution, kind: str
) -> tuple[str, str]:
    """The notice's text in the citizen's language, and that language's name in French."""
    lang = await participant_lang(session, contribution.participant_id)
    code = normalise_lang(lang or "fr")
    return notice_text(code, kind, notice_params(contribution, kind)), _LANGS.get(code, code)


async def told_sentence(
    session: AsyncSession,
    settings: Settings,
    contribution: Contribution,
    kind: str,
    notified: bool,
) -> str:
    """The sentence added to the console's confirmation of a decision."""
    if not settings.notify_citizens:
        return "Aucun avis n'est envoyé au citoyen (avis désactivés : CNR_NOTIFY_CITIZENS)."
    if not notified:
        return "Avis déjà envoyé pour cette décision : le citoyen n'est pas prévenu à nouveau."
    text, language = await notice_preview(session, contribution, kind)
    where = _WHERE.get(contribution.channel, "à son prochain passage")
    return f"Le citoyen en sera informé {where} ; il lira (en {language}) : « {text} »"
