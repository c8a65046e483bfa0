"""What the Telegram channel knows of an update without reading its content: its envelope.

An update is recorded in the inbox (``storage.inbox``) under its ``update_id`` (the inbox's
message id, and its order), with its ordering key: the citizen's pseudonymous key for private
chats and button presses, a key of the chat for groups and channels (kept apart from
participant keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.identity import Pseudonymiser

CHANNEL = "telegram"
#: Key space of group and channel chats (not citizens): kept apart from participant keys.
GROUP_CHANNEL = "telegram-chat"

JSON = dict[str, Any]

#: Update kinds carrying a message.
MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")


@dataclass(frozen=True)
class Envelope:
    """What the transport knows of an update without reading its content."""

    update_id: int
    key: str
    kind: str
    chat_id: int | None
    chat_type: str | None
    user_id: int | None
    lang_hint: str | None

    @property
    def message_id(self) -> str:
        return str(self.update_id)

    @property
    def seq(self) -> int:
        return self.update_id

    @property
    def private(self) -> bool:
        return self.chat_type in (None, "private")

    @property
    def user(self) -> str | None:
        """The citizen's Telegram user id in a private chat (None in groups and channels)."""
        return str(self.user_id) if self.user_id is not None and self.private else None


def update_kind(update: JSON) -> str:
    for key in update:
        if key != "update_id":
            return key
    return "unknown"


def envelope(update: JSON, pseudonymiser: Pseudonymiser) -> Envelope:
    """Ordering key, chat and sender of a raw update."""
    kind = update_kind(update)
    obj = update.get(kind)
    obj = obj if isinstance(obj, dict) else {}
    sender = obj.get("from") if isinstance(obj.get("from"), dict) else None
    chat = obj.get("chat") if isinstance(obj.get("chat"), dict) else None
    if chat is None and kind == "callback_query":
        message = obj.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            chat = message["chat"]
        elif sender is not None:
            chat = {"id": sender["id"], "type": "private"}
    chat_id = int(chat["id"]) if chat and "id" in chat else None
    chat_type = str(chat.get("type")) if chat else None
    user_id = int(sender["id"]) if sender and "id" in sender else None
    lang = str(sender["language_code"]) if sender and sender.get("language_code") else None
    if chat_type in (None, "private") and user_id is not None:
        key = pseudonymiser.key(CHANNEL, str(user_id))
    elif chat_id is not None:
        key = pseudonymiser.key(GROUP_CHANNEL, str(chat_id))
    else:
        key = pseudonymiser.key(GROUP_CHANNEL, f"update:{update.get('update_id')}")
    return Envelope(
        update_id=int(update["update_id"]),
        key=key,
        kind=kind,
        chat_id=chat_id,
        chat_type=chat_type,
        user_id=user_id,
        lang_hint=lang,
    )
