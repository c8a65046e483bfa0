"""The words of a notice queued for a citizen (moderation news, reminders), in their language:
what the channels send and what the console quotes when it confirms a decision (one function,
so both read the same). Pure: the outbox row's kind and parameters in, a text out."""

from __future__ import annotations

from typing import Any

from dialogs.messages import CATALOGUES, DEFAULT_LANGUAGE, t


def _known_reason(code: str) -> bool:
    return f"reject_reason.{code}" in CATALOGUES[DEFAULT_LANGUAGE]


def notice_text(lang: str, kind: str, params: dict[str, Any]) -> str:
    """The citizen-facing text of an outbox row."""
    msg_id = kind if kind.startswith("notify.") else f"notify.{kind}"
    values = {k: str(v) for k, v in params.items()}
    if msg_id == "notify.rejected":
        reason = values.get("reason", "other")
        if reason.startswith("reject_reason."):
            reason = reason.split(".", 1)[1]
        values["reason"] = t(lang, f"reject_reason.{reason if _known_reason(reason) else 'other'}")
        written = values.pop("reason_text", "").strip().rstrip(".").strip()
        if reason == "other" and written:  # written by the moderator for the citizen
            values["reason"] = written
    if msg_id == "notify.reminder":
        return t(lang, msg_id)
    return t(lang, msg_id, **values)
