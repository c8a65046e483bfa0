"""What the conversation shows: each step's question and choices, every button's label (to
recognise one typed where words are expected), the review's summary, the citizen's
contributions, the closed-consultation notice. Pure functions of the conversation and its
context; :mod:`dialogs.steps` says which one each state asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from zoneinfo import ZoneInfo

from dialogs.machine import EDITABLE
from dialogs.messages import CATALOGUES, FALC, t, written_in
from dialogs.model import (
    WITHDRAWAL_OUTCOMES,
    CampaignView,
    Choice,
    Context,
    ContributionSummary,
    Conversation,
    Limits,
    MyDataSummary,
    Reply,
)
from dialogs.pii import find_personal_data
from dialogs.validation import fold

#: More territories than this are typed (postal code, commune), not offered as buttons.
MAX_TERRITORY_BUTTONS = 12

Prompt = Callable[[Conversation, Context], list[Reply]]


def _reply(lang: str, msg_id: str, *choices: Choice) -> list[Reply]:
    return [Reply(t(lang, msg_id), tuple(choices))]


def ask_only(msg_id: str) -> Prompt:
    """A step that asks for words: its question and no choice."""

    def ask(conv: Conversation, ctx: Context) -> list[Reply]:
        return _reply(conv.lang, msg_id)

    return ask


def ask_with_choices(msg_id: str, *choices: tuple[str, str]) -> Prompt:
    """A question with fixed choices, each given as (choice id, message id of its label)."""

    def ask(conv: Conversation, ctx: Context) -> list[Reply]:
        lang = conv.lang
        return _reply(lang, msg_id, *(Choice(id_, t(lang, label)) for id_, label in choices))

    return ask


def ask_consent(conv: Conversation, ctx: Context, *, welcome: bool = False) -> list[Reply]:
    """The privacy question; ``welcome``: after saying who we are (the first message)."""
    lang = conv.lang
    c = ctx.campaign
    text = t(lang, "consent.prompt")
    if welcome:
        text = t(lang, "welcome", campaign=c.name, region=c.region) + "\n\n" + text
    return [
        Reply(
            text,
            (
                Choice("consent:yes", t(lang, "consent.accept")),
                Choice("consent:no", t(lang, "consent.decline")),
                Choice("consent:read", t(lang, "consent.read")),
                _easy_french_choice(lang),
            ),
        )
    ]


def _easy_french_choice(lang: str) -> Choice:
    """At the greeting: « Français facile », or from it, back to French."""
    other = "fr" if lang == FALC else FALC
    return Choice(f"lang:{other}", t(other, f"lang.name.{other}"))


def ask_welcome(conv: Conversation, ctx: Context) -> list[Reply]:
    return ask_consent(conv, ctx, welcome=True)


def ask_territory(conv: Conversation, ctx: Context) -> list[Reply]:
    """The territories as buttons (those a typed place narrowed to), or "type a place"."""
    candidates = conv.territory_candidates
    shown = [tr for tr in ctx.campaign.territories if not candidates or tr.code in candidates]
    if candidates or len(shown) <= MAX_TERRITORY_BUTTONS:
        return _reply(
            conv.lang, "territory.prompt", *(Choice(f"t:{tr.code}", tr.name) for tr in shown)
        )
    return _reply(conv.lang, "territory.prompt_type")


def ask_theme(conv: Conversation, ctx: Context) -> list[Reply]:
    lang = conv.lang
    c = ctx.campaign
    choices = [Choice(f"th:{th.code}", th.short(lang)) for th in c.themes if th.code != "5"]
    choices += [Choice(f"th:{th.code}", th.short(lang)) for th in c.extra_themes]
    if c.theme("5") is not None:
        choices.append(Choice("th:5", t(lang, "theme.other")))
    return _reply(lang, "theme.prompt", *choices)


ask_levers = ask_with_choices("levers.prompt", ("skip", "levers.skip"))


def ask_profile(conv: Conversation, ctx: Context) -> list[Reply]:
    lang = conv.lang
    return _reply(
        lang,
        "profile.prompt",
        *(Choice(f"p:{p.code}", p.label(lang)) for p in ctx.campaign.profiles),
        Choice("p:-", t(lang, "profile.skip")),
    )


def ask_review(conv: Conversation, ctx: Context) -> list[Reply]:
    lang = conv.lang
    choices = (
        Choice("send", t(lang, "review.send")),
        *(Choice(f"edit:{name}", t(lang, f"review.edit_{name}")) for name in EDITABLE),
        Choice("discard", t(lang, "review.cancel")),
    )
    return [Reply(_summary(conv, ctx.campaign), choices)]


ask_done = ask_with_choices("done.prompt", ("new", "done.new"), ("mine", "done.mine"))
ask_cancel = ask_with_choices(
    "cancel.confirm", ("cancel:yes", "cancel.yes"), ("cancel:no", "cancel.no")
)
ask_delete = ask_with_choices(
    "delete.confirm", ("delete:yes", "delete.yes"), ("delete:no", "delete.no")
)


def ask_withdraw(conv: Conversation, ctx: Context) -> list[Reply]:
    """Withdraw this contribution (``conv.withdrawing``)? Yes, or keep it."""
    lang = conv.lang
    return [
        Reply(
            t(lang, "withdraw.confirm", reference=conv.withdrawing or ""),
            (
                Choice("withdraw:yes", t(lang, "withdraw.yes")),
                Choice("withdraw:no", t(lang, "withdraw.no")),
            ),
        )
    ]


# --- a question put aside the step (Conversation.aside) -------------------------------------


def ask_aside(conv: Conversation, ctx: Context) -> list[Reply]:
    """The question put before the step's own; [] when there is none."""
    aside, lang = conv.aside or "", conv.lang
    kind, _, value = aside.partition(":")
    if aside == "pii":
        kinds = dict.fromkeys(f.kind for f in find_personal_data(conv.held or "", titles=True))
        what = ", ".join(t(lang, f"pii.kind.{k}") for k in kinds) or t(lang, "pii.kind.name")
        choices = (
            Choice("aside:rewrite", t(lang, "pii.rewrite")),
            Choice("aside:keep", t(lang, "pii.keep")),
        )
        return [Reply(t(lang, "pii.found", what=what), choices)]
    if kind == "lang" and value in CATALOGUES:
        text = t(lang, "lang.offer_switch", language=t(lang, f"lang.in.{value}"))
        offered = (
            Choice(f"lang:{value}", t(value, f"lang.name.{value}")),
            Choice("lang:keep", t(lang, "lang.keep")),
        )
        return [Reply(text, offered)]
    if aside == "restart":
        return _reply(
            lang,
            "restart.confirm",
            Choice("aside:restart", t(lang, "restart.yes")),
            Choice("aside:continue", t(lang, "restart.no")),
        )
    if kind == "territory":
        new = ctx.campaign.territory(value)
        current = ctx.campaign.territory(str(conv.answers.get("territory", "")))
        if new is not None:
            text = t(
                lang,
                "territory.change_confirm",
                territory=new.name,
                current=current.name if current else t(lang, "review.none"),
            )
            choices = (
                Choice("aside:move", t(lang, "territory.change_yes")),
                Choice("aside:stay", t(lang, "territory.change_no")),
            )
            return [Reply(text, choices)]
    return []


def privacy_notice(lang: str, c: CampaignView, limits: Limits) -> str:
    """The privacy notice: the campaign's controller (or a general wording) and its contact,
    the retention of the settings. The chat's "privacy" command says it, the web chat's
    personal-data page shows it."""
    controller = c.controller
    return t(
        lang,
        "privacy.notice",
        version=limits.privacy_notice_version,
        controller=controller_name(lang, c),
        contact=(
            t(lang, "privacy.contact", contact=controller.contact)
            if controller and controller.contact
            else ""
        ),
        ttl_days=max(1, limits.draft_ttl.days),
        identity_days=max(1, limits.identity_retention.days),
        rejected_days=max(1, limits.rejected_text_retention.days),
    )


def controller_name(lang: str, c: CampaignView) -> str:
    """Who is responsible for the processing, as the privacy notice names it."""
    return c.controller.name if c.controller else t(lang, "privacy.controller_default")


def language_choices() -> tuple[Choice, ...]:
    """Every interface language, each named in itself."""
    return tuple(Choice(f"lang:{lang}", t(lang, f"lang.name.{lang}")) for lang in CATALOGUES)


# --- button labels ---------------------------------------------------------------------------


def is_a_button_label(text: str, c: CampaignView) -> bool:
    """A button label typed where words are expected (e.g. "Envoyer" at the need step)."""
    if len(text) > 60:
        return False
    return fold(text) in _choice_labels(c)


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
    "withdraw.yes",
    "withdraw.no",
    "lang.keep",
    "pii.rewrite",
    "pii.keep",
    "restart.yes",
    "restart.no",
    "territory.change_yes",
    "territory.change_no",
)


# --- the review's summary -------------------------------------------------------------------


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


# --- what storage asks to show ----------------------------------------------------------------


def submitted(conv: Conversation, references: Sequence[str]) -> list[Reply]:
    """Thanks with the reference(s) of what was just stored."""
    return [Reply(t(conv.lang, "submitted", reference=ref)) for ref in references]


#: "Withdraw" buttons under the citizen's contributions, the newest first (the others are
#: withdrawn with ``/withdraw <reference>``).
MAX_WITHDRAW_BUTTONS = 10
#: A button's id must stay short for every channel (Telegram: 64 bytes with the version).
MAX_BUTTON_REFERENCE = 48
#: A contribution withdrawn by its author: listed, never offered again.
WITHDRAWN = "withdrawn"


def contributions(conv: Conversation, items: Sequence[ContributionSummary]) -> list[Reply]:
    """The citizen's contributions (newest first), each still published or waiting with a
    "withdraw" button, or that there is none."""
    lang = conv.lang
    if not items:
        return [Reply(t(lang, "mine.none"))]
    lines = [t(lang, "mine.header", count=len(items))]
    for item in items:
        excerpt = (
            item.need_excerpt if len(item.need_excerpt) <= 120 else item.need_excerpt[:117] + "…"
        )
        if not excerpt.strip():
            excerpt = t(lang, "mine.erased")  # withdrawn: its texts are gone
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
    withdrawable = [
        item.reference
        for item in items
        if item.status != WITHDRAWN and len(item.reference) <= MAX_BUTTON_REFERENCE
    ][:MAX_WITHDRAW_BUTTONS]
    if not withdrawable:
        return [Reply("\n\n".join(lines))]
    lines.append(t(lang, "mine.withdraw_hint"))
    choices = tuple(
        Choice(f"w:{ref}", t(lang, "withdraw.button", reference=ref)) for ref in withdrawable
    )
    return [Reply("\n\n".join(lines), choices)]


def my_data(conv: Conversation, summary: MyDataSummary | None, ctx: Context) -> list[Reply]:
    """What is stored about the citizen, summed up (the file holds the details), or that
    nothing is (and no file comes)."""
    lang = conv.lang
    if summary is None:
        return [Reply(t(lang, "my_data.nothing"))]
    total = sum(count for _, count in summary.contributions)
    if total:
        details = ", ".join(
            t(lang, "my_data.status_count", status=t(lang, f"status.{status}"), count=count)
            for status, count in summary.contributions
        )
        counted = t(lang, "my_data.contributions", count=total, details=details)
    else:
        counted = t(lang, "my_data.contributions_none")
    if summary.consent_version and summary.consent_at is not None:
        day = summary.consent_at.astimezone(ZoneInfo(ctx.campaign.timezone))
        consent = t(
            lang, "my_data.consent", version=summary.consent_version, date=f"{day:%d/%m/%Y}"
        )
    else:
        consent = t(lang, "my_data.no_consent")
    text = t(
        lang,
        "my_data.summary",
        contributions=counted,
        consent=consent,
        draft=t(lang, "my_data.draft_yes" if summary.has_draft else "my_data.draft_no"),
        filename=summary.filename,
    )
    return [Reply(text)]


def withdrawal(conv: Conversation, reference: str, outcome: str) -> list[Reply]:
    """What withdrawing ``reference`` did (:data:`dialogs.model.WITHDRAWAL_OUTCOMES`)."""
    outcome = outcome if outcome in WITHDRAWAL_OUTCOMES else "unknown"
    return [Reply(t(conv.lang, f"withdraw.{outcome}", reference=reference))]


# --- campaign dates ---------------------------------------------------------------------------


def local_today(ctx: Context) -> date:
    return ctx.now.astimezone(ZoneInfo(ctx.campaign.timezone)).date()


def campaign_closed(ctx: Context) -> bool:
    today = local_today(ctx)
    c = ctx.campaign
    return today < c.opens_on or today > c.closes_on


def closed_notice(lang: str, ctx: Context) -> Reply:
    """The consultation is not open yet, or is over (with the date)."""
    c = ctx.campaign
    if local_today(ctx) < c.opens_on:
        return Reply(t(lang, "closed.not_yet", campaign=c.name, opens=_fmt_date(c.opens_on, lang)))
    return Reply(t(lang, "closed.ended", campaign=c.name, closed=_fmt_date(c.closes_on, lang)))


def _fmt_date(day: date, lang: str) -> str:
    from babel.dates import format_date

    return format_date(day, format="long", locale=written_in(lang))
