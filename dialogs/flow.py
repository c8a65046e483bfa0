"""The conversation's entry points: what channels and storage call.

consent -> territory -> theme (-> custom theme) -> need -> solution -> levers -> profile ->
review -> done; from anywhere: back, cancel (confirmed), help, language, privacy notice,
"my contributions", "delete my data" (confirmed).

Where things are: the state machine (states, transitions, the diagram) in
:mod:`dialogs.machine`; each step's prompt, choices and text in the table of
:mod:`dialogs.steps`, its questions in :mod:`dialogs.prompts`; the commands in
:mod:`dialogs.commands`.

:func:`handle` applies one event; it returns the new conversation (``version`` + 1 when
anything changed), the replies, and the effects storage must apply in the same transaction.
Some effects need data from storage before the citizen can be answered: ``ListContributions``
(storage then calls :func:`render_contributions`), ``SubmitContribution`` (storage then
calls :func:`render_submitted` with the reference), ``SendMyData`` (:func:`render_my_data`
with a summary; storage gives the channel the JSON file) and ``WithdrawContribution``
(:func:`render_withdrawal` with what became of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from dialogs import prompts, steps
from dialogs.commands import COMMAND_ALIASES, COMMANDS, FRENCH_COMMANDS, command
from dialogs.machine import (
    DRAFT_STATES,
    EDITABLE,
    FREE_TEXT_STATES,
    MACHINE,
    STATES,
    TRANSITIONS,
    mermaid,
)
from dialogs.messages import normalise_lang
from dialogs.model import (
    AttachmentEvent,
    ChoiceEvent,
    CommandEvent,
    Context,
    ContributionSummary,
    Conversation,
    Event,
    MyDataSummary,
    Outcome,
    Reply,
    TextEvent,
)
from dialogs.prompts import local_today
from dialogs.steps import Turn, prompt_for
from dialogs.validation import SHORT_INPUT_MAX_CHARS, clean_text

__all__ = [
    "COMMANDS",
    "COMMAND_ALIASES",
    "DRAFT_STATES",
    "EDITABLE",
    "FREE_TEXT_STATES",
    "FRENCH_COMMANDS",
    "MACHINE",
    "STATES",
    "TRANSITIONS",
    "current",
    "handle",
    "local_today",
    "mermaid",
    "new_conversation",
    "parse_text",
    "prompt_for",
    "render_contributions",
    "render_my_data",
    "render_submitted",
    "render_withdrawal",
]


def new_conversation(lang_hint: str | None) -> Conversation:
    """A fresh conversation, in English when the channel says so, else in French."""
    return Conversation(state="new", lang=normalise_lang(lang_hint) if lang_hint else "fr")


def parse_text(text: str) -> Event:
    """``"/help"``, ``"/start oise"``, ``"/help@SomeBot"`` -> a command; anything else: text."""
    stripped = text.strip()
    if stripped.startswith("/") and len(stripped) > 1 and not stripped[1].isspace():
        head, _, arg = stripped[1:].partition(" ")
        name = head.split("@", 1)[0]
        if name and len(name) <= 64 and all(c.isalnum() or c == "_" for c in name):
            return CommandEvent(name.lower(), clean_text(arg)[:SHORT_INPUT_MAX_CHARS])
    return TextEvent(text)


def handle(
    conv: Conversation, event: Event, ctx: Context, *, idle: timedelta | None = None
) -> Outcome:
    """Apply one event to a copy of ``conv``; return the new conversation, replies, effects.

    ``idle``: the time since the conversation last changed; a draft idle longer than the
    limits' ``draft_ttl`` expires before anything else is done.
    """
    before = conv.to_dict()
    turn = Turn(Conversation.from_dict(before), ctx)
    if isinstance(event, TextEvent):
        at = event.state
        event = parse_text(event.text)  # a command typed mid-step is a command, not an answer
        if isinstance(event, TextEvent) and at is not None:
            event = TextEvent(event.text, at)
    expired = idle is not None and idle > ctx.limits.draft_ttl and steps.expire_draft(turn)
    if not expired:
        _dispatch(turn, event)
    if turn.conv.to_dict() != before:
        turn.conv.version = conv.version + 1
    return Outcome(turn.conv, turn.replies, turn.effects)


def _dispatch(turn: Turn, event: Event) -> None:
    if isinstance(event, CommandEvent):
        command(turn, event)
    elif prompts.campaign_closed(turn.ctx) and not _allowed_while_closed(event):
        turn.say_closed()
    elif isinstance(event, ChoiceEvent):
        steps.choose(turn, event)
    elif isinstance(event, AttachmentEvent):
        steps.attachment(turn, event)
    elif event.state is not None and event.state != turn.conv.state:
        turn.say("channel.stale_text")
        turn.prompt()
    else:
        steps.answer_text(turn, event.text)


def _allowed_while_closed(event: Event) -> bool:
    """While closed, a citizen can still answer the delete confirmation, change language,
    see their contributions and withdraw one."""
    if isinstance(event, ChoiceEvent):
        allowed = ("lang:", "delete:", "w:", "withdraw:")
        return event.choice.startswith(allowed) or event.choice == "mine"
    return False


def current(conv: Conversation, ctx: Context) -> list[Reply]:
    """What the conversation shows now, changing nothing (a page displayed again): the
    closed-consultation notice outside the campaign's dates, else the current step."""
    if prompts.campaign_closed(ctx) and conv.state not in ("confirm_delete", "confirm_withdraw"):
        return [prompts.closed_notice(conv.lang, ctx)]
    return prompt_for(conv, ctx)


def render_submitted(conv: Conversation, references: Sequence[str], ctx: Context) -> list[Reply]:
    """Thanks with the reference(s) of what was just stored, then what next."""
    return prompts.submitted(conv, references) + prompt_for(conv, ctx)


def render_contributions(
    conv: Conversation, items: Sequence[ContributionSummary], ctx: Context
) -> list[Reply]:
    """The citizen's contributions (newest first), then the current step again."""
    return prompts.contributions(conv, items) + prompt_for(conv, ctx)


def render_my_data(conv: Conversation, summary: MyDataSummary | None, ctx: Context) -> list[Reply]:
    """What is stored about the citizen, summed up (None: nothing is), then the current step
    again."""
    return prompts.my_data(conv, summary, ctx) + current(conv, ctx)


def render_withdrawal(
    conv: Conversation, reference: str, outcome: str, ctx: Context
) -> list[Reply]:
    """What withdrawing ``reference`` did, then the step the citizen came from."""
    return prompts.withdrawal(conv, reference, outcome) + current(conv, ctx)
