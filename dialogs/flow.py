"""The conversation: one ``transitions`` state machine, built once at import.

consent -> territory -> theme (-> custom theme) -> need -> solution -> levers -> profile ->
review -> done; from anywhere: back, cancel (confirmed), help, language, privacy notice,
"my contributions", "delete my data" (confirmed).

The machine has no model of its own: each event attaches nothing and builds nothing. A
:class:`~dialogs.model.Conversation` (plain data, ``state`` attribute) is passed to
``Event.trigger`` directly, which reads and sets its ``state``. Callbacks are pure conditions;
everything the conversation says is collected in a :class:`_Turn` (no I/O anywhere).

Channels and storage call :func:`handle` with one event; it returns the new conversation
(``version`` + 1 when anything changed), the replies, and the effects storage must apply in
the same transaction. Two effects need data from storage before the citizen can be answered:
``ListContributions`` (storage then calls :func:`render_contributions`) and
``SubmitContribution`` (storage then calls :func:`render_submitted` with the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from transitions import EventData, Machine

from dialogs import places
from dialogs.language import detect_language
from dialogs.messages import CATALOGUES, normalise_lang, t
from dialogs.model import (
    CampaignView,
    Choice,
    ChoiceEvent,
    CommandEvent,
    Context,
    ContributionSummary,
    Conversation,
    DeleteMyData,
    Effect,
    Event,
    ListContributions,
    Outcome,
    RecordConsent,
    Reply,
    SetLanguage,
    SubmitContribution,
    TextEvent,
)
from dialogs.validation import check_text, clean_text, count_letters, fold

# --- the machine ------------------------------------------------------------------------------

#: Steps of a draft, in order (``custom_theme`` only for a theme of the citizen's own).
DRAFT_STATES = (
    "territory",
    "theme",
    "custom_theme",
    "need",
    "solution",
    "levers",
    "profile",
    "review",
)
STATES = ("new", "consent", *DRAFT_STATES, "done", "confirm_cancel", "confirm_delete")
FREE_TEXT_STATES = ("custom_theme", "need", "solution", "levers")
#: Answers a citizen can change from the review.
EDITABLE = ("territory", "theme", "need", "solution", "levers", "profile")

#: Canonical commands (Telegram's command menu) and the other words accepted for them.
COMMANDS = ("start", "help", "back", "cancel", "language", "privacy", "mine", "delete")
COMMAND_ALIASES = {
    "aide": "help",
    "retour": "back",
    "precedent": "back",
    "annuler": "cancel",
    "langue": "language",
    "lang": "language",
    "confidentialite": "privacy",
    "vieprivee": "privacy",
    "mescontributions": "mine",
    "mes_contributions": "mine",
    "contributions": "mine",
    "supprimer": "delete",
    "effacer": "delete",
    "commencer": "start",
    "demarrer": "start",
}


def _conv(ev: EventData) -> Conversation:
    model = ev.model
    assert isinstance(model, Conversation)
    return model


def _editing(ev: EventData) -> bool:
    return _conv(ev).resume == "review"


def _has_territory(ev: EventData) -> bool:
    return bool(_conv(ev).answers.get("territory"))


def _free_theme(ev: EventData) -> bool:
    return _conv(ev).answers.get("theme") == "5"


def _t(trigger: str, source: str | list[str], dest: str, **kw: Any) -> dict[str, Any]:
    return {"trigger": trigger, "source": source, "dest": dest, **kw}


TRANSITIONS: list[dict[str, Any]] = [
    _t("greet", "new", "consent"),
    _t("accept", ["new", "consent"], "theme", conditions=[_has_territory]),
    _t("accept", ["new", "consent"], "territory"),
    _t("decline", ["new", "consent"], "new"),
    _t("set_territory", "territory", "review", conditions=[_editing]),
    _t("set_territory", "territory", "theme"),
    _t("set_theme", "theme", "custom_theme", conditions=[_free_theme]),
    _t("set_theme", "theme", "review", conditions=[_editing]),
    _t("set_theme", "theme", "need"),
    _t("set_custom_theme", "custom_theme", "review", conditions=[_editing]),
    _t("set_custom_theme", "custom_theme", "need"),
    _t("set_need", "need", "review", conditions=[_editing]),
    _t("set_need", "need", "solution"),
    _t("set_solution", "solution", "review", conditions=[_editing]),
    _t("set_solution", "solution", "levers"),
    _t("set_levers", "levers", "review", conditions=[_editing]),
    _t("set_levers", "levers", "profile"),
    _t("set_profile", "profile", "review"),
    *(_t(f"edit_{name}", "review", name) for name in EDITABLE),
    _t("send", "review", "done"),
    _t("again", "done", "theme", conditions=[_has_territory]),
    _t("again", "done", "territory"),
    # back: to review while editing, else to the previous step
    _t("back", list(DRAFT_STATES[:-1]), "review", conditions=[_editing]),
    _t("back", "theme", "territory"),
    _t("back", "custom_theme", "theme"),
    _t("back", "need", "custom_theme", conditions=[_free_theme]),
    _t("back", "need", "theme"),
    _t("back", "solution", "need"),
    _t("back", "levers", "solution"),
    _t("back", "profile", "levers"),
    _t("back", "review", "profile"),
    _t("cancel", list(DRAFT_STATES), "confirm_cancel"),
    _t("discard", "confirm_cancel", "done"),
    _t("delete", [s for s in STATES if s != "confirm_delete"], "confirm_delete"),
    _t("erase", "confirm_delete", "new"),
    *(
        _t(f"resume_{name}", ["confirm_cancel", "confirm_delete"], name)
        for name in STATES
        if name not in ("confirm_cancel", "confirm_delete")
    ),
]

MACHINE = Machine(
    model=None,
    states=list(STATES),
    transitions=TRANSITIONS,
    initial="new",
    model_attribute="state",
    auto_transitions=False,
    send_event=True,
    ignore_invalid_triggers=True,
)


def _fire(conv: Conversation, trigger: str) -> bool:
    """Fire ``trigger`` on ``conv``; False when no transition applies from its state."""
    event = MACHINE.events.get(trigger)
    return bool(event and event.trigger(conv))


def mermaid() -> str:
    """A Mermaid diagram of the machine (generated from the same states and transitions)."""
    from transitions.extensions import GraphMachine

    class _Model:
        pass

    model = _Model()
    GraphMachine(
        model=model,
        states=list(STATES),
        transitions=[
            {**tr, "conditions": [c.__name__.lstrip("_") for c in tr.get("conditions", [])]}
            for tr in TRANSITIONS
            if not tr["trigger"].startswith("resume_")
        ]
        + [_t("resume", ["confirm_cancel", "confirm_delete"], "review")],
        initial="new",
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title="cnr-sante-bot conversation",
    )
    # conditions are shown by name; the model needs them only for drawing
    for name in ("editing", "has_territory", "free_theme"):
        setattr(model, name, lambda: True)
    graph = model.get_graph()  # type: ignore[attr-defined]
    source: str = graph.draw(None)
    return source.strip() + "\n"


# --- parsing ----------------------------------------------------------------------------------


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
            return CommandEvent(name.lower(), clean_text(arg)[:200])
    return TextEvent(text)


# --- one turn ---------------------------------------------------------------------------------


@dataclass
class _Turn:
    conv: Conversation
    ctx: Context
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return self.conv.lang

    def say(self, msg_id: str, *choices: Choice, **params: object) -> None:
        self.replies.append(Reply(t(self.lang, msg_id, **params), tuple(choices)))

    def prompt(self) -> None:
        self.replies.extend(prompt_for(self.conv, self.ctx))


def handle(
    conv: Conversation, event: Event, ctx: Context, *, idle: timedelta | None = None
) -> Outcome:
    """Apply one event to a copy of ``conv``; return the new conversation, replies, effects."""
    before = conv.to_dict()
    turn = _Turn(Conversation.from_dict(before), ctx)
    if isinstance(event, TextEvent):
        at = event.state
        event = parse_text(event.text)  # a command typed mid-step is a command, not an answer
        if isinstance(event, TextEvent) and at is not None:
            event = TextEvent(event.text, at)
    if idle is not None and idle > ctx.limits.draft_ttl and _has_draft(turn.conv):
        _expire(turn)
    elif isinstance(event, CommandEvent):
        _command(turn, event)
    elif _campaign_closed(turn) and not _closed_ok(turn.conv, event):
        _say_closed(turn)
    elif isinstance(event, ChoiceEvent):
        _choice(turn, event)
    elif isinstance(event, TextEvent):
        if event.state is not None and event.state != turn.conv.state:
            turn.say("channel.stale_text")
            turn.prompt()
        else:
            _text(turn, event.text)
    if turn.conv.to_dict() != before:
        turn.conv.version = conv.version + 1
    return Outcome(turn.conv, turn.replies, turn.effects)


def current(conv: Conversation, ctx: Context) -> list[Reply]:
    """What the conversation shows now, changing nothing (a page displayed again): the
    closed-consultation notice outside the campaign's dates, else the current step."""
    turn = _Turn(Conversation.from_dict(conv.to_dict()), ctx)
    if _campaign_closed(turn) and conv.state != "confirm_delete":
        _say_closed(turn)
        return turn.replies
    return prompt_for(conv, ctx)


def prompt_for(conv: Conversation, ctx: Context) -> list[Reply]:
    """What the conversation asks at its current state (text and choices)."""
    lang = conv.lang
    state = conv.state
    c = ctx.campaign

    def reply(msg_id: str, *choices: Choice, **params: object) -> list[Reply]:
        return [Reply(t(lang, msg_id, **params), tuple(choices))]

    if state in ("new", "consent"):
        text = t(lang, "consent.prompt")
        if state == "new":  # the first message: say who we are
            text = t(lang, "welcome", campaign=c.name, region=c.region) + "\n\n" + text
        return [
            Reply(
                text,
                (
                    Choice("consent:yes", t(lang, "consent.accept")),
                    Choice("consent:no", t(lang, "consent.decline")),
                    Choice("consent:read", t(lang, "consent.read")),
                ),
            )
        ]
    if state == "territory":
        candidates = conv.answers.get("_candidates")
        shown = [tr for tr in c.territories if not candidates or tr.code in candidates]
        if candidates or len(shown) <= MAX_TERRITORY_BUTTONS:
            return reply("territory.prompt", *(Choice(f"t:{tr.code}", tr.name) for tr in shown))
        return reply("territory.prompt_type")
    if state == "theme":
        return reply("theme.prompt", *_theme_choices(conv, c))
    if state in ("custom_theme", "need", "solution"):
        return reply(f"{state}.prompt")
    if state == "levers":
        return reply("levers.prompt", Choice("skip", t(lang, "levers.skip")))
    if state == "profile":
        return reply(
            "profile.prompt",
            *(Choice(f"p:{p.code}", p.label(lang)) for p in c.profiles),
            Choice("p:-", t(lang, "profile.skip")),
        )
    if state == "review":
        return [Reply(_summary(conv, c), _review_choices(lang))]
    if state == "done":
        return reply(
            "done.prompt",
            Choice("new", t(lang, "done.new")),
            Choice("mine", t(lang, "done.mine")),
        )
    if state == "confirm_cancel":
        return reply(
            "cancel.confirm",
            Choice("cancel:yes", t(lang, "cancel.yes")),
            Choice("cancel:no", t(lang, "cancel.no")),
        )
    return reply(
        "delete.confirm",
        Choice("delete:yes", t(lang, "delete.yes")),
        Choice("delete:no", t(lang, "delete.no")),
    )


MAX_TERRITORY_BUTTONS = 12


def _theme_choices(conv: Conversation, c: CampaignView) -> list[Choice]:
    lang = conv.lang
    choices = [Choice(f"th:{th.code}", th.short(lang)) for th in c.themes if th.code != "5"]
    choices += [Choice(f"th:{th.code}", th.short(lang)) for th in c.extra_themes]
    if c.theme("5") is not None:
        choices.append(Choice("th:5", t(lang, "theme.other")))
    return choices


def _review_choices(lang: str) -> tuple[Choice, ...]:
    return (
        Choice("send", t(lang, "review.send")),
        *(Choice(f"edit:{name}", t(lang, f"review.edit_{name}")) for name in EDITABLE),
        Choice("discard", t(lang, "review.cancel")),
    )


def _theme_label(conv: Conversation, c: CampaignView) -> str:
    code = conv.answers.get("theme")
    theme = c.theme(str(code)) if code else None
    if theme is None:
        return t(conv.lang, "review.none")
    if theme.code == "5" and conv.answers.get("custom_theme"):
        return f"{theme.label(conv.lang)} : {conv.answers['custom_theme']}"
    return theme.label(conv.lang)


def _summary(conv: Conversation, c: CampaignView) -> str:
    a = conv.answers
    lang = conv.lang
    none = t(lang, "review.none")
    territory = c.territory(str(a.get("territory", "")))
    profile = next((p for p in c.profiles if p.code == a.get("profile")), None)
    return t(
        lang,
        "review.summary",
        territory=territory.name if territory else none,
        theme=_theme_label(conv, c),
        need=a.get("need") or none,
        solution=a.get("solution") or none,
        levers=a.get("levers") or none,
        profile=profile.label(lang) if profile else none,
    )


# --- commands ---------------------------------------------------------------------------------


def _command(turn: _Turn, event: CommandEvent) -> None:
    name = COMMAND_ALIASES.get(event.name, event.name)
    conv = turn.conv
    if name == "start":
        _start(turn, event.arg)
    elif name == "help":
        turn.say("help.text")
        turn.prompt()
    elif name == "privacy":
        _privacy(turn)
        turn.prompt()
    elif name == "language":
        turn.say("lang.prompt", *_language_choices())
    elif name == "mine":
        turn.effects.append(ListContributions())
    elif name == "delete":
        _detour(turn, "delete")
    elif _campaign_closed(turn):
        _say_closed(turn)
    elif name == "back":
        if conv.state in DRAFT_STATES and _fire(conv, "back"):
            _after_move(turn)
        else:
            turn.say("back.none")
            turn.prompt()
    elif name in ("skip", "passer") and conv.state in ("levers", "profile"):
        _choice(turn, ChoiceEvent("skip" if conv.state == "levers" else "p:-"))
    elif name == "cancel":
        if conv.state in DRAFT_STATES and _has_draft(conv):
            _detour(turn, "cancel")
        else:
            turn.say("cancel.nothing")
            turn.prompt()
    else:
        turn.say("command.unknown", command=event.name[:32])
        turn.prompt()


def _start(turn: _Turn, payload: str) -> None:
    conv = turn.conv
    territory = _territory_from_payload(turn.ctx.campaign, payload)
    if territory and conv.state in ("new", "consent", "territory", "done"):
        conv.answers["territory"] = territory
        conv.answers.pop("_candidates", None)
        if conv.state == "territory" and _fire(conv, "set_territory"):
            _after_move(turn)
            return
    if _campaign_closed(turn):
        _say_closed(turn)
        return
    if conv.state in ("new", "consent"):
        _greet(turn)
        return
    turn.prompt()


def _greet(turn: _Turn) -> None:
    """Welcome and the privacy question (from ``new`` or again on /start)."""
    conv = turn.conv
    turn.replies.extend(
        prompt_for(Conversation.from_dict({**conv.to_dict(), "state": "new"}), turn.ctx)
    )
    _fire(conv, "greet")


def _territory_from_payload(c: CampaignView, payload: str) -> str | None:
    """``/start oise`` or ``/start LITTORAL-NORD``: the deep link printed on a poster."""
    key = fold(payload.replace("_", " ").replace("-", " "))
    if not key:
        return None
    for tr in c.territories:
        if key in (fold(tr.code.replace("-", " ")), fold(tr.name)):
            return tr.code
    return None


def _privacy(turn: _Turn) -> None:
    limits = turn.ctx.limits
    turn.say(
        "privacy.notice",
        version=limits.privacy_notice_version,
        ttl_days=max(1, limits.draft_ttl.days),
    )


def _language_choices() -> tuple[Choice, ...]:
    return tuple(Choice(f"lang:{lang}", t(lang, f"lang.name.{lang}")) for lang in CATALOGUES)


def _detour(turn: _Turn, trigger: str) -> None:
    conv = turn.conv
    origin = conv.state
    if _fire(conv, trigger) and origin not in ("confirm_cancel", "confirm_delete"):
        # remember where to come back to (and whether we were editing from the review)
        conv.answers["_return"] = origin
        conv.answers["_return_resume"] = conv.resume
    turn.prompt()


def _leave_detour(turn: _Turn) -> None:
    conv = turn.conv
    origin = str(conv.answers.pop("_return", "new"))
    conv.resume = conv.answers.pop("_return_resume", None)
    _fire(conv, f"resume_{origin}")


# --- choices ----------------------------------------------------------------------------------


def _choice(turn: _Turn, event: ChoiceEvent) -> None:
    conv = turn.conv
    if event.version is not None and event.version != conv.version:
        _stale(turn)
        return
    choice = event.choice
    if choice.startswith("lang:"):
        _set_language(turn, choice[5:])
        return
    if choice == "mine" and conv.state == "done":
        turn.effects.append(ListContributions())
        return
    handler = _CHOICE_HANDLERS.get(conv.state)
    if handler is None or not handler(turn, choice):
        _stale(turn)


def _stale(turn: _Turn) -> None:
    turn.say("channel.stale_choice")
    turn.prompt()


def _set_language(turn: _Turn, lang: str) -> None:
    if lang == "keep" or lang not in CATALOGUES:
        turn.prompt()
        return
    turn.conv.lang = lang
    turn.effects.append(SetLanguage(lang))
    turn.say("lang.set")
    turn.prompt()


def _on_consent(turn: _Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "consent:yes":
        version = turn.ctx.limits.privacy_notice_version
        conv.consent_version = version
        turn.effects.append(RecordConsent(version))
        if _fire(conv, "accept"):
            _say_kept_territory(turn)
            turn.prompt()
        return True
    if choice == "consent:no":
        conv.answers.clear()
        _fire(conv, "decline")
        conv.consent_version = None
        turn.effects.append(DeleteMyData())
        turn.say("consent.declined")
        return True
    if choice == "consent:read":
        _privacy(turn)
        turn.prompt()
        return True
    return False


def _say_kept_territory(turn: _Turn) -> None:
    """When the territory step was skipped (deep link, next contribution), say which one holds."""
    if turn.conv.state == "theme":
        territory = turn.ctx.campaign.territory(str(turn.conv.answers["territory"]))
        turn.say("territory.preselected", territory=territory.name if territory else "")


def _on_territory(turn: _Turn, choice: str) -> bool:
    if not choice.startswith("t:"):
        return False
    code = choice[2:]
    candidates = turn.conv.answers.get("_candidates")
    if turn.ctx.campaign.territory(code) is None or (candidates and code not in candidates):
        return False
    _select_territory(turn, code)
    return True


def _select_territory(turn: _Turn, code: str) -> None:
    conv = turn.conv
    conv.answers["territory"] = code
    conv.answers.pop("_candidates", None)
    _fire(conv, "set_territory")
    _after_move(turn)


def _on_theme(turn: _Turn, choice: str) -> bool:
    if not choice.startswith("th:"):
        return False
    code = choice[3:]
    conv = turn.conv
    if turn.ctx.campaign.theme(code) is None:
        return False
    conv.answers["theme"] = code
    if code != "5":
        conv.answers.pop("custom_theme", None)
    _fire(conv, "set_theme")
    _after_move(turn)
    return True


def _on_levers(turn: _Turn, choice: str) -> bool:
    if choice != "skip":
        return False
    turn.conv.answers["levers"] = None
    _fire(turn.conv, "set_levers")
    _after_move(turn)
    return True


def _on_profile(turn: _Turn, choice: str) -> bool:
    if not choice.startswith("p:"):
        return False
    code = choice[2:]
    if code != "-" and all(p.code != code for p in turn.ctx.campaign.profiles):
        return False
    turn.conv.answers["profile"] = None if code == "-" else code
    _fire(turn.conv, "set_profile")
    _after_move(turn)
    return True


def _on_review(turn: _Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "send":
        _submit(turn)
        return True
    if choice == "discard":
        _detour(turn, "cancel")
        return True
    if choice.startswith("edit:") and choice[5:] in EDITABLE:
        _fire(conv, f"edit_{choice[5:]}")
        conv.resume = "review"
        turn.prompt()
        return True
    return False


def _on_done(turn: _Turn, choice: str) -> bool:
    if choice != "new":
        return False
    conv = turn.conv
    _fire(conv, "again")
    _say_kept_territory(turn)
    turn.prompt()
    return True


def _on_confirm_cancel(turn: _Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "cancel:yes":
        conv.answers.pop("_return", None)
        conv.answers.pop("_return_resume", None)
        _clear_draft(conv)
        _fire(conv, "discard")
        turn.say("cancel.done")
        turn.prompt()
        return True
    if choice == "cancel:no":
        _leave_detour(turn)
        turn.prompt()
        return True
    return False


def _on_confirm_delete(turn: _Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "delete:yes":
        lang = conv.lang
        fresh = Conversation(state="new", lang=lang, version=conv.version)
        turn.conv.__dict__.update(fresh.__dict__)
        turn.effects.append(DeleteMyData())
        turn.say("delete.done")
        return True
    if choice == "delete:no":
        _leave_detour(turn)
        turn.say("delete.kept")
        turn.prompt()
        return True
    return False


_CHOICE_HANDLERS: dict[str, Callable[[_Turn, str], bool]] = {
    "new": _on_consent,
    "consent": _on_consent,
    "territory": _on_territory,
    "theme": _on_theme,
    "levers": _on_levers,
    "profile": _on_profile,
    "review": _on_review,
    "done": _on_done,
    "confirm_cancel": _on_confirm_cancel,
    "confirm_delete": _on_confirm_delete,
}


# --- text -------------------------------------------------------------------------------------


def _text(turn: _Turn, raw: str) -> None:
    conv = turn.conv
    state = conv.state
    if state == "new":
        _greet(turn)
        return
    if state == "territory":
        _territory_text(turn, raw)
        return
    if state in FREE_TEXT_STATES:
        _free_text(turn, raw)
        return
    # a step with choices: a typed label (or the start of one) picks it
    key = fold(raw)
    if key:
        for lang in (conv.lang, *(other for other in CATALOGUES if other != conv.lang)):
            shown = Conversation.from_dict({**conv.to_dict(), "lang": lang})
            for reply in prompt_for(shown, turn.ctx):
                for choice in reply.choices:
                    if fold(choice.label) == key:
                        _choice(turn, ChoiceEvent(choice.id))
                        return
    if state == "consent":
        turn.say("consent.required")
        turn.prompt()
        return
    turn.say("text.expected_choice")
    turn.prompt()


def _territory_text(turn: _Turn, raw: str) -> None:
    c = turn.ctx.campaign
    text = clean_text(raw)[:200]
    candidates = turn.conv.answers.get("_candidates")
    if candidates:  # a typed label among the candidates
        for tr in c.territories:
            if tr.code in candidates and fold(tr.name) == fold(text):
                _select_territory(turn, tr.code)
                return
    match = places.resolve(text, c)
    if match.status == "one":
        territory = c.territory(match.territories[0])
        turn.say("territory.chosen", territory=territory.name if territory else match.label)
        _select_territory(turn, match.territories[0])
    elif match.status == "several":
        turn.conv.answers["_candidates"] = list(match.territories)
        turn.say("territory.several", place=match.label)
        turn.prompt()
    elif match.status == "outside":
        turn.say("territory.outside", place=match.label, region=c.region)
        turn.prompt()
    else:
        turn.say("territory.unknown")
        turn.prompt()


def _free_text(turn: _Turn, raw: str) -> None:
    conv = turn.conv
    state = conv.state
    limits = turn.ctx.limits
    if state == "custom_theme":
        text = clean_text(raw)
        if count_letters(text) < 3:
            turn.say("custom_theme.too_short", min=3)
            turn.prompt()
            return
        if len(text) > limits.custom_theme_max:
            turn.say("custom_theme.too_long", count=len(text), max=limits.custom_theme_max)
            turn.prompt()
            return
        conv.answers["custom_theme"] = text
        _fire(conv, "set_custom_theme")
        _after_move(turn)
        return
    max_chars = limits.levers_max if state == "levers" else limits.text_max
    checked = check_text(raw, min_chars=limits.text_min, max_chars=max_chars)
    if checked.text and _looks_like_a_choice(checked.text, turn):
        turn.say("text.looks_like_choice")
        turn.prompt()
        return
    if checked.error:
        turn.say(checked.error, **dict(checked.params))
        turn.prompt()
        return
    conv.answers[state] = checked.text
    detected = detect_language(
        checked.text,
        conv.lang,
        min_letters=limits.langdetect_min_letters,
        min_confidence=limits.langdetect_min_confidence,
    )
    conv.answers[f"{state}_lang"] = detected.lang
    _fire(conv, f"set_{state}")
    offer = (
        detected.confident
        and detected.lang != conv.lang
        and detected.lang in CATALOGUES
        and not conv.answers.get("_lang_offered")
    )
    if offer:
        conv.answers["_lang_offered"] = True
        turn.replies.append(
            Reply(
                t(
                    conv.lang,
                    "lang.offer_switch",
                    language=t(conv.lang, f"lang.in.{detected.lang}"),
                ),
                (
                    Choice(f"lang:{detected.lang}", t(detected.lang, f"lang.name.{detected.lang}")),
                    Choice("lang:keep", t(conv.lang, "lang.keep")),
                ),
            )
        )
    _after_move(turn)


def _looks_like_a_choice(text: str, turn: _Turn) -> bool:
    """A button label typed where words are expected (e.g. "Envoyer" at the need step)."""
    if len(text) > 60:
        return False
    key = fold(text)
    return key in _choice_labels(turn.ctx.campaign)


_LABELS: dict[int, tuple[CampaignView, frozenset[str]]] = {}


def _choice_labels(c: CampaignView) -> frozenset[str]:
    """Every button label, in every language (a citizen may copy either); cached per campaign."""
    cached = _LABELS.get(id(c))
    if cached is not None and cached[0] is c:
        return cached[1]
    labels: set[str] = set()
    for lang in CATALOGUES:
        for th in (*c.themes, *c.extra_themes):
            labels.update((fold(th.short(lang)), fold(th.label(lang))))
        labels.update(fold(p.label(lang)) for p in c.profiles)
        labels.update(fold(t(lang, msg_id)) for msg_id in _BUTTON_IDS)
    labels.discard("")
    frozen = frozenset(labels)
    if len(_LABELS) > 16:
        _LABELS.clear()
    _LABELS[id(c)] = (c, frozen)
    return frozen


_BUTTON_IDS = (
    "consent.accept",
    "consent.decline",
    "consent.read",
    "theme.other",
    "levers.skip",
    "profile.skip",
    "review.send",
    "review.cancel",
    *(f"review.edit_{name}" for name in EDITABLE),
    "done.new",
    "done.mine",
    "cancel.yes",
    "cancel.no",
    "delete.yes",
    "delete.no",
    "lang.keep",
)


# --- moves, drafts, submission ------------------------------------------------------------


def _after_move(turn: _Turn) -> None:
    """After a step is answered: leave edit mode when back at the review, ask the next step."""
    conv = turn.conv
    if conv.state == "review":
        conv.resume = None
    turn.prompt()


def _has_draft(conv: Conversation) -> bool:
    """Whether the citizen has started a contribution (beyond the territory)."""
    if conv.state == "confirm_cancel":
        return True
    if conv.state not in DRAFT_STATES:
        return False
    return any(conv.answers.get(k) for k in ("theme", "need", "solution", "levers", "custom_theme"))


def _clear_draft(conv: Conversation) -> None:
    """Forget the draft's answers; keep the territory for the next contribution."""
    territory = conv.answers.get("territory")
    conv.answers.clear()
    if territory:
        conv.answers["territory"] = territory
    conv.resume = None


def _expire(turn: _Turn) -> None:
    conv = turn.conv
    _clear_draft(conv)
    conv.state = "territory" if conv.consent_version else "new"
    turn.say("draft.expired")
    turn.prompt()


def _submit(turn: _Turn) -> None:
    conv = turn.conv
    a = conv.answers
    limits = turn.ctx.limits
    turn.effects.append(
        SubmitContribution(
            draft_id=conv.draft_id,
            territory=str(a["territory"]),
            theme=str(a["theme"]),
            custom_theme=a.get("custom_theme") if a.get("theme") == "5" else None,
            need=str(a["need"]),
            solution=str(a["solution"]),
            levers=a.get("levers") or None,
            profile=a.get("profile") or None,
            language=_contribution_language(conv),
            consent_version=conv.consent_version or limits.privacy_notice_version,
        )
    )
    conv.draft_id += 1
    _clear_draft(conv)
    _fire(conv, "send")


def _contribution_language(conv: Conversation) -> str:
    """The language of the longest free-text answer (each was detected when typed)."""
    answered = [k for k in ("need", "solution", "levers") if conv.answers.get(k)]
    if not answered:
        return conv.lang
    longest = max(answered, key=lambda k: len(str(conv.answers[k])))
    return str(conv.answers.get(f"{longest}_lang") or conv.lang)


def render_submitted(conv: Conversation, references: Sequence[str], ctx: Context) -> list[Reply]:
    """Thanks with the reference(s) of what was just stored, then what next."""
    lang = conv.lang
    replies = [Reply(t(lang, "submitted", reference=ref)) for ref in references]
    return replies + prompt_for(conv, ctx)


def render_contributions(
    conv: Conversation, items: Sequence[ContributionSummary], ctx: Context
) -> list[Reply]:
    """The citizen's contributions (newest first), then the current step again."""
    lang = conv.lang
    if not items:
        replies = [Reply(t(lang, "mine.none"))]
    else:
        lines = [t(lang, "mine.header", count=len(items))]
        for item in items:
            excerpt = (
                item.need_excerpt
                if len(item.need_excerpt) <= 120
                else item.need_excerpt[:117] + "…"
            )
            lines.append(
                t(
                    lang,
                    "mine.item",
                    reference=item.reference,
                    date=item.created_at.strftime("%d/%m/%Y"),
                    territory=item.territory,
                    theme=item.theme,
                    status=t(lang, f"status.{item.status}"),
                    excerpt=excerpt,
                )
            )
        replies = [Reply("\n\n".join(lines))]
    return replies + prompt_for(conv, ctx)


# --- campaign dates ---------------------------------------------------------------------------


def local_today(ctx: Context) -> date:
    return ctx.now.astimezone(ZoneInfo(ctx.campaign.timezone)).date()


def _campaign_closed(turn: _Turn) -> bool:
    today = local_today(turn.ctx)
    c = turn.ctx.campaign
    return today < c.opens_on or today > c.closes_on


def _closed_ok(conv: Conversation, event: Event) -> bool:
    """While closed, a citizen can still answer the delete confirmation and change language."""
    if isinstance(event, ChoiceEvent):
        return event.choice.startswith(("lang:", "delete:")) or event.choice == "mine"
    return False


def _say_closed(turn: _Turn) -> None:
    c = turn.ctx.campaign
    if local_today(turn.ctx) < c.opens_on:
        turn.say("closed.not_yet", campaign=c.name, opens=_fmt_date(c.opens_on, turn.lang))
    else:
        turn.say("closed.ended", campaign=c.name, closed=_fmt_date(c.closes_on, turn.lang))


def _fmt_date(day: date, lang: str) -> str:
    from babel.dates import format_date

    return format_date(day, format="long", locale=lang)
