"""``cnrbot poster``: printable A4 posters (SVG) with QR codes to the web chat and the bot.

    cnrbot poster --territory OISE --out affiche-oise.svg [--campaign CODE] [--url URL]
    cnrbot poster --territory oise --territory "Littoral Nord" --out affiches/
    cnrbot poster --all --out affiches/

The web chat's code opens ``CNR_WEB_PUBLIC_URL?territoire=oise`` (``--url`` overrides); the
Telegram code opens ``https://t.me/CNR_TELEGRAM_BOT_USERNAME?start=oise`` (left out, with a
notice, when the username is unset). The territory is given by code or name, as the chat
accepts it. Problems the operator can fix exit with code 2 and say what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot.poster import (
    Poster,
    PosterError,
    check_bot_username,
    check_public_url,
    file_name,
    find_territory,
    render_svg,
    telegram_link,
    web_link,
)
from dialogs.model import CampaignView, Territory
from storage.settings import Settings

PROG = "cnrbot poster"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "poster",
        description=(
            "Write an A4 poster (SVG, to print or convert to PDF) for a territory: the "
            "campaign's name, a call to take part, a QR code to the web chat with the territory "
            "preselected and one to the Telegram bot, each link printed in clear."
        ),
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--territory",
        action="append",
        default=[],
        metavar="CODE_OR_NAME",
        help="territory code or name (repeat for several: --out is then a directory)",
    )
    which.add_argument(
        "--all", action="store_true", help="one poster per territory into the --out directory"
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="PATH",
        help="the SVG file to write; a directory with --all or several territories",
    )
    parser.add_argument(
        "--campaign",
        metavar="CODE",
        help="campaign code (default: CNR_CAMPAIGN, else the only or latest loaded)",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help="web chat address (default: CNR_WEB_PUBLIC_URL), e.g. https://contribuer.ars.example.fr/",
    )
    parser.set_defaults(func=_poster)


class _Refused(Exception):
    """Something the operator can fix: the message is printed, the exit code is 2."""


@dataclass(frozen=True)
class _Links:
    web_base: str
    bot_username: str | None


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _links(args: argparse.Namespace, settings: Settings) -> _Links:
    if args.url is not None:
        where, base = "--url", args.url
    elif settings.web_public_url:
        where, base = "CNR_WEB_PUBLIC_URL", settings.web_public_url
    else:
        raise _Refused(
            "no address for the web chat: set CNR_WEB_PUBLIC_URL (e.g. "
            "https://contribuer.ars.example.fr/) or pass --url"
        )
    try:
        base = check_public_url(base)
    except PosterError as exc:
        raise _Refused(f"{where}: {exc}") from None
    username = None
    if settings.telegram_bot_username:
        try:
            username = check_bot_username(settings.telegram_bot_username)
        except PosterError as exc:
            raise _Refused(f"CNR_TELEGRAM_BOT_USERNAME: {exc}") from None
    return _Links(base, username)


async def _campaign(settings: Settings, code: str | None) -> CampaignView:
    """The campaign's view, from the database opened as ``cnrbot chat`` opens it (created,
    migrated and loaded with the default campaign file when empty)."""
    from storage import campaigns_db
    from storage.service import DialogService

    service = await DialogService.open(settings)
    try:
        async with service.sessions() as session:
            current = await campaigns_db.current_campaign(session, code)
            if current is None:
                known = [c.code for c in await campaigns_db.list_campaigns(session)]
                raise _Refused(f"unknown campaign {code!r} (known: {', '.join(known) or 'none'})")
            return await campaigns_db.campaign_view(session, current.id)
    finally:
        await service.close()


def _select(view: CampaignView, args: argparse.Namespace) -> list[Territory]:
    if args.all:
        return list(view.territories)
    chosen: list[Territory] = []
    unknown: list[str] = []
    for query in args.territory:
        territory = find_territory(view.territories, query)
        if territory is None:
            unknown.append(query)
        elif territory not in chosen:
            chosen.append(territory)
    if unknown:
        valid = ", ".join(t.code for t in view.territories)
        names = ", ".join(repr(q) for q in unknown)
        raise _Refused(f"unknown territory {names} in campaign {view.code} (valid codes: {valid})")
    return chosen


def _targets(out: Path, campaign: str, territories: list[Territory], many: bool) -> list[Path]:
    """Where each poster goes: ``out`` itself for one poster, else files in the directory
    ``out`` (created when missing)."""
    if not many and not out.is_dir():
        return [out]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _Refused(f"cannot create the directory {out}: {exc.strerror or exc}") from None
    return [out / file_name(campaign, t.code) for t in territories]


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    except OSError as exc:
        raise _Refused(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _Refused(f"cannot write {path}: {exc.strerror or exc}") from None


def _poster(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or Settings()
    try:
        links = _links(args, settings)
        if links.bot_username is None:
            print(
                f"{PROG}: notice: CNR_TELEGRAM_BOT_USERNAME is not set: the poster has the web "
                "chat's QR code only",
                file=sys.stderr,
            )
        view = asyncio.run(_campaign(settings, args.campaign or settings.campaign))
        territories = _select(view, args)
        many = args.all or len(territories) > 1
        targets = _targets(args.out, view.code, territories, many)
        for territory, path in zip(territories, targets, strict=True):
            poster = Poster(
                campaign_name=view.name,
                territory_name=territory.name,
                web_url=web_link(links.web_base, territory.code),
                telegram_url=(
                    telegram_link(links.bot_username, territory.code)
                    if links.bot_username
                    else None
                ),
                closes_on=view.closes_on,
            )
            _write(path, render_svg(poster))
            print(f"{path}\t{territory.code}\t{territory.name}")
    except (_Refused, PosterError) as exc:
        return _error(str(exc))
    if view.closes_on < date.today():
        print(
            f"{PROG}: notice: campaign {view.code} closed on {view.closes_on.isoformat()}: "
            "the posters say it runs until then",
            file=sys.stderr,
        )
    return 0
