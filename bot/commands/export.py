"""``cnrbot export``: the annex documents and data files of approved contributions.

    cnrbot export --campaign HDF-2022 --all --region --format docx,odt,md,csv,xlsx,json \
        [--since 2022-11-01] [--until 2022-12-15] [--charts] --out exports/
    cnrbot export --campaign HDF-2022 --territory METROPOLE-FLANDRES \
        --into atelier-metropole-flandres.docx --out exports/

A progress bar is shown on a terminal only; a summary table of the files written follows.
Problems the operator can fix (unknown campaign, territory or format, unwritable directory,
missing matplotlib, a workshop document that does not follow the annex or whose title names
another territory than --territory, unless --force) exit with code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from exporter.run import FORMATS, ExportRequest, ExportResult, parse_formats, run_export
from exporter.run import Progress as ExportProgress
from exporter.source import ExportError
from storage.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        description="Export approved contributions per territory, in the annex format.",
    )
    parser.add_argument("--campaign", required=True, metavar="CODE", help="campaign code")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--territory",
        action="append",
        default=[],
        metavar="CODE",
        help="territory code (repeat for several); default: every territory",
    )
    which.add_argument("--all", action="store_true", help="every territory of the campaign")
    parser.add_argument(
        "--region", action="store_true", help="also write the regional roll-up of the selection"
    )
    parser.add_argument(
        "--format",
        default=",".join(FORMATS),
        metavar="LIST",
        help=f"comma-separated formats among {','.join(FORMATS)} (default: all)",
    )
    parser.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="first day included")
    parser.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="last day included")
    parser.add_argument(
        "--charts", action="store_true", help="add bar charts (needs the 'charts' extra)"
    )
    parser.add_argument(
        "--into",
        type=Path,
        metavar="WORKSHOP.docx",
        help="write a copy of this workshop restitution with the contributions added per theme",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --into: merge even when the workshop document's title names another territory",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.set_defaults(func=_export)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


class _Bar(ExportProgress):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("export", total=None)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, n: int, label: str) -> None:
        self.progress.update(self.task, advance=n, description=label)


def _export(args: argparse.Namespace, settings: Settings | None = None) -> int:
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False)
    try:
        formats = parse_formats(args.format)
        if args.since and args.until and args.since > args.until:
            raise ExportError(f"--since {args.since} is after --until {args.until}")
        request = ExportRequest(
            campaign=args.campaign,
            out=args.out,
            territories=tuple(args.territory or ()),
            region=args.region,
            formats=formats,
            since=args.since,
            until=args.until,
            charts=args.charts,
            into=args.into,
            force=args.force,
        )
        settings = settings or Settings()
        if err.is_terminal:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                result = asyncio.run(run_export(settings, request, _Bar(progress)))
        else:
            result = asyncio.run(run_export(settings, request))
    except ExportError as exc:
        err.print(f"cnrbot export: error: {exc}", markup=False, soft_wrap=True)
        return 2
    _summary(out, err, result)
    return 0


def _summary(out: Console, err: Console, result: ExportResult) -> None:
    for notice in result.notices:
        err.print(f"cnrbot export: notice: {notice}", markup=False, soft_wrap=True)
    if not result.written:
        return
    table = Table(
        title=f"{result.total} approved contributions exported to {result.written[0].path.parent}"
    )
    table.add_column("scope", overflow="fold")
    table.add_column("format")
    table.add_column("contributions", justify="right")
    table.add_column("file", overflow="fold")
    for w in result.written:
        table.add_row(w.scope, w.format, str(w.contributions), w.path.name)
    out.print(table)


def main(argv: list[str]) -> int:  # pragma: no cover - convenience for python -m
    parser = argparse.ArgumentParser(prog="cnrbot export")
    register(parser.add_subparsers())
    args = parser.parse_args(["export", *argv])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
