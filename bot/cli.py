"""The ``cnrbot`` command. Each module of :mod:`bot.commands` adds its subcommands through a
``register(subparsers)`` function, so areas (chat, campaign, export, console...) stay apart."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import bot.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnrbot",
        description="CNR Santé: collect, moderate and export citizens' contributions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(bot.commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"bot.commands.{info.name}")
        module.register(sub)
    return parser


#: Libraries whose DEBUG lines carry what citizens wrote or who they are: the database
#: drivers log statements with their parameters, python-telegram-bot every Bot API call with
#: its texts and chat ids. ``-v`` never passes those through.
QUIET_LIBRARIES = ("aiosqlite", "asyncpg", "sqlalchemy", "telegram", "httpx", "httpcore")


def configure_logging(verbose: bool) -> None:
    """Our own operational messages (never texts nor identities) at DEBUG with ``-v``; the
    libraries of :data:`QUIET_LIBRARIES` at INFO at most, whatever the root level."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LIBRARIES:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
