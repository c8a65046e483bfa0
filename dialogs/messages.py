"""Message catalogues (gettext ``.po`` files read with Babel): French first, English, and
« Français facile » (``falc``: French written by the easy-to-read rules).

Message ids are symbolic (``need.prompt``); each interface language has its own ``.po`` file
in ``dialogs/catalogues/``. They are read once, at import: they are part of the program, like
code, not input. :func:`t` formats a message with ``str.format`` placeholders.

FALC is French: dates, the language of what a citizen types, Telegram's command menus and a
page's ``lang`` are French ones (:func:`written_in`, :func:`html_lang`).
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

#: Languages of their own (ISO 639-1): Babel's locales, Telegram's command menus.
LANGUAGES = ("fr", "en")
#: « Français facile »: an interface language written in French.
FALC = "falc"
#: Every interface language a citizen can choose, in the order they are offered.
INTERFACE_LANGUAGES = (*LANGUAGES, FALC)
DEFAULT_LANGUAGE = "fr"
CATALOGUE_DIR = Path(__file__).parent / "catalogues"


def _load(lang: str) -> dict[str, str]:
    with (CATALOGUE_DIR / f"{lang}.po").open("rb") as fh:
        catalog = read_po(fh, locale="fr" if lang == FALC else lang)
    messages: dict[str, str] = {}
    for message in catalog:
        if message.id and isinstance(message.id, str) and isinstance(message.string, str):
            messages[message.id] = message.string
    return messages


CATALOGUES: dict[str, dict[str, str]] = {lang: _load(lang) for lang in INTERFACE_LANGUAGES}


def normalise_lang(lang: str | None) -> str:
    """``"falc"`` -> ``"falc"`` (a stored choice; ``"fr-x-falc"`` too, the tag of its pages,
    which a browser may send back); ``"en-GB"`` -> ``"en"``; anything not offered -> French."""
    if lang:
        key = lang.strip().lower()
        if key in CATALOGUES:
            return key
        if key == html_lang(FALC):
            return FALC
        short = key[:2]
        if short in LANGUAGES:
            return short
    return DEFAULT_LANGUAGE


def written_in(lang: str) -> str:
    """The language (ISO 639-1) an interface language is written in: ``"falc"`` -> ``"fr"``.
    For Babel's dates, and to compare with the language detected in a citizen's text."""
    return "fr" if lang == FALC else lang


def html_lang(lang: str) -> str:
    """A page's ``lang`` (BCP 47): FALC is French for screen readers, marked as easy-to-read
    with a private-use subtag (``fr-x-falc``)."""
    return "fr-x-falc" if lang == FALC else lang


def t(lang: str, msg_id: str, **params: object) -> str:
    """The message ``msg_id`` in ``lang`` (French when missing), formatted with ``params``."""
    catalogue = CATALOGUES.get(lang) or CATALOGUES[DEFAULT_LANGUAGE]
    template = catalogue.get(msg_id) or CATALOGUES[DEFAULT_LANGUAGE].get(msg_id)
    if not template:
        raise KeyError(f"no message {msg_id!r}")
    return template.format(**params) if params else template
