"""Console downloads of the annex export, through the exporter's Python API.

The console does not build documents itself: it runs the exporter (``exporter.run``, the same
code as ``cnrbot export``) for one territory (or, for admins, the regional roll-up) and one
format, into a private temporary directory, and sends the file back. The exporter reads with
the console's engine (no engine per download) and builds the documents in a worker thread, so
the console keeps answering other requests while an export runs.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from exporter.run import REGION as EXPORTER_REGION
from exporter.run import ExportRequest
from exporter.run import run_export as exporter_run
from exporter.source import ExportError
from moderation.services.audit import By, audit_by
from storage import moderation as store
from storage.settings import Settings

if TYPE_CHECKING:
    from storage.models import Campaign, Territory

CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "md": "text/markdown",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
REGION = "region"


class ExportUnavailable(RuntimeError):
    """The exporter cannot produce this file (message in French, for the user)."""


def export_formats() -> list[str]:
    return list(CONTENT_TYPES)


async def run_export(
    settings: Settings,
    engine: AsyncEngine,
    campaign: Campaign,
    territory: Territory | None,
    fmt: str,
) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of the export of ``territory`` (None: the region)."""
    tmp = await asyncio.to_thread(tempfile.mkdtemp, prefix="cnr-console-export-")
    try:
        request = ExportRequest(
            campaign=campaign.code,
            out=Path(tmp),
            territories=(territory.code,) if territory is not None else (),
            region=territory is None,
            formats=(fmt,),
        )
        try:
            result = await exporter_run(settings, request, engine=engine)
        except ExportError as exc:
            raise ExportUnavailable(f"L'export a échoué : {exc}") from exc
        scope = territory.code if territory is not None else EXPORTER_REGION
        written = [w for w in result.written if w.format == fmt and w.scope == scope]
        if not written:
            raise ExportUnavailable(
                "Aucune contribution approuvée pour cette sélection : rien à exporter."
            )
        path = written[0].path
        return path.name, CONTENT_TYPES[fmt], await asyncio.to_thread(path.read_bytes)
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, ignore_errors=True)


async def campaign_by_id(session: AsyncSession, campaign_id: int) -> Campaign | None:
    return await store.campaign(session, campaign_id)


async def audit_export(
    session: AsyncSession, by: By, campaign: Campaign, target: str, fmt: str, size: int
) -> None:
    """The journal's entry of a download (what, for which scope, how large; not the content)."""
    await audit_by(
        session,
        by,
        "export",
        target=target,
        after={"format": fmt, "campaign": campaign.code, "scope": target, "bytes": size},
    )
