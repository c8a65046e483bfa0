"""The ``cnrbot`` command. Each module of :mod:`bot.commands` adds its subcommand through a
``register(subparsers)`` function, so areas (chat, campaign, export, console...) stay apart.

A subcommand's module is imported only when that subcommand is parsed: ``cnrbot --help`` and
``cnrbot chat`` never load the web, export, console or Telegram stacks (a test checks it;
``bench/cli_startup.py`` times it). The one-line summaries that ``cnrbot --help`` lists are
therefore kept here, in :data:`COMMANDS`, not in the modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

#: Every subcommand: the module ``bot.commands.<name>`` registers it (imported when the
#: subcommand is parsed) and its one-line summary, listed by ``cnrbot --help``.
COMMANDS: dict[str, str] = {
    "campaign": "load and list consultation campaigns",
    "chat": "contribute in the terminal (same conversation as on Telegram; resumable)",
    "console": "serve the staff moderation console (web)",
    "db": "database schema (Alembic migrations) and maintenance",
    "diagram": "print the conversation's state diagram (Mermaid) as embedded in README",
    "export": "write the annex documents (DOCX, ODT, Markdown) and data files (CSV, XLSX, JSON)",
    "poster": "write printable A4 posters (SVG) with QR codes to the web chat and the bot",
    "run": "run the Telegram bot (long polling, or --webhook)",
    "staff": "staff accounts of the moderation console",
    "web": "serve the citizen web chat",
}


class LazySubcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subparsers whose real parser is built, by importing its module, only when chosen.

    Until then each subcommand is a placeholder parser that carries the name (a valid
    choice) and the summary (for the parent's help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: set[str] = set()

    def add_lazy(self, name: str, summary: str) -> None:
        self.add_parser(name, help=summary)
        self._pending.add(name)

    def load(self, name: str) -> argparse.ArgumentParser:
        """The real parser of ``name``, registered by its module on first use."""
        if name in self._pending:
            self._pending.discard(name)
            del self._name_parser_map[name]
            listed = list(self._choices_actions)  # the summary from COMMANDS stays listed
            importlib.import_module(f"bot.commands.{name}").register(self)
            self._choices_actions[:] = listed
            if name not in self._name_parser_map:
                raise LookupError(f"bot.commands.{name} registers no {name!r} subcommand")
        parser: argparse.ArgumentParser = self._name_parser_map[name]
        return parser

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values and values[0] in self._name_parser_map:
            self.load(values[0])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnrbot",
        description="CNR Santé: collect, moderate and export citizens' contributions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, action=LazySubcommands
    )
    assert isinstance(sub, LazySubcommands)
    for name, summary in COMMANDS.items():
        sub.add_lazy(name, summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.logs import configure_logging

    configure_logging(args.verbose)
    from pydantic import ValidationError

    try:
        result: int = args.func(args)
    except ValidationError as exc:  # the CNR_* settings: say which, without a traceback
        print(f"cnrbot: configuration refused ({exc.error_count()} problem(s)):", file=sys.stderr)
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"  {where}: {error['msg']}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
