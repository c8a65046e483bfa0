"""A conversation's answers and bookkeeping, kept or forgotten: plain changes to a
:class:`~dialogs.model.Conversation` that the steps and the commands share (the state itself
is the machine's)."""

from __future__ import annotations

from dataclasses import fields

from dialogs.model import Conversation


def set_territory(conv: Conversation, code: str) -> None:
    """Store the territory (the choices a typed place narrowed to are over)."""
    conv.answers["territory"] = code
    conv.territory_candidates = ()


def clear_draft(conv: Conversation) -> None:
    """Forget the draft's answers and bookkeeping; keep the territory for the next one."""
    territory = conv.answers.get("territory")
    conv.answers.clear()
    if territory:
        conv.answers["territory"] = territory
    forget_bookkeeping(conv)
    conv.resume = None


def forget_bookkeeping(conv: Conversation) -> None:
    conv.territory_candidates = ()
    conv.return_to = conv.return_resume = None
    conv.lang_offered = False
    conv.aside = conv.held = None


def forget_everything(conv: Conversation) -> None:
    """Delete my data: every field back to its default but the state (set by the machine),
    the language and the stored version."""
    blank = Conversation()
    for f in fields(Conversation):
        if f.name not in ("state", "lang", "version"):
            setattr(conv, f.name, getattr(blank, f.name))
