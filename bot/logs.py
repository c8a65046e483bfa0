"""Logging an operator can turn up without reading a citizen's words or identity.

Our own modules log operational facts only (never message texts, chat ids, tokens, addresses).
Libraries are another matter: at INFO, SQLAlchemy's engine echoes every statement with its
parameters (the texts of contributions, pseudonymous keys), httpx logs each Bot API URL (with
the bot's token), python-telegram-bot's DEBUG holds every update in clear, aiohttp's access log
writes the client's address and the query string (a search typed in the console). So, whatever
``-v`` asks for, :data:`LIBRARY_LEVELS` caps those loggers, and the listeners log requests with
:class:`bot.access_log.AccessLogger` (method, route pattern, status, time: no address, no
query, no user agent).
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, Literal

#: The lowest level each library may log at, whatever the root level.
LIBRARY_LEVELS: dict[str, int] = {
    "sqlalchemy": logging.WARNING,  # INFO is the SQL echo, parameters included
    "aiosqlite": logging.WARNING,  # DEBUG: every call and its arguments
    "asyncpg": logging.WARNING,
    "httpx": logging.WARNING,  # INFO: each request's URL, the bot token in it
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,  # DEBUG: every update and every request body in clear
    "hpack": logging.WARNING,
    "aiohttp.access": logging.INFO,  # our listeners write there with bot.access_log
}

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


#: The fields of a JSON line, by their record attribute (``time`` is added: UTC, ISO 8601).
JSON_FIELDS = {"levelname": "level", "name": "logger"}


def configure_logging(verbose: bool, log_format: Literal["text", "json"] | None = None) -> None:
    """Ours at DEBUG with ``-v`` (WARNING without), the libraries capped (see above).

    ``log_format`` (default: the ``CNR_LOG_FORMAT`` setting): ``text``, or ``json`` for one
    JSON object per line (:func:`json_formatter`)."""
    if log_format is None:
        log_format = _format_setting()
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(json_formatter())
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    else:
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=FORMAT)
    cap_libraries()


def _format_setting() -> Literal["text", "json"]:
    from pydantic import ValidationError

    from storage.settings import LogSettings

    try:
        return LogSettings().log_format
    except ValidationError:
        return "text"  # the command's own Settings() says what is wrong, setting by setting


def json_formatter() -> logging.Formatter:
    """One JSON object per line (python-json-logger): ``time``, ``level``, ``logger``,
    ``message``; for an error with an exception, ``exc_class`` and ``traceback`` (its frames
    only: an exception's message may quote what it failed on)."""
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def formatException(self, ei: Any) -> str:
            return "".join(traceback.format_tb(ei[2]))

        def add_fields(
            self, log_data: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]
        ) -> None:
            if "exc_info" in message:
                message["traceback"] = message.pop("exc_info")
            super().add_fields(log_data, record, message)
            if record.exc_info and record.exc_info[0] is not None:
                log_data["exc_class"] = record.exc_info[0].__name__

    return Formatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields=JSON_FIELDS,
        timestamp="time",
    )


def json_logging() -> bool:
    """Whether the root logger writes JSON lines (``CNR_LOG_FORMAT=json``)."""
    from_json = getattr(sys.modules.get("pythonjsonlogger.core"), "BaseJsonFormatter", None)
    if from_json is None:
        return False
    return any(isinstance(h.formatter, from_json) for h in logging.getLogger().handlers)


def announce(text: str, level: int = logging.INFO) -> None:
    """A long-running command's word to its operator (listening on..., stopped): a plain line
    on stderr, or a JSON line (level INFO, logger ``cnrbot``) when logs are JSON, so that a
    log collector reads every line of stderr alike. Never a text of a citizen's."""
    if not json_logging():
        print(text, file=sys.stderr, flush=True)
        return
    record = logging.makeLogRecord(
        {"name": "cnrbot", "levelno": level, "levelname": logging.getLevelName(level), "msg": text}
    )
    for handler in logging.getLogger().handlers:
        if handler.formatter is not None:
            print(handler.formatter.format(record), file=sys.stderr, flush=True)
            return


def cap_libraries() -> None:
    for name, floor in LIBRARY_LEVELS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < floor:
            logger.setLevel(floor)
