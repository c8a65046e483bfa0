"""The Telegram adapter of the core: what each kind of update means, and how replies become
Telegram messages (inline keyboards, long texts split, the pressed question edited to show the
choice made, its keyboard gone).

The core (``bot.core.processor``) drains each citizen's updates in order and calls
:meth:`TelegramAdapter.process` for one; this module routes it (a message, a button, a group,
an edit...), applies dialog events through the core, and talks to Telegram with
python-telegram-bot's ``Bot``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.core.processor import DB_ERRORS, AlreadyApplied, Processor
from bot.telegram import render
from bot.telegram.envelope import CHANNEL, Envelope, envelope
from dialogs.flow import parse_text
from dialogs.messages import normalise_lang, t
from dialogs.model import AttachmentEvent, ChoiceEvent, Conversation, Event, Reply
from storage.identity import Pseudonymiser
from storage.inbox import JSON
from storage.my_data import Attachment

log = logging.getLogger(__name__)

#: What a message carries besides text (Bot API ``Message`` fields), as the dialog names it.
ATTACHMENTS = (
    "location", "venue", "contact", "photo", "voice", "video_note", "video", "audio",
    "animation", "sticker", "document", "poll", "dice", "game", "story", "invoice",
)  # fmt: skip


class TelegramAdapter:
    name = CHANNEL
    unreachable: tuple[type[BaseException], ...] = (NetworkError, RetryAfter)

    def __init__(self, bot: Bot, pseudonymiser: Pseudonymiser) -> None:
        self.bot = bot
        self.pseudonymiser = pseudonymiser
        #: Set by the channel once the processor exists (they need each other).
        self.core: Processor[Envelope]

    def envelope(self, payload: JSON) -> Envelope:
        return envelope(payload, self.pseudonymiser)

    def describe(self, env: Envelope) -> str:
        return f"update {env.update_id} (kind {env.kind})"

    # --- routing ---------------------------------------------------------------------------------

    async def process(self, env: Envelope, update_: JSON) -> None:
        obj = update_.get(env.kind) or {}
        core = self.core
        if env.kind == "callback_query" and env.user is not None:
            # Answer at once (the spinner stops), while the dialog does its work.
            core.spawn(self._answer_callback(str(obj.get("id", ""))))
            choice = render.parse_callback_data(obj.get("data"))
            await self._dialog(env, choice, pressed=obj.get("message"), data=obj.get("data"))
        elif env.kind == "callback_query":  # a button outside a private chat: not ours
            core.spawn(self._answer_callback(str(obj.get("id", ""))))
            core.stats.skipped += 1
            core.finish(env)
        elif env.kind == "message" and env.private:
            text_ = obj.get("text")
            if isinstance(text_, str) and env.user_id is not None:
                await self._dialog(env, parse_text(text_))
            elif env.user_id is not None:  # a photo, a location...: the step answers it
                kind = next((k for k in ATTACHMENTS if k in obj), "other")
                await self._dialog(env, AttachmentEvent(kind))
            else:
                await self._local_reply(env, "channel.unsupported")
        elif env.kind == "edited_message" and env.private:
            await self._local_reply(env, "channel.edited")
        elif env.kind in ("message", "my_chat_member") and env.chat_type in ("group", "supergroup"):
            await self._group(env, update_)
        elif env.kind == "my_chat_member" and env.private:
            status = str((obj.get("new_chat_member") or {}).get("status", ""))
            await core.contacts.set_blocked_by_key(env.key, status in ("kicked", "left"))
            core.finish(env)
        else:  # channel posts, edits in groups, kinds we did not ask for: nothing to say
            core.stats.skipped += 1
            core.finish(env)

    async def _dialog(
        self, env: Envelope, event: Event, *, pressed: object = None, data: object = None
    ) -> None:
        """Apply ``event``; ``pressed``: the message whose button (``data``) was pressed."""
        chat_id = env.chat_id if env.chat_id is not None else env.user_id
        assert chat_id is not None
        try:
            result = await self.core.apply(env, event, identity=str(chat_id))
        except AlreadyApplied:
            return
        if isinstance(pressed, dict) and env.chat_id is not None:
            message_id = int(pressed.get("message_id", 0))
            chosen = None
            # taken (not a button of an older step): the question shows the choice made
            taken = isinstance(event, ChoiceEvent) and (
                result.changed or event.version == result.conversation.version
            )
            label = render.pressed_label(pressed, data) if taken else None
            text_ = pressed.get("text")
            if label and isinstance(text_, str):
                line = t(result.conversation.lang, "channel.chosen", choice=label)
                chosen = render.with_choice(text_, line)
            self.core.spawn(self._close_question(env.chat_id, message_id, chosen))
        delivered = await self._send_replies(
            chat_id, result.replies, result.conversation, result.participant_id, env=env
        )
        if delivered:
            await self._send_files(chat_id, result.attachments, result.participant_id)
        self.core.finish(env)

    async def resume(self, env: Envelope, update_: JSON) -> None:
        """Applied but maybe not answered (crash): show the current step again."""
        if env.kind == "callback_query":
            await self._answer_callback(str((update_.get("callback_query") or {}).get("id", "")))
        if env.user is not None and await self.core.inbox.moved_on(env.key, env.seq):
            # the citizen went on meanwhile and was answered: the step would come twice
            log.info("%s: the citizen went on since; nothing to show again", self.describe(env))
        elif env.user is not None:
            chat_id = env.chat_id if env.chat_id is not None else int(env.user)
            unsent = await self._unsent(env)
            if unsent is not None:  # what its first delivery could not send: just that
                brief = await self.core.brief(env)
                await self._send_all(chat_id, unsent, brief.id if brief else None, env)
            else:  # perhaps never answered (a crash): the step again
                result = await self.core.current(env)
                stale = t(result.conversation.lang, "channel.stale_choice")
                replies = [r for r in result.replies if r.text.strip() and r.text != stale]
                await self._send_replies(
                    chat_id, replies, result.conversation, result.participant_id, env=env
                )
        self.core.finish(env)

    async def _unsent(self, env: Envelope) -> list[tuple[str, Any]] | None:
        """The messages an earlier delivery of ``env`` left unsent, if it said so."""
        stored = await self.core.inbox.stored(env.message_id, env.key)
        if stored is None or stored.replies is None:
            return None
        kept = self.core.inbox.decode_replies(stored.replies).get("unsent")
        if not isinstance(kept, list):
            return None
        return [
            (
                str(m.get("text", "")),
                InlineKeyboardMarkup.de_json(m["markup"], self.bot) if m.get("markup") else None,
            )
            for m in kept
            if isinstance(m, dict)
        ]

    async def failed(self, env: Envelope, update_: JSON, exc: BaseException) -> None:
        if env.chat_id is not None and env.private:
            lang = await self._lang(env)
            with contextlib.suppress(TelegramError):
                await self._send(env.chat_id, t(lang, "channel.error"), None, None)
        if env.kind == "callback_query":
            with contextlib.suppress(TelegramError):
                await self._answer_callback(
                    str((update_.get("callback_query") or {}).get("id", ""))
                )

    def dropped(self, env: Envelope, exc: BaseException) -> None:
        """Telegram's updates are recorded before they are handed over: nothing waits."""

    async def _local_reply(self, env: Envelope, msg_id: str) -> None:
        """A reply of the channel itself (unsupported content, edits): no dialog step."""
        brief = await self.core.brief(env)
        lang = normalise_lang(brief.lang if brief else env.lang_hint)
        if env.chat_id is not None:
            await self._send(env.chat_id, t(lang, msg_id), None, brief.id if brief else None)
        self.core.finish(env)

    async def _group(self, env: Envelope, update_: JSON) -> None:
        """Say once per group that the bot only converses in private."""
        obj = update_.get(env.kind) or {}
        if env.kind == "my_chat_member":
            status = str((obj.get("new_chat_member") or {}).get("status", ""))
            if status in ("left", "kicked"):
                self.core.finish(env)
                return
        await self.core.flush()
        replied = await self.core.inbox.answered_before(env.key, env.message_id)
        if not replied and env.chat_id is not None:
            lang = normalise_lang(env.lang_hint)
            with contextlib.suppress(Forbidden, BadRequest):
                await self.bot.send_message(env.chat_id, t(lang, "channel.private_only"))
                self.core.stats.replies += 1
        self.core.finish(env)

    async def _lang(self, env: Envelope) -> str:
        brief = await self.core.brief(env)
        return normalise_lang(brief.lang if brief else env.lang_hint)

    # --- sending ---------------------------------------------------------------------------------

    async def _send_replies(
        self,
        chat_id: int,
        replies: Sequence[Reply],
        conversation: Conversation,
        participant_id: int | None,
        *,
        env: Envelope | None = None,
    ) -> bool:
        """Send the replies in order; False when the chat turned out to be out of reach."""
        outgoing = [m for reply in replies for m in render.messages(reply, conversation.version)]
        return await self._send_all(chat_id, outgoing, participant_id, env)

    async def _send_all(
        self,
        chat_id: int,
        outgoing: Sequence[tuple[str, Any]],
        participant_id: int | None,
        env: Envelope | None,
    ) -> bool:
        """Send Telegram messages in order. When Telegram is out of reach midway, what is left
        is kept with the message (``env``) before the error goes up: whoever resumes it sends
        that, and not again what was delivered."""
        for i, (text_, markup) in enumerate(outgoing):
            try:
                sent = await self._send(chat_id, text_, markup, participant_id)
            except self.unreachable:
                if env is not None:
                    await self._keep_unsent(env, outgoing[i:])
                raise
            if not sent:
                return False
        return True

    async def _keep_unsent(self, env: Envelope, unsent: Sequence[tuple[str, Any]]) -> None:
        data = {
            "unsent": [
                {"text": text_, "markup": markup.to_dict() if markup is not None else None}
                for text_, markup in unsent
            ]
        }
        try:
            await self.core.inbox.keep_unsent(env.message_id, data)
        except DB_ERRORS as exc:  # then the step is shown again when it is resumed
            log.warning("could not keep the unsent replies (%s)", type(exc).__name__)

    async def _send_files(
        self, chat_id: int, attachments: Sequence[Attachment], participant_id: int | None
    ) -> None:
        """Files given with the replies ("my data") as documents, uploaded from memory."""
        for attachment in attachments:
            try:
                await self.bot.send_document(
                    chat_id, document=attachment.data, filename=attachment.filename
                )
            except Forbidden:
                log.info("a participant's chat refuses messages (bot blocked); marked")
                await self.core.mark_blocked(participant_id)
                return
            except BadRequest as exc:
                log.error("Telegram refused a document: %s", exc.message[:120])
                self.core.stats.errors.append(exc.message[:120])
                return
            self.core.stats.replies += 1

    async def _send(
        self, chat_id: int, text_: str, markup: Any, participant_id: int | None
    ) -> bool:
        """Send one message; False when the chat is out of reach (blocked, gone)."""
        try:
            await self.bot.send_message(chat_id, text_, reply_markup=markup)
        except Forbidden:
            log.info("a participant's chat refuses messages (bot blocked); marked")
            await self.core.mark_blocked(participant_id)
            return False
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                log.info("a participant's chat no longer exists; marked")
                await self.core.mark_blocked(participant_id)
                return False
            log.error("Telegram refused a reply: %s", exc.message[:120])
            self.core.stats.errors.append(exc.message[:120])
            return True
        self.core.stats.replies += 1
        return True

    async def _answer_callback(self, query_id: str) -> None:
        if not query_id:
            return
        try:
            await self.bot.answer_callback_query(query_id)
        except BadRequest:  # expired, or already answered before a crash
            pass
        except TelegramError as exc:  # out of reach: the spinner stops on its own
            log.info("a button press could not be acknowledged (%s)", type(exc).__name__)

    async def _close_question(self, chat_id: int, message_id: int, text_: str | None) -> None:
        """The pressed question's keyboard removed; ``text_``: its text with the choice made."""
        if not message_id:
            return
        try:
            if text_ is not None:
                with contextlib.suppress(BadRequest, Forbidden):  # too old to edit: keyboard only
                    await self.bot.edit_message_text(text_, chat_id, message_id, reply_markup=None)
                    return
            with contextlib.suppress(BadRequest, Forbidden):  # already gone or not modified
                await self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        except TelegramError as exc:  # Telegram out of reach: the old keyboard stays, no harm
            log.info("a pressed question could not be edited (%s)", type(exc).__name__)
