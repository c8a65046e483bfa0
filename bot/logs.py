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


def configure_logging(verbose: bool) -> None:
    """Ours at DEBUG with ``-v`` (WARNING without), the libraries capped (see above)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=FORMAT)
    cap_libraries()


def cap_libraries() -> None:
    for name, floor in LIBRARY_LEVELS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < floor:
            logger.setLevel(floor)
