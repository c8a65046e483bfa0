"""The steps of the conversation: one :class:`Step` per state of the machine, in :data:`STEPS`.

A step says what it asks (its prompt), what a choice picked there does, and what text typed
there does. Handlers work on a :class:`Turn` (the conversation being changed, what it says,
what storage must do); they store answers and fire the machine's triggers
(:func:`dialogs.machine.fire`), never set the state themselves. To add a step: a state and
its transitions in :mod:`dialogs.machine`, its prompt in :mod:`dialogs.prompts`, its messages
in the catalogues, and its entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dialogs import machine, places, prompts
from dialogs.drafts import clear_draft, forget_bookkeeping, forget_everything, set_territory
from dialogs.language import detect_language
from dialogs.machine import EDITABLE, fire
from dialogs.messages import CATALOGUES, t, written_in
from dialogs.model import (
    AttachmentEvent,
    Choice,
    ChoiceEvent,
    Context,
    Conversation,
    DeleteMyData,
    Effect,
    ListContributions,
    RecordConsent,
    Reply,
    SetLanguage,
    SubmitContribution,
    WithdrawContribution,
)
from dialogs.pii import find_personal_data
from dialogs.validation import check_text, clean_text, count_letters, fold, parse_reference

# --- one turn ---------------------------------------------------------------------------------


@dataclass
class Turn:
    """One event being handled: the conversation (a copy, changed in place), the replies and
    the effects collected so far (no I/O anywhere)."""

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
        """Ask the current step (again)."""
        self.replies.extend(prompt_for(self.conv, self.ctx))

    def say_closed(self) -> None:
        self.replies.append(prompts.closed_notice(self.lang, self.ctx))


# --- the table of steps -----------------------------------------------------------------------

#: A choice picked at a step: True when the step offers it (and it was applied).
ChoiceHandler = Callable[[Turn, str], bool]
#: Text typed at a step.
TextHandler = Callable[[Turn, str], None]


@dataclass(frozen=True)
class Step:
    """One state of the conversation: what it asks, what it does with an answer, and the
    hint given when something else than an answer comes (a photo, a sticker...)."""

    prompt: prompts.Prompt
    on_choice: ChoiceHandler
    on_text: TextHandler
    hint: str = "text.expected_choice"


def prompt_for(conv: Conversation, ctx: Context) -> list[Reply]:
    """What the conversation asks now: the question put aside the step when there is one
    (never two questions open at once), else the step's own (text and choices)."""
    if conv.aside:
        asked = prompts.ask_aside(conv, ctx)
        if asked:
            return asked
    return STEPS[conv.state].prompt(conv, ctx)


def choose(turn: Turn, event: ChoiceEvent) -> None:
    """A choice picked: the language and "my contributions" anywhere they are offered, else
    the current step's; one from an older step (or forged) is answered "no longer offered"."""
    conv = turn.conv
    if event.version is not None and event.version != conv.version:
        _stale(turn)
        return
    choice = event.choice
    if choice.startswith("lang:"):
        _set_language(turn, choice[5:])
        return
    if choice.startswith("aside:"):
        if not (conv.aside and _on_aside(turn, choice[6:])):
            _stale(turn)
        return
    if choice == "mine" and conv.state == "done":
        turn.effects.append(ListContributions())
        return
    if choice.startswith("w:"):  # "withdraw" under one of "my contributions"
        ask_withdraw(turn, choice[2:])
        return
    if not STEPS[conv.state].on_choice(turn, choice):
        _stale(turn)


def answer_text(turn: Turn, raw: str) -> None:
    """Text typed at the current step (or at the question put aside it)."""
    if turn.conv.aside:
        _aside_text(turn, raw)
        return
    STEPS[turn.conv.state].on_text(turn, raw)


def attachment(turn: Turn, event: AttachmentEvent) -> None:
    """A photo, a voice note, a sticker, a file, a location, a contact...: the step's own hint
    (with words for what was sent when it can be named), then its question again."""
    conv = turn.conv
    hint = "text.expected_choice" if conv.aside else STEPS[conv.state].hint
    text = t(turn.lang, hint)
    if event.kind in ("location", "contact"):
        text = t(turn.lang, f"attachment.{event.kind}") + " " + text
    turn.replies.append(Reply(text))
    if conv.state == "new":
        greet(turn)
    else:
        turn.prompt()


def _stale(turn: Turn) -> None:
    turn.say("channel.stale_choice")
    turn.prompt()


def _set_language(turn: Turn, lang: str) -> None:
    if (turn.conv.aside or "").startswith("lang:"):
        turn.conv.aside = None  # the offer to switch is answered
    if lang == "keep" or lang not in CATALOGUES:
        turn.prompt()
        return
    turn.conv.lang = lang
    turn.effects.append(SetLanguage(lang))
    turn.say("lang.set")
    if turn.conv.state == "new":
        greet(turn)  # the greeting in that language, and the choice kept (as after /start)
    else:
        turn.prompt()


def _no_choice(turn: Turn, choice: str) -> bool:
    """A step that asks for words offers no choice."""
    return False


# --- new, consent -----------------------------------------------------------------------------


def greet(turn: Turn) -> None:
    """Welcome and the privacy question (from ``new``, or again on /start)."""
    turn.replies.extend(prompts.ask_consent(turn.conv, turn.ctx, welcome=True))
    fire(turn.conv, "greet")


def _greet_text(turn: Turn, raw: str) -> None:
    greet(turn)


def _on_consent(turn: Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "consent:yes":
        version = turn.ctx.limits.privacy_notice_version
        conv.consent_version = version
        turn.effects.append(RecordConsent(version))
        if fire(conv, "accept"):
            _say_kept_territory(turn)
            turn.prompt()
        return True
    if choice == "consent:no":
        conv.answers.clear()
        forget_bookkeeping(conv)
        fire(conv, "decline")
        conv.consent_version = None
        turn.effects.append(DeleteMyData())
        turn.say("consent.declined")
        return True
    if choice == "consent:read":
        privacy(turn)
        turn.prompt()
        return True
    return False


def privacy(turn: Turn) -> None:
    notice = prompts.privacy_notice(turn.lang, turn.ctx.campaign, turn.ctx.limits)
    turn.replies.append(Reply(notice))


def _say_kept_territory(turn: Turn) -> None:
    """When the territory step was skipped (deep link, next contribution), say which one holds."""
    if turn.conv.state == "theme":
        territory = turn.ctx.campaign.territory(str(turn.conv.answers["territory"]))
        turn.say("territory.preselected", territory=territory.name if territory else "")


# --- territory --------------------------------------------------------------------------------


def _on_territory(turn: Turn, choice: str) -> bool:
    if not choice.startswith("t:"):
        return False
    code = choice[2:]
    candidates = turn.conv.territory_candidates
    if turn.ctx.campaign.territory(code) is None or (candidates and code not in candidates):
        return False
    _select_territory(turn, code)
    return True


def _select_territory(turn: Turn, code: str) -> None:
    set_territory(turn.conv, code)
    fire(turn.conv, "set_territory")
    after_move(turn)


def _territory_text(turn: Turn, raw: str) -> None:
    """A postal code, a commune or a department typed: the territory when only one fits, else
    the choices narrowed to those that do."""
    c = turn.ctx.campaign
    text = clean_text(raw)[:200]
    candidates = turn.conv.territory_candidates
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
        turn.conv.territory_candidates = tuple(match.territories)
        turn.say("territory.several", place=match.label)
        turn.prompt()
    elif match.status == "outside":
        turn.say("territory.outside", place=match.label, region=c.region)
        turn.prompt()
    else:
        turn.say("territory.unknown")
        turn.prompt()


# --- theme, custom theme ----------------------------------------------------------------------


def _on_theme(turn: Turn, choice: str) -> bool:
    if not choice.startswith("th:"):
        return False
    code = choice[3:]
    conv = turn.conv
    if turn.ctx.campaign.theme(code) is None:
        return False
    conv.answers["theme"] = code
    if code != "5":
        conv.answers.pop("custom_theme", None)
    fire(conv, "set_theme")
    after_move(turn)
    return True


def _custom_theme_text(turn: Turn, raw: str) -> None:
    conv = turn.conv
    limits = turn.ctx.limits
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
    fire(conv, "set_custom_theme")
    after_move(turn)


# --- need, solution, levers: words ------------------------------------------------------------


def _free_text(turn: Turn, raw: str) -> None:
    """The need, the solution or the levers: checked (the optional levers have no minimum
    length: "CPTS, ARS" says it), then held for a question when it looks like it holds
    personal data, else stored."""
    conv = turn.conv
    state = conv.state
    limits = turn.ctx.limits
    if state == "levers":
        min_chars, max_chars = 1, limits.levers_max
    else:
        min_chars, max_chars = limits.text_min, limits.text_max
    checked = check_text(raw, min_chars=min_chars, max_chars=max_chars)
    if checked.text and prompts.is_a_button_label(checked.text, turn.ctx.campaign):
        turn.say("text.looks_like_choice")
        turn.prompt()
        return
    if checked.error:
        turn.say(checked.error, **dict(checked.params))
        turn.prompt()
        return
    if find_personal_data(checked.text, titles=True):
        conv.aside, conv.held = "pii", checked.text
        turn.prompt()
        return
    _store_text(turn, checked.text)


def _store_text(turn: Turn, text: str) -> None:
    """Store the answer with the language it is written in, and go on; switching to that
    language is offered once per draft when it is not the interface's (asked alone: the next
    step's question comes once it is answered)."""
    conv = turn.conv
    state = conv.state
    limits = turn.ctx.limits
    conv.answers[state] = text
    detected = detect_language(
        text,
        conv.lang,
        min_letters=limits.langdetect_min_letters,
        min_confidence=limits.langdetect_min_confidence,
    )
    conv.answers[f"{state}_lang"] = detected.lang
    fire(conv, f"set_{state}")
    offer = (
        detected.confident
        and detected.lang != written_in(conv.lang)  # FALC is French
        and detected.lang in CATALOGUES
        and not conv.lang_offered
    )
    if offer:
        conv.lang_offered = True
        conv.aside = f"lang:{detected.lang}"
    after_move(turn)


# --- a question put aside the step (Conversation.aside) ---------------------------------------


def _on_aside(turn: Turn, answer: str) -> bool:
    """The answer to the question put aside the step; False when it does not fit it."""
    conv = turn.conv
    aside = conv.aside or ""
    if aside == "pii" and answer in ("keep", "rewrite"):
        held, conv.aside, conv.held = conv.held, None, None
        if answer == "keep" and held:
            _store_text(turn, held)
        else:
            turn.prompt()
            if held and turn.replies:  # the text back in the box, to take the details out
                turn.replies[-1] = replace(turn.replies[-1], draft=held)
        return True
    if aside == "restart" and answer in ("restart", "continue"):
        conv.aside = None
        if answer == "restart" and fire(conv, "restart"):
            clear_draft(conv)
            turn.say("restart.done")
        turn.prompt()
        return True
    if aside.startswith("territory:") and answer in ("move", "stay"):
        conv.aside = None
        code = aside.partition(":")[2]
        territory = turn.ctx.campaign.territory(code)
        if answer == "move" and territory is not None:
            set_territory(conv, code)
            turn.say("territory.changed", territory=territory.name)
        turn.prompt()
        return True
    return False


def _aside_text(turn: Turn, raw: str) -> None:
    """Text typed while a question is put aside the step: one of its buttons' labels picks
    it; other text leaves the question unanswered (the answer held is not kept, the
    language, the draft and the territory stay as they are) and answers the step."""
    conv = turn.conv
    key = fold(raw)
    if key:
        for reply in prompt_for(conv, turn.ctx):
            for choice in reply.choices:
                if fold(choice.label) == key:
                    choose(turn, ChoiceEvent(choice.id))
                    return
    conv.aside = conv.held = None
    STEPS[conv.state].on_text(turn, raw)


def ask_restart(turn: Turn) -> None:
    """/start with a draft under way: start again, or continue?"""
    turn.conv.aside = "restart"
    turn.prompt()


def ask_territory_change(turn: Turn, code: str) -> None:
    """/start <territory> (a poster) with a draft under way for another: change it?"""
    turn.conv.aside = f"territory:{code}"
    turn.prompt()


def _on_levers(turn: Turn, choice: str) -> bool:
    if choice != "skip":
        return False
    turn.conv.answers["levers"] = None
    fire(turn.conv, "set_levers")
    after_move(turn)
    return True


# --- profile, review, done --------------------------------------------------------------------


def _on_profile(turn: Turn, choice: str) -> bool:
    if not choice.startswith("p:"):
        return False
    code = choice[2:]
    if code != "-" and all(p.code != code for p in turn.ctx.campaign.profiles):
        return False
    turn.conv.answers["profile"] = None if code == "-" else code
    fire(turn.conv, "set_profile")
    after_move(turn)
    return True


def _on_review(turn: Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "send":
        _submit(turn)
        return True
    if choice == "discard":
        detour(turn, "cancel")
        return True
    if choice.startswith("edit:") and choice[5:] in EDITABLE:
        fire(conv, f"edit_{choice[5:]}")
        conv.resume = "review"
        turn.prompt()
        return True
    return False


def _submit(turn: Turn) -> None:
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
    clear_draft(conv)
    fire(conv, "send")


def _contribution_language(conv: Conversation) -> str:
    """The language of the longest free-text answer (each was detected when typed)."""
    answered = [k for k in ("need", "solution", "levers") if conv.answers.get(k)]
    if not answered:
        return conv.lang
    longest = max(answered, key=lambda k: len(str(conv.answers[k])))
    return str(conv.answers.get(f"{longest}_lang") or conv.lang)


def _on_done(turn: Turn, choice: str) -> bool:
    if choice != "new":
        return False
    fire(turn.conv, "again")
    _say_kept_territory(turn)
    turn.prompt()
    return True


# --- confirmations ----------------------------------------------------------------------------


def detour(turn: Turn, trigger: str) -> None:
    """Go to a confirmation (``cancel``, ``delete``), remembering where "no" comes back to."""
    conv = turn.conv
    origin = conv.state
    resume = conv.resume
    if fire(conv, trigger) and origin not in machine.CONFIRMATIONS:
        conv.return_to = origin
        conv.return_resume = resume
    turn.prompt()


def _leave_detour(turn: Turn) -> None:
    conv = turn.conv
    origin = conv.return_to or "new"
    conv.resume = conv.return_resume
    conv.return_to = conv.return_resume = None
    fire(conv, f"resume_{origin}")


def _on_confirm_cancel(turn: Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "cancel:yes":
        clear_draft(conv)
        fire(conv, "discard")
        turn.say("cancel.done")
        turn.prompt()
        return True
    if choice == "cancel:no":
        _leave_detour(turn)
        turn.prompt()
        return True
    return False


def ask_withdraw(turn: Turn, reference: str) -> None:
    """Withdraw this contribution? (a button under "my contributions", ``/withdraw REF``).
    A malformed reference is said so; someone who never consented (or erased everything)
    has none to withdraw; else the confirmation, "no" coming back to where they were. Whose
    it is, storage checks once confirmed (someone else's is answered as unknown)."""
    conv = turn.conv
    parsed = parse_reference(reference)
    if parsed is None:
        turn.say("withdraw.malformed")
        turn.prompt()
        return
    if conv.consent_version is None:
        turn.say("withdraw.unknown", reference=parsed)
        turn.prompt()
        return
    conv.withdrawing = parsed
    if conv.state == "confirm_withdraw":
        turn.prompt()  # another reference asked while confirming: that one now
    else:
        detour(turn, "withdraw")


def _on_confirm_withdraw(turn: Turn, choice: str) -> bool:
    """Yes: storage withdraws it and says what became of it (then the step they came from);
    no: nothing changes."""
    conv = turn.conv
    if choice not in ("withdraw:yes", "withdraw:no"):
        return False
    reference, conv.withdrawing = conv.withdrawing, None
    _leave_detour(turn)
    if choice == "withdraw:yes" and reference:
        turn.effects.append(WithdrawContribution(reference))
        return True
    turn.say("withdraw.kept")
    turn.prompt()
    return True


def _on_confirm_delete(turn: Turn, choice: str) -> bool:
    conv = turn.conv
    if choice == "delete:yes":
        fire(conv, "erase")
        forget_everything(conv)
        turn.effects.append(DeleteMyData())
        turn.say("delete.done")
        return True
    if choice == "delete:no":
        _leave_detour(turn)
        turn.say("delete.kept")
        turn.prompt()
        return True
    return False


# --- text at a step with choices --------------------------------------------------------------


def _typed_choice(otherwise: str) -> TextHandler:
    """A typed label (in any language) picks that choice; other text is answered ``otherwise``
    and the step asked again."""

    def on_text(turn: Turn, raw: str) -> None:
        conv = turn.conv
        key = fold(raw)
        if key:
            step = STEPS[conv.state]
            for lang in (conv.lang, *(other for other in CATALOGUES if other != conv.lang)):
                shown = Conversation.from_dict({**conv.to_dict(), "lang": lang})
                for reply in step.prompt(shown, turn.ctx):
                    for choice in reply.choices:
                        if fold(choice.label) == key:
                            choose(turn, ChoiceEvent(choice.id))
                            return
        turn.say(otherwise)
        turn.prompt()

    return on_text


# --- drafts -----------------------------------------------------------------------------------


def after_move(turn: Turn) -> None:
    """After a step is answered: leave edit mode when back at the review, ask the next step."""
    conv = turn.conv
    if conv.state == "review":
        conv.resume = None
    turn.prompt()


def expire_draft(turn: Turn) -> bool:
    """A draft idle too long: forgotten (the territory kept), said, territory asked again.
    False when there is no draft to expire."""
    if not fire(turn.conv, "expire"):
        return False
    clear_draft(turn.conv)
    turn.say("draft.expired")
    turn.prompt()
    return True


_EXPECTED_CHOICE = _typed_choice("text.expected_choice")

_WORDS = "channel.unsupported"  # a step that reads words: "write your answer"
_CONFIRM = "confirm.hint"

STEPS: dict[str, Step] = {
    "new": Step(prompts.ask_welcome, _on_consent, _greet_text, _WORDS),
    "consent": Step(
        prompts.ask_consent, _on_consent, _typed_choice("consent.required"), "consent.required"
    ),
    "territory": Step(prompts.ask_territory, _on_territory, _territory_text, "territory.hint"),
    "theme": Step(prompts.ask_theme, _on_theme, _EXPECTED_CHOICE, "theme.hint"),
    "custom_theme": Step(
        prompts.ask_only("custom_theme.prompt"), _no_choice, _custom_theme_text, _WORDS
    ),
    "need": Step(prompts.ask_only("need.prompt"), _no_choice, _free_text, _WORDS),
    "solution": Step(prompts.ask_only("solution.prompt"), _no_choice, _free_text, _WORDS),
    "levers": Step(prompts.ask_levers, _on_levers, _free_text, "levers.hint"),
    "profile": Step(prompts.ask_profile, _on_profile, _EXPECTED_CHOICE, "profile.hint"),
    "review": Step(prompts.ask_review, _on_review, _EXPECTED_CHOICE, "review.hint"),
    "done": Step(prompts.ask_done, _on_done, _EXPECTED_CHOICE, "done.hint"),
    "confirm_cancel": Step(prompts.ask_cancel, _on_confirm_cancel, _EXPECTED_CHOICE, _CONFIRM),
    "confirm_delete": Step(prompts.ask_delete, _on_confirm_delete, _EXPECTED_CHOICE, _CONFIRM),
    "confirm_withdraw": Step(
        prompts.ask_withdraw, _on_confirm_withdraw, _EXPECTED_CHOICE, _CONFIRM
    ),
}
assert set(STEPS) == set(machine.STATES), "one step per state of the machine"
