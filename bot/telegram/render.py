"""Dialog replies as Telegram messages: inline keyboards, callback data, long texts split.

Callback data is ``v{version}:{choice_id}``: the conversation version the choice was offered at
travels with the button, so a press on an old message is recognised as stale by the dialog.
Telegram allows at most 64 bytes of callback data and 4,096 characters of text per message.
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from dialogs.model import ChoiceEvent, Reply

TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
#: Buttons whose labels are all this short go two per row; longer ones get a row each.
SHORT_LABEL = 18
_DATA = re.compile(r"v(\d{1,9}):(.+)", re.DOTALL)


class CallbackDataTooLong(ValueError):
    """A choice id too long for Telegram's 64-byte callback data (a dialog defect)."""


def callback_data(version: int, choice_id: str) -> str:
    data = f"v{version}:{choice_id}"
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise CallbackDataTooLong(f"choice id of {len(choice_id.encode())} bytes")
    return data


def parse_callback_data(data: str | None) -> ChoiceEvent:
    """The choice a button carries; unreadable data becomes a stale choice (version -1)."""
    match = _DATA.fullmatch(data or "")
    if match is None:
        return ChoiceEvent(choice="", version=-1)
    return ChoiceEvent(choice=match.group(2), version=int(match.group(1)))


def pressed_label(message: object, data: object) -> str | None:
    """The label of the button carrying ``data`` in a message of a callback query (as
    Telegram sends it back), or None (not found, not a real button)."""
    if not isinstance(message, dict) or not isinstance(data, str) or not data:
        return None
    markup = message.get("reply_markup")
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                label = button.get("text")
                return label if isinstance(label, str) and label.strip() else None
    return None


def with_choice(text: str, chosen: str) -> str | None:
    """A question's text followed by the choice made (``chosen``, a line already worded), so
    that the chat reads as a record of the answers; None when it would not fit one message."""
    edited = f"{text.rstrip()}\n\n{chosen}"
    return edited if _units(edited) <= TEXT_LIMIT else None


def keyboard(reply: Reply, version: int) -> InlineKeyboardMarkup | None:
    if not reply.choices:
        return None
    buttons = [
        InlineKeyboardButton(_label(c.label), callback_data=callback_data(version, c.id))
        for c in reply.choices
    ]
    if all(len(c.label) <= SHORT_LABEL for c in reply.choices):
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    else:
        rows = [[b] for b in buttons]
    return InlineKeyboardMarkup(rows)


def _label(label: str) -> str:
    label = " ".join(label.split())
    return label if label else "…"


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` characters (UTF-16 units, as Telegram
    counts), at paragraph breaks first, then line breaks, then spaces, then anywhere."""
    if not text.strip():
        return []
    chunks: list[str] = []
    rest = text.strip("\n")
    while _units(rest) > limit:
        window = _prefix(rest, limit)
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > len(window) // 3:
                break
        if cut <= 0:
            cut = len(window)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
        if head.strip():
            chunks.append(head)
    if rest.strip():
        chunks.append(rest)
    return chunks


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 units."""
    if _units(text) <= limit:
        return text
    n = min(len(text), limit)
    while _units(text[:n]) > limit:
        n -= 1
    return text[:n]


def messages(reply: Reply, version: int) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """The Telegram messages of one reply: the keyboard goes with the last piece."""
    parts = split_text(reply.text)
    if not parts:
        if not reply.choices:
            return []
        parts = ["…"]
    markup = keyboard(reply, version)
    return [(p, markup if i == len(parts) - 1 else None) for i, p in enumerate(parts)]
