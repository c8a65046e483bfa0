"""What a web chat page shows, from the dialog's replies: paragraphs, buttons, the text box.

Pure helpers (no I/O): the page templates and the JSON answers of the chat script both use
:func:`view`, so the page without JavaScript and the chat with it show the same thing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from bot.web.channel import Answer
from dialogs.flow import FREE_TEXT_STATES
from dialogs.messages import html_lang, t
from dialogs.model import Choice
from dialogs.prompts import language_choices

#: Steps where the citizen may type (the territory step takes a commune or a postal code).
TEXT_STATES = frozenset((*FREE_TEXT_STATES, "territory"))
#: Steps whose answer is a few words (a commune, a theme's name): a text box of two lines, not
#: six (the page stays short on a phone).
SHORT_TEXT_STATES = frozenset(("territory", "custom_theme"))
#: Steps where a poster's territory (``?territoire=``) still applies.
WELCOME_STATES = frozenset(("new", "consent"))
#: The menu of commands, always offered (the same as Telegram's command menu, minus start).
MENU = ("help", "back", "mine", "mydata", "language", "privacy", "delete")


def paragraphs(text: str) -> list[list[str]]:
    """A reply's text as paragraphs of lines (blank lines separate paragraphs)."""
    out: list[list[str]] = []
    for block in text.strip("\n").split("\n\n"):
        lines = [line for line in block.split("\n")]
        if any(line.strip() for line in lines):
            out.append(lines)
    return out


@dataclass(frozen=True)
class LanguageButton:
    """A button of the language switch: the choice it sends, its label, the label's language."""

    choice: str
    label: str
    lang: str
    current: bool


@dataclass
class View:
    """Everything a page (or a chat fragment) shows."""

    lang: str
    replies: list[list[list[str]]]
    choices: tuple[Choice, ...]
    version: int
    state: str
    accepts_text: bool
    text_label: str
    message_id: str
    menu_id: str
    territory: str = ""
    #: A poster's territory (``?territoire=``, its code and name) opened mid-conversation:
    #: offered, not applied.
    poster: str = ""
    poster_name: str = ""
    kept_text: str = ""
    problem: str = ""
    notices: list[str] = field(default_factory=list)
    proof: bool = False

    @property
    def text_rows(self) -> int:
        """The text box's height in lines."""
        return 2 if self.state in SHORT_TEXT_STATES else 6

    @property
    def html_lang(self) -> str:
        """The page's ``lang`` (``fr-x-falc`` for « Français facile »)."""
        return html_lang(self.lang)

    @property
    def languages(self) -> list[LanguageButton]:
        """The language switch of every page: each language named in itself."""
        return [
            LanguageButton(c.id, c.label, html_lang(c.id[5:]), c.id[5:] == self.lang)
            for c in language_choices()
        ]

    def json(self) -> dict[str, object]:
        return {
            "lang": self.html_lang,  # compared by the chat script with the page's lang
            "version": self.version,
            "state": self.state,
            "accepts_text": self.accepts_text,
            "message_id": self.message_id,
            "problem": self.problem,
        }


def view(
    answer: Answer,
    *,
    territory: str = "",
    poster: tuple[str, str] | None = None,
    kept_text: str = "",
    problem: str = "",
    notices: list[str] | None = None,
    proof: bool = False,
) -> View:
    lang = answer.lang
    # every choice of the turn: "my contributions" offers its own under the list, then the
    # step's (one reply has choices otherwise)
    choices = tuple(c for r in answer.replies for c in r.choices)
    state = answer.state
    label = "web.answer_place" if state == "territory" else "web.answer"
    # a text refused stays in the box; an answer the citizen chose to rewrite comes back to it
    kept_text = kept_text or next((r.draft for r in reversed(answer.replies) if r.draft), "")
    # fresh client ids for the next message, of the answer form and of the menu (18 random
    # bytes each; the chat script makes its own)
    ids = secrets.token_urlsafe(36)
    return View(
        lang=lang,
        replies=[paragraphs(r.text) for r in answer.replies if r.text.strip()],
        choices=choices,
        version=answer.version,
        state=state,
        accepts_text=state in TEXT_STATES,
        text_label=t(lang, label),
        message_id=ids[:24],
        menu_id=ids[24:],
        territory=territory if state in WELCOME_STATES else "",
        poster=poster[0] if poster and state not in WELCOME_STATES else "",
        poster_name=poster[1] if poster and state not in WELCOME_STATES else "",
        kept_text=kept_text,
        problem=problem,
        notices=list(notices or ()),
        proof=proof and state == "review",
    )
