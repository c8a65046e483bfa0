"""Plain data exchanged with the conversation: events in, replies and effects out.

Nothing here does I/O. A :class:`Conversation` is serialisable data (``to_dict``/``from_dict``)
that storage keeps between events; the one state machine in :mod:`dialogs.machine` acts
on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

#: Version of :meth:`Conversation.to_dict`'s layout. 1: the bookkeeping below was kept in
#: ``answers`` under ``_``-prefixed keys; 2: it has fields of its own.
SCHEMA_VERSION = 2

#: Schema 1's bookkeeping keys in ``answers`` and the fields they became in schema 2.
_V1_KEYS = {
    "_candidates": "territory_candidates",
    "_return": "return_to",
    "_return_resume": "return_resume",
    "_lang_offered": "lang_offered",
}


# --- conversation ---------------------------------------------------------------------------


@dataclass(eq=False)  # eq=False: transitions silently refuses models that compare equal
class Conversation:
    """One citizen's conversation: the state, the answers so far, the language.

    ``version`` counts stored changes (optimistic concurrency: storage refuses a stale one).
    ``answers`` holds only the citizen's answers, JSON-compatible values; the dialog's own
    bookkeeping has typed fields. ``state`` is changed by the machine only
    (:func:`dialogs.machine.fire`).
    """

    state: str = "new"
    lang: str = "fr"
    answers: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    #: ``"review"`` while an answer is being changed from the review (it comes back there).
    resume: str | None = None
    #: Set when the citizen has accepted the privacy notice (its version).
    consent_version: str | None = None
    #: Per-draft identifier, so that a re-sent "send" never creates a second contribution.
    draft_id: int = 0
    #: Territories still offered after a place several of them share (codes); empty: all.
    territory_candidates: tuple[str, ...] = ()
    #: The step a confirmation (cancel, delete) was asked from: "no" goes back there...
    return_to: str | None = None
    #: ... with ``resume`` as it was there (whether an answer was being edited from the review).
    return_resume: str | None = None
    #: Whether the language the citizen seems to write in was offered (once per draft).
    lang_offered: bool = False
    #: A question put before the step's own, answered first (never two questions open):
    #: ``"pii"`` (personal data in the answer just typed: rewrite or keep), ``"lang:<code>"``
    #: (continue in the language the citizen writes in), ``"restart"`` (/start mid-draft:
    #: start again or continue), ``"territory:<code>"`` (a poster's territory mid-draft).
    #: Over when the state changes (:func:`dialogs.machine.fire`).
    aside: str | None = None
    #: The answer held while ``aside`` is ``"pii"`` (stored only if the citizen keeps it).
    held: str | None = None
    #: The reference of the contribution the citizen asked to withdraw, while they confirm
    #: (state ``confirm_withdraw``).
    withdrawing: str | None = None

    def __post_init__(self) -> None:
        # Answers of schema 1 (a stored conversation, older code) carry the bookkeeping under
        # ``_`` keys: it becomes the fields (a field already set wins) and leaves the answers.
        if _V1_KEYS.keys().isdisjoint(self.answers):
            return
        answers = dict(self.answers)
        old = {name: answers.pop(key) for key, name in _V1_KEYS.items() if key in answers}
        self.answers = answers
        if not self.territory_candidates and old.get("territory_candidates"):
            self.territory_candidates = tuple(str(c) for c in old["territory_candidates"])
        if self.return_to is None and old.get("return_to") is not None:
            self.return_to = str(old["return_to"])
        if self.return_resume is None and old.get("return_resume") is not None:
            self.return_resume = str(old["return_resume"])
        self.lang_offered = self.lang_offered or bool(old.get("lang_offered"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "state": self.state,
            "lang": self.lang,
            "answers": dict(self.answers),
            "version": self.version,
            "resume": self.resume,
            "consent_version": self.consent_version,
            "draft_id": self.draft_id,
            "territory_candidates": list(self.territory_candidates),
            "return_to": self.return_to,
            "return_resume": self.return_resume,
            "lang_offered": self.lang_offered,
            "aside": self.aside,
            "held": self.held,
            "withdrawing": self.withdrawing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        """Read :meth:`to_dict`'s output, of this schema or of schema 1."""
        return cls(
            state=str(data.get("state", "new")),
            lang=str(data.get("lang", "fr")),
            answers=dict(data.get("answers") or {}),
            version=int(data.get("version", 0)),
            resume=data.get("resume"),
            consent_version=data.get("consent_version"),
            draft_id=int(data.get("draft_id", 0)),
            territory_candidates=tuple(data.get("territory_candidates") or ()),
            return_to=data.get("return_to"),
            return_resume=data.get("return_resume"),
            lang_offered=bool(data.get("lang_offered", False)),
            aside=data.get("aside"),
            held=data.get("held"),
            withdrawing=data.get("withdrawing"),
        )


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextEvent:
    """Free text typed by the citizen.

    ``state``: the step the text was typed at, when the channel knows it (a web page):
    typed at a step the conversation has left (another tab moved on), it is not applied to
    the current step.
    """

    text: str
    state: str | None = None


@dataclass(frozen=True)
class ChoiceEvent:
    """A choice picked (button press, or a number/label typed in the terminal).

    ``version`` is the conversation version the choice was offered at (``None`` when unknown):
    a choice from an older step is answered "no longer available".
    """

    choice: str
    version: int | None = None


@dataclass(frozen=True)
class CommandEvent:
    """A command (``/help``, ``/start oise``...), without the slash, lower-case."""

    name: str
    arg: str = ""


@dataclass(frozen=True)
class AttachmentEvent:
    """Something other than text sent where the conversation reads text and buttons: a photo,
    a voice note, a sticker, a file, a location, a contact... (``kind``: which; its content is
    never read)."""

    kind: str


Event = TextEvent | ChoiceEvent | CommandEvent | AttachmentEvent


# --- replies and effects ------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    id: str
    label: str


@dataclass(frozen=True)
class Reply:
    """One message to show: text plus the choices offered with it (rendered by the channel)."""

    text: str
    choices: tuple[Choice, ...] = ()
    #: Text a channel with a text box may put back in it for the citizen to edit (the answer
    #: they asked to rewrite); a channel without one ignores it.
    draft: str = ""


@dataclass(frozen=True)
class RecordConsent:
    """The citizen accepted the privacy notice of this version."""

    version: str


@dataclass(frozen=True)
class SubmitContribution:
    """Store the reviewed contribution. ``draft_id`` makes the submission idempotent."""

    draft_id: int
    territory: str
    theme: str
    custom_theme: str | None
    need: str
    solution: str
    levers: str | None
    profile: str | None
    language: str
    consent_version: str


@dataclass(frozen=True)
class ListContributions:
    """Show the citizen their contributions (storage fetches, dialog renders)."""


@dataclass(frozen=True)
class DeleteMyData:
    """Erase the participant, their conversation and contributions."""


@dataclass(frozen=True)
class SendMyData:
    """Send the citizen everything stored about them: a short summary (storage fetches, the
    dialog renders it with :func:`dialogs.flow.render_my_data`) and a JSON file."""


@dataclass(frozen=True)
class WithdrawContribution:
    """Withdraw one of the citizen's contributions (confirmed): storage says what became of
    it and the dialog renders that (:func:`dialogs.flow.render_withdrawal`)."""

    reference: str


@dataclass(frozen=True)
class SetLanguage:
    """Remember the interface language for this participant."""

    lang: str


Effect = (
    RecordConsent
    | SubmitContribution
    | ListContributions
    | DeleteMyData
    | SetLanguage
    | SendMyData
    | WithdrawContribution
)


@dataclass
class Outcome:
    conversation: Conversation
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


# --- what the dialog knows of the world ---------------------------------------------------


@dataclass(frozen=True)
class Commune:
    """A commune named by the campaign file, to settle split departments."""

    name: str
    postal_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Territory:
    code: str
    name: str
    #: Department codes ("59", "2A", "971") the territory covers, wholly or in part.
    departments: tuple[str, ...] = ()
    #: Communes listed by the campaign file (names and postal codes) for typed look-ups.
    communes: tuple[Commune, ...] = ()


@dataclass(frozen=True)
class Theme:
    """A theme: ``code`` "1".."4" for the national themes, "5" for free supplementary themes,
    or the code of a predefined extra theme (which belongs to theme 5)."""

    code: str
    number: int
    label_fr: str
    label_en: str
    short_fr: str = ""
    short_en: str = ""

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_fr

    def short(self, lang: str) -> str:
        text = self.short_en if lang == "en" else self.short_fr
        return text or self.label(lang)


@dataclass(frozen=True)
class Profile:
    code: str
    label_fr: str
    label_en: str

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_fr


#: The time zone of a campaign's dates and of the staff's clock, unless told otherwise.
DEFAULT_TIMEZONE: Final = "Europe/Paris"


@dataclass(frozen=True)
class Controller:
    """Who is responsible for the processing (from the campaign file), as the notice names it."""

    name: str
    #: How to reach its data-protection officer (an e-mail address or a web page); may be "".
    contact: str = ""


@dataclass(frozen=True)
class CampaignView:
    """The campaign as the dialog sees it (built by storage from the loaded campaign file)."""

    code: str
    name: str
    region: str
    opens_on: date
    closes_on: date
    territories: tuple[Territory, ...]
    themes: tuple[Theme, ...]
    extra_themes: tuple[Theme, ...] = ()
    profiles: tuple[Profile, ...] = ()
    #: The campaign's dates are local dates in this time zone.
    timezone: str = DEFAULT_TIMEZONE
    #: The data controller named in the privacy notice (None: a general wording).
    controller: Controller | None = None

    def territory(self, code: str) -> Territory | None:
        return next((t for t in self.territories if t.code == code), None)

    def theme(self, code: str) -> Theme | None:
        return next((t for t in (*self.themes, *self.extra_themes) if t.code == code), None)


@dataclass(frozen=True)
class Limits:
    """The dialog's limits; their defaults are the settings' defaults (``storage.settings``)."""

    text_min: int = 15
    text_max: int = 3000
    levers_max: int = 3000
    custom_theme_max: int = 120
    langdetect_min_letters: int = 40
    langdetect_min_confidence: float = 0.90
    privacy_notice_version: str = "2022-11-v1"
    draft_ttl: timedelta = timedelta(days=7)
    #: Retention the privacy notice states (the maintenance applies them: storage.maintenance).
    identity_retention: timedelta = timedelta(days=90)
    rejected_text_retention: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class Context:
    """Everything an event is handled against, besides the conversation itself."""

    campaign: CampaignView
    now: datetime
    limits: Limits = Limits()


@dataclass(frozen=True)
class ContributionSummary:
    """A stored contribution as listed back to its author."""

    reference: str
    created_at: datetime
    territory: str
    theme: str
    status: str
    need_excerpt: str


#: What withdrawing a contribution did (``storage.withdraw``): a pending one deleted, a
#: published one withdrawn from every later export, already withdrawn, or none of theirs.
WITHDRAWAL_OUTCOMES = ("deleted", "withdrawn", "already", "unknown")


@dataclass(frozen=True)
class MyDataSummary:
    """What is stored about a citizen, as the "my data" message sums it up (the JSON file
    holds the details)."""

    #: Contributions by status (``pending``, ``approved``...), in a stable order.
    contributions: tuple[tuple[str, int], ...]
    #: The privacy notice version accepted and when (None: not accepted).
    consent_version: str | None
    consent_at: datetime | None
    #: Whether an unfinished contribution is kept.
    has_draft: bool
    #: The name of the JSON file given with the message.
    filename: str
