"""The export: read the selection once, territory by territory, and write every format.

Per territory, the approved contributions are streamed from the database in batches, grouped,
and written (DOCX, ODT, Markdown, CSV, JSON, XLSX); the data files of the regional roll-up are
appended to as territories go, and the roll-up documents are built at the end. Every file is
written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from exporter import charts as charts_mod
from exporter.csv import CsvLines, CsvWriter
from exporter.docx import write_docx
from exporter.files import atomic_path, check_writable_dir
from exporter.json import BETWEEN as RECORDS_BETWEEN
from exporter.json import JsonWriter
from exporter.json import dump as dump_record
from exporter.markdown import write_markdown
from exporter.merge import merge_into
from exporter.odt import write_odt
from exporter.report import Report, build_report, find_section_topics, topic_columns
from exporter.rows import RowMaker
from exporter.source import (
    CampaignData,
    ExportError,
    Item,
    TerritoryInfo,
    exported,
    load_campaign,
    stream_items,
)
from exporter.xlsx import XlsxWriter
from storage.db import create_engine, session_factory
from storage.models import Contribution
from storage.settings import Settings

FORMATS = ("docx", "odt", "md", "csv", "xlsx", "json")
DOCUMENT_FORMATS = ("docx", "odt", "md")
REGION = "REGION"
#: Contributions whose rows are made and written together.
_ROWS = 1000


def parse_formats(text: str) -> tuple[str, ...]:
    """``"docx,md"`` -> ("docx", "md"); unknown names are an :class:`ExportError`."""
    wanted = [f.strip().casefold().lstrip(".") for f in text.split(",") if f.strip()]
    wanted = ["md" if f == "markdown" else f for f in wanted]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise ExportError(
            f"unknown format: {', '.join(unknown) or '(none)'} "
            f"(possible formats: {', '.join(FORMATS)})"
        )
    return tuple(f for f in FORMATS if f in wanted)


@dataclass(frozen=True)
class ExportRequest:
    campaign: str
    out: Path
    territories: Sequence[str] = ()  # empty: every territory of the campaign
    region: bool = False
    formats: Sequence[str] = FORMATS
    since: date | None = None
    until: date | None = None
    charts: bool = False
    into: Path | None = None
    #: Merge ``into`` a workshop document whose title names another territory.
    force: bool = False


@dataclass(frozen=True)
class Written:
    scope: str
    format: str
    path: Path
    contributions: int


@dataclass
class ExportResult:
    written: list[Written] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    total: int = 0


class Progress:
    """Progress reporting hooks (no-op by default; the CLI shows a bar on a terminal)."""

    def start(self, total: int) -> None:
        """``total`` contributions are about to be read."""

    def advance(self, n: int, label: str) -> None:
        """``n`` more contributions were read (currently on ``label``)."""


def release_memory() -> None:
    """Give freed memory back to the system after a large document (glibc keeps it otherwise,
    and the peaks of successive documents add up). No ``gc.collect()``: the documents are
    streamed, and a full collection walks every contribution kept for the roll-up (~0.3 s
    each time at 20,000)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def settle_in_memory() -> None:
    """The objects alive now (the contributions read, their topics) are kept out of the cyclic
    garbage collector's full collections until the export ends (``gc.freeze``): they are freed
    by reference counting as ever, but each full collection no longer walks hundreds of
    thousands of texts and items (~12 s of an export of 100,000 long contributions). Nothing
    the export makes is a reference cycle that needs the collector."""
    gc.freeze()


#: glibc's mallopt parameter for the number of malloc arenas (malloc.h).
_M_ARENA_MAX = -8


def one_malloc_arena() -> None:
    """Have every thread of the process allocate from one glibc arena. The export's worker
    thread otherwise gets an arena of its own, and what one arena frees the other does not
    reuse (the contributions are read on the event loop's thread, grouped and written in the
    worker's): ~35 MiB more at the peak of 100,000 long contributions. Python threads hold the
    GIL, so more arenas buy little. No effect where the C library is not glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 1)


def file_name(campaign: CampaignData, scope: str, fmt: str) -> str:
    return f"{campaign.code}_{scope}.{fmt}"


async def _counts(
    session: AsyncSession,
    campaign: CampaignData,
    territories: Sequence[TerritoryInfo],
    since: date | None,
    until: date | None,
) -> dict[str, int]:
    codes = {t.id: t.code for t in territories}
    stmt = (
        select(Contribution.territory_id, func.count())
        .where(*exported(campaign, list(codes), since, until))
        .group_by(Contribution.territory_id)
    )
    rows = (await session.execute(stmt)).all()
    counts = dict.fromkeys(codes.values(), 0)
    for territory_id, n in rows:
        counts[codes[territory_id]] = int(n)
    return counts


@dataclass
class _DataFiles:
    """The data files of one scope being written (CSV, JSON, XLSX: those asked for)."""

    scope: str
    csv: CsvWriter | None = None
    json: JsonWriter | None = None
    xlsx: XlsxWriter | None = None
    xlsx_path: Path | None = None
    #: (format, final path) of each file, recorded when complete
    finals: list[tuple[str, Path]] = field(default_factory=list)

    def add(
        self,
        items: Sequence[Item],
        lines: bytes,
        records: bytes,
        cells: list[list[str | int]],
    ) -> None:
        """Contributions in a row: their CSV ``lines`` and JSON ``records`` (encoded, see
        :meth:`CsvWriter.add_encoded`, :meth:`JsonWriter.add_encoded`) and spreadsheet
        ``cells`` (written at once: one write a line cost more than the line)."""
        if self.csv is not None:
            self.csv.add_encoded(lines)
        if self.json is not None:
            self.json.add_encoded(records)
        if self.xlsx is not None:
            for item, row in zip(items, cells, strict=True):
                self.xlsx.add_cells(item, row)


class _Exporter:
    def __init__(
        self,
        settings: Settings,
        request: ExportRequest,
        progress: Progress,
        engine: AsyncEngine | None = None,
    ) -> None:
        self.settings = settings
        self.request = request
        self.progress = progress
        self.engine = engine
        self.result = ExportResult()
        #: every data file's rows (its topics set per territory)
        self.rows: RowMaker

    def _record(self, scope: str, fmt: str, path: Path, n: int) -> None:
        self.result.written.append(Written(scope, fmt, path, n))

    def _documents(self, campaign: CampaignData, report: Report, scope: str, n: int) -> None:
        out = self.request.out
        if self.request.charts:
            report = dataclasses.replace(report, chart_png=charts_mod.theme_chart(report))
        formats = self.request.formats
        if "docx" in formats:
            final = out / file_name(campaign, scope, "docx")
            with atomic_path(final) as tmp:
                write_docx(report, tmp)
            self._record(scope, "docx", final, n)
            release_memory()
        if "odt" in formats:
            final = out / file_name(campaign, scope, "odt")
            with atomic_path(final) as tmp:
                write_odt(report, tmp)
            self._record(scope, "odt", final, n)
            release_memory()
        if "md" in formats:
            chart_name = None
            if report.chart_png:
                chart_name = file_name(campaign, scope, "png")
                with atomic_path(out / chart_name) as tmp:
                    tmp.write_bytes(report.chart_png)
                self._record(scope, "png", out / chart_name, n)
            final = out / file_name(campaign, scope, "md")
            with atomic_path(final) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
                write_markdown(report, fh, chart_file=chart_name)
            self._record(scope, "md", final, n)

    def _open_data_files(
        self, stack: contextlib.ExitStack, campaign: CampaignData, scope: str, codes: list[str]
    ) -> _DataFiles:
        """The data files of ``scope`` (a territory, or the roll-up of ``codes``), open until
        ``stack`` closes; each is renamed into place only if the export succeeds."""
        out, req = self.request.out, self.request
        files = _DataFiles(scope)

        def target(fmt: str) -> Path:
            final = out / file_name(campaign, scope, fmt)
            files.finals.append((fmt, final))
            return stack.enter_context(atomic_path(final))

        if "csv" in req.formats:
            fh = stack.enter_context(target("csv").open("w", encoding="utf-8", newline=""))
            files.csv = CsvWriter(fh, self.rows)
        if "json" in req.formats:
            fh = stack.enter_context(target("json").open("w", encoding="utf-8", newline="\n"))
            files.json = JsonWriter(fh, self.rows, campaign, codes, req.since, req.until)
        if "xlsx" in req.formats and (scope == REGION or not req.region):
            files.xlsx_path = target("xlsx")
            files.xlsx = XlsxWriter(campaign, self.rows, files.xlsx_path)
            # closed before the file is renamed or removed, even if the export fails
            stack.callback(files.xlsx.close)
        return files

    def _write_rows(
        self,
        territory: TerritoryInfo,
        items: list[Item],
        topics: dict[str, tuple[str, str]],
        sinks: list[_DataFiles],
    ) -> None:
        """Each contribution's row, made once, into the territory's and the roll-up's files."""
        self.rows.topics = topics
        for sink in sinks:
            if sink.xlsx is not None:
                sink.xlsx.start_territory(territory)
        csv_lines = CsvLines() if "csv" in self.request.formats else None
        with_records = "json" in self.request.formats
        for start in range(0, len(items), _ROWS):
            batch = items[start : start + _ROWS]
            rows = [self.rows.row(item) for item in batch]
            cells = [RowMaker.cells_of(row) for row in rows]
            # made and encoded once, for the territory's files and the roll-up's
            lines = b""
            if csv_lines is not None:
                lines = "".join([csv_lines.line(c) for c in cells]).encode("utf-8")
            records = b""
            if with_records:
                records = RECORDS_BETWEEN.join([dump_record(row) for row in rows]).encode("utf-8")
            del rows
            for sink in sinks:
                sink.add(batch, lines, records, cells)

    def _close_data_files(self, files: _DataFiles, n: int) -> None:
        """Finish the files of a scope (the stack renames them when it closes)."""
        if files.json is not None:
            files.json.close()
        if files.xlsx is not None:
            files.xlsx.save()
            files.xlsx = None
            release_memory()
        for fmt, final in files.finals:
            self._record(files.scope, fmt, final, n)

    async def run(self) -> ExportResult:
        req = self.request
        one_malloc_arena()
        if req.charts:
            charts_mod.check_available()
        if req.into is not None:
            if not req.into.is_file():
                raise ExportError(f"workshop document not found: {req.into}")
            if len(req.territories) != 1:
                raise ExportError("--into needs exactly one --territory (the workshop's)")
        try:
            if self.engine is not None:  # the caller's (the console's): theirs to dispose
                async with session_factory(self.engine)() as session:
                    await self._run(session)
                return self.result
            engine = create_engine(self.settings)
            try:
                async with session_factory(engine)() as session:
                    await self._run(session)
            finally:
                await engine.dispose()
            return self.result
        finally:
            gc.unfreeze()  # what the export kept frozen is the collector's again

    async def _run(self, session: AsyncSession) -> None:
        req = self.request
        campaign = await load_campaign(session, req.campaign)
        self.rows = RowMaker(campaign)
        if req.territories:
            selected: list[TerritoryInfo] = []
            for code in req.territories:
                t = campaign.territory(code)
                if t not in selected:
                    selected.append(t)
        else:
            selected = list(campaign.territories)
        check_writable_dir(req.out)
        counts = await _counts(session, campaign, selected, req.since, req.until)
        self.result.total = sum(counts.values())
        if self.result.total == 0:
            self.result.notices.append(
                "no approved contribution matches the selection: no file written"
            )
            return
        self.progress.start(self.result.total)
        threshold = self.settings.similarity_threshold
        documents = req.into is not None or any(f in DOCUMENT_FORMATS for f in req.formats)
        region_items: list[Item] = []
        # normalised texts, kept from the territories for the regional roll-up's grouping
        norm_cache: dict[str, str] = {}
        with contextlib.ExitStack() as region_stack:
            region_files = None
            if req.region and req.into is None:
                with_data = [t.code for t in selected if counts[t.code]]
                region_files = self._open_data_files(region_stack, campaign, REGION, with_data)
            for territory in selected:
                if counts[territory.code] == 0:
                    self.result.notices.append(
                        f"{territory.name} ({territory.code}): no approved contribution, "
                        "no file for this territory"
                    )
                    continue
                items: list[Item] = []
                async for item in stream_items(
                    session, campaign, [territory], req.since, req.until
                ):
                    items.append(item)
                    if len(items) % 1000 == 0:
                        self.progress.advance(1000, territory.code)
                self.progress.advance(len(items) % 1000, territory.code)
                settle_in_memory()
                # topics, grouping and writing are CPU work: in a thread, so the event loop
                # stays free (a workshop document gets the contributions, not the topics)
                topics = {} if req.into else await asyncio.to_thread(find_section_topics, items)
                report = (
                    await asyncio.to_thread(
                        build_report,
                        campaign,
                        items,
                        territory_code=territory.code,
                        threshold=threshold,
                        cache=norm_cache if req.region else None,
                        topics=topics,
                    )
                    if documents
                    else None
                )
                if req.into is not None and report is not None:
                    final = req.out / f"{req.into.stem}_contributions.docx"
                    if final.resolve() == req.into.resolve():
                        raise ExportError("the workshop document is never modified: rename it")
                    others = [t.name for t in campaign.territories]
                    await asyncio.to_thread(
                        _merge, req.into, report, final, territory.name, others, req.force
                    )
                    self._record(territory.code, "docx (atelier)", final, len(items))
                    continue
                if report is not None:
                    await asyncio.to_thread(
                        self._documents, campaign, report, territory.code, len(items)
                    )
                del report
                columns = topic_columns(topics)
                del topics
                with contextlib.ExitStack() as stack:
                    files = self._open_data_files(stack, campaign, territory.code, [territory.code])
                    sinks = [files] if region_files is None else [files, region_files]
                    await asyncio.to_thread(self._write_rows, territory, items, columns, sinks)
                    await asyncio.to_thread(self._close_data_files, files, len(items))
                if req.region and documents:
                    region_items.extend(items)
                del items
            if region_files is not None:
                n = sum(counts.values())
                if documents:
                    report = await asyncio.to_thread(
                        build_report,
                        campaign,
                        region_items,
                        territory_code=None,
                        threshold=threshold,
                        cache=norm_cache,
                        last_use=True,
                    )
                    norm_cache.clear()
                    region_items.clear()
                    await asyncio.to_thread(self._documents, campaign, report, REGION, n)
                    del report
                await asyncio.to_thread(self._close_data_files, region_files, n)


def _merge(
    workshop: Path,
    report: Report,
    final: Path,
    territory: str,
    others: list[str],
    force: bool,
) -> None:
    with atomic_path(final) as tmp:
        merge_into(workshop, report, tmp, territory=territory, others=others, force=force)


async def run_export(
    settings: Settings,
    request: ExportRequest,
    progress: Progress | None = None,
    *,
    engine: AsyncEngine | None = None,
) -> ExportResult:
    """Run one export; :class:`ExportError` for problems the operator can fix.

    With ``engine`` (the console's), the export reads through it instead of opening its own.
    Reading is on the event loop; grouping and writing the files run in a worker thread."""
    return await _Exporter(settings, request, progress or Progress(), engine).run()
