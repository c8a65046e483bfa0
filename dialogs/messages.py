"""Message catalogues (gettext ``.po`` files read with Babel), French first, English too.

Message ids are symbolic (``need.prompt``); each language has its own ``.po`` file in
``dialogs/catalogues/``. They are read once, at import: they are part of the program, like
code, not input. :func:`t` formats a message with ``str.format`` placeholders.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
CATALOGUE_DIR = Path(__file__).parent / "catalogues"


def _load(lang: str) -> dict[str, str]:
    with (CATALOGUE_DIR / f"{lang}.po").open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    messages: dict[str, str] = {}
    for message in catalog:
        if message.id and isinstance(message.id, str) and isinstance(message.string, str):
            messages[message.id] = message.string
    return messages


CATALOGUES: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def normalise_lang(lang: str | None) -> str:
    """``"en-GB"`` -> ``"en"``; anything not offered -> French."""
    if lang:
        short = lang.strip().lower()[:2]
        if short in CATALOGUES:
            return short
    return DEFAULT_LANGUAGE


def t(lang: str, msg_id: str, **params: object) -> str:
    """The message ``msg_id`` in ``lang`` (French when missing), formatted with ``params``."""
    catalogue = CATALOGUES.get(lang) or CATALOGUES[DEFAULT_LANGUAGE]
    template = catalogue.get(msg_id) or CATALOGUES[DEFAULT_LANGUAGE].get(msg_id)
    if not template:
        raise KeyError(f"no message {msg_id!r}")
    return template.format(**params) if params else template
