"""``cnrbot campaign load FILE.toml`` and ``cnrbot campaign list``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from storage import campaigns_db
from storage.db import create_engine, session_factory, upgrade
from storage.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser("campaign")
    csub = parser.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    load = csub.add_parser(
        "load",
        help="load a campaign file (TOML) into the database; loading it again changes nothing",
    )
    load.add_argument(
        "file", help="path of the campaign file, or the name of a shipped one (storage/campaigns/)"
    )
    load.set_defaults(func=_load)
    listing = csub.add_parser("list", help="list the campaigns in the database")
    listing.set_defaults(func=_list)


def _load(args: argparse.Namespace) -> int:
    from storage.campaign_file import CampaignFileError, read_campaign_file

    path = campaigns_db.resolve_campaign_file(args.file)
    try:
        spec = read_campaign_file(path)
    except CampaignFileError as exc:
        print(f"cnrbot campaign load: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cnrbot campaign load: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2

    async def go() -> campaigns_db.LoadResult:
        engine = create_engine(Settings())
        try:
            await upgrade(engine)
            async with session_factory(engine)() as session, session.begin():
                return await campaigns_db.load_campaign(session, spec)
        finally:
            await engine.dispose()

    result = asyncio.run(go())
    what = {
        "created": "loaded",
        "updated": "updated",
        "unchanged": "already loaded, unchanged",
    }[result.status]
    print(
        f"campaign {result.code}: {what} ({len(spec.territories)} territories, "
        f"{len(spec.themes)} themes + {len(spec.supplementary.themes)} extra themes)"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    async def go() -> list[campaigns_db.CampaignSummary]:
        engine = create_engine(Settings())
        try:
            await upgrade(engine)
            async with session_factory(engine)() as session:
                return await campaigns_db.list_campaigns(session)
        finally:
            await engine.dispose()

    campaigns = asyncio.run(go())
    if not campaigns:
        print("no campaign loaded (cnrbot campaign load FILE.toml)")
        return 0
    for c in campaigns:
        print(
            f"{c.code}\t{c.name}\t{c.region}\t{c.opens_on.isoformat()} – {c.closes_on.isoformat()}"
            f"\t{c.territories} territories\t{c.contributions} contributions"
        )
    return 0
