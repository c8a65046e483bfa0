"""``cnrbot chat``: contribute to the consultation from a terminal (or a pipe)."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from storage.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "chat",
        description=(
            "Chat with the assistant in the terminal: type the number or the label of a "
            "choice, free text, or a command such as /help, /back, /cancel. The database "
            "(CNR_DATABASE_URL, default cnr.db) is created on first run."
        ),
    )
    parser.add_argument(
        "--user",
        help="local user id (default: one created once and kept next to the database)",
    )
    parser.add_argument(
        "--lang",
        choices=["fr", "en", "falc"],
        help="language of a new conversation: fr, en or falc (« Français facile »; default: fr)",
    )
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="act as if today were this day (to try a campaign whose dates are past)",
    )
    parser.set_defaults(func=_chat)


def _chat(args: argparse.Namespace) -> int:
    # imported when the chat runs, not for `cnrbot chat --help`
    from bot.terminal import keep_libraries_off_the_terminal, run_chat

    if not args.verbose:
        keep_libraries_off_the_terminal()
    settings = Settings()
    return run_chat(
        settings,
        user_id=args.user,
        lang_hint=args.lang or settings.default_language,
        today=args.date,
    )
