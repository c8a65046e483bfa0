"""The terminal chat: the same conversation as on Telegram, in a terminal or through a pipe.

Replies are printed as wrapped text with numbered choices; the citizen types a number, a
choice's label, a command (``/help``, ``/back``...) or free text. Every line is one dialog
event, stored in its own transaction, so Ctrl-C (or a killed process) loses at most the line
being handled and ``cnrbot chat`` resumes where the conversation stood.

The input loop is synchronous on purpose: ``input()`` then reacts to Ctrl-C at once, and the
asyncio runner is entered only to handle one event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from dialogs import flow
from dialogs.messages import normalise_lang, t
from dialogs.model import Choice, ChoiceEvent, CommandEvent, Event, Reply
from storage.my_data import Attachment
from storage.service import DialogService, HandleResult
from storage.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "terminal"
MIN_WIDTH, MAX_WIDTH = 30, 88
PROMPT = "> "
#: The packages of this project: their warnings (one line, never a text nor an identity, such
#: as "database unavailable") are shown in the terminal; the libraries' log lines are not.
OWN_LOGGERS = frozenset({"bot", "cnrbot", "dialogs", "storage", "exporter", "moderation"})


class OwnRecordsOnly(logging.Filter):
    """Passes the records of :data:`OWN_LOGGERS` only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.partition(".")[0] in OWN_LOGGERS


def keep_libraries_off_the_terminal() -> None:
    """The citizen's terminal is no place for a library's log line or warning (transitions'
    "Can't trigger event", a driver's or SQLAlchemy's warning): Python warnings go through
    logging, and the root logger's handlers pass on this project's records only. ``cnrbot -v
    chat`` leaves them all on, for a developer."""
    logging.captureWarnings(True)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, OwnRecordsOnly) for f in handler.filters):
            handler.addFilter(OwnRecordsOnly())


def user_id_file(settings: Settings) -> Path:
    """Where the local terminal user's id is kept: next to the SQLite file, else here."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.with_name(db.name + ".terminal-user")
    return Path("cnr-terminal-user")


def local_user_id(settings: Settings) -> str:
    """The id of this terminal's user, created once (random, never a personal identifier)."""
    path = user_id_file(settings)
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_hex(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, to match a typed label to a choice."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def echo(line: str, width: int) -> str:
    """A read line as shown in a transcript: printable characters, cut to the width."""
    shown = "".join(c if c.isprintable() else " " for c in line.rstrip("\r\n")).rstrip()
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def terminal_width(out: TextIO) -> int:
    columns = shutil.get_terminal_size((80, 24)).columns if out.isatty() else 80
    return max(MIN_WIDTH, min(MAX_WIDTH, columns))


def render(replies: Sequence[Reply], width: int) -> str:
    """Replies as plain text: wrapped paragraphs, then numbered choices (numbered on across
    the replies of one turn: "my contributions" offers its own under the list, then the
    step's)."""
    lines: list[str] = []
    number = 0
    total = sum(len(reply.choices) for reply in replies)
    number_width = len(str(total))
    for reply in replies:
        for paragraph in reply.text.splitlines():
            if not paragraph.strip():
                lines.append("")
                continue
            indent = paragraph[: len(paragraph) - len(paragraph.lstrip())]
            lines.extend(
                textwrap.wrap(
                    paragraph.strip(),
                    width=width,
                    initial_indent=indent,
                    subsequent_indent=indent,
                    break_long_words=True,
                    break_on_hyphens=False,
                )
            )
        for choice in reply.choices:
            number += 1
            head = f"  {number:>{number_width}}. "
            lines.extend(
                textwrap.wrap(
                    choice.label,
                    width=width,
                    initial_indent=head,
                    subsequent_indent=" " * len(head),
                )
                or [head.rstrip()]
            )
        lines.append("")
    return "\n".join(lines) + "\n" if lines else ""


def save_attachment(attachment: Attachment, directory: Path) -> Path:
    """Write a file given with the replies ("my data") in ``directory``, readable by this
    user only (it holds the citizen's texts); an older copy is replaced."""
    path = directory / Path(attachment.filename).name
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(attachment.data)
    return path.resolve()


@dataclass
class TerminalSession:
    """Turns typed lines into dialog events, given the choices last shown."""

    choices: tuple[Choice, ...] = ()
    version: int | None = None
    lang: str = "fr"

    def event_for(self, line: str) -> Event:
        text = line.strip()
        if text.isdigit() and self.choices and 1 <= int(text) <= len(self.choices):
            return ChoiceEvent(self.choices[int(text) - 1].id, self.version)
        if text and not text.startswith("/"):
            folded = _fold(text)
            for choice in self.choices:
                if _fold(choice.label) == folded:
                    return ChoiceEvent(choice.id, self.version)
        return flow.parse_text(line)

    def shown(self, replies: Sequence[Reply], version: int) -> None:
        offered = tuple(c for r in replies for c in r.choices)
        if offered or replies:
            self.choices = offered
        self.version = version


def run_chat(
    settings: Settings,
    *,
    user_id: str | None = None,
    lang_hint: str | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    today: date | None = None,
) -> int:
    """Run the chat until end of input or Ctrl-C. Returns the exit status.

    ``today`` makes the conversation act as if it were that day (at the current time of day),
    to try a campaign whose dates are past or to come.
    """
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty() and out.isatty()
    width = terminal_width(out)
    user = user_id or local_user_id(settings)
    read: Callable[[], str] = (lambda: input(PROMPT)) if interactive else stdin.readline
    term = TerminalSession(lang=normalise_lang(lang_hint) if lang_hint else "fr")

    with asyncio.Runner() as runner:
        try:
            service = runner.run(DialogService.open(settings))
        except KeyboardInterrupt:
            return 130
        try:

            def send(event: Event | None) -> None:
                """Handle ``event``; None: show where the conversation stands (the welcome
                for a newcomer), as when the chat is started again."""
                now = datetime.now(UTC)
                if today is not None:
                    now = datetime.combine(today, now.timetz())
                try:
                    if event is None:
                        result = runner.run(
                            service.peek(CHANNEL, user, lang_hint=lang_hint, now=now)
                        )
                        if result.conversation.state != "new":
                            _show(result)
                            return
                        event = CommandEvent("start")
                    result = runner.run(
                        service.handle(CHANNEL, user, event, lang_hint=lang_hint, now=now)
                    )
                except DBAPIError as exc:
                    # Nothing of this line was stored (one transaction): say so, go on.
                    log.warning("database unavailable (%s): line not stored", type(exc).__name__)
                    out.write(render([Reply(t(term.lang, "channel.error"))], width))
                    out.flush()
                    return
                except Exception:
                    log.exception("terminal event failed (%s)", type(event).__name__)
                    out.write(render([Reply(t(term.lang, "channel.error"))], width))
                    out.flush()
                    return
                _show(result)

            def _show(result: HandleResult) -> None:
                out.write(render(result.replies, width))
                for attachment in result.attachments:
                    path = save_attachment(attachment, Path.cwd())
                    saved = t(result.conversation.lang, "my_data.saved", path=str(path))
                    out.write(render([Reply(saved)], width))
                out.flush()
                term.shown(result.replies, result.conversation.version)
                term.lang = result.conversation.lang

            # Where the conversation stands (not /start: typed mid-draft, it asks whether to
            # start again); a newcomer is greeted as /start does.
            send(None)
            while True:
                try:
                    line = read()
                except EOFError:
                    break
                if not interactive:
                    if line == "":
                        break  # end of the piped input
                    # a transcript reads like a dialogue: show what was read
                    out.write(f"{PROMPT}{echo(line, width - len(PROMPT))}\n\n")
                send(term.event_for(line.rstrip("\r\n")))
        except KeyboardInterrupt:
            out.write("\n")
            out.flush()
        finally:
            runner.run(service.close())
    return 0
