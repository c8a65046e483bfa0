"""Console downloads of the annex export, through the exporter's Python API.

The console does not build documents itself: it runs the exporter (``exporter.run``, the same
code as ``cnrbot export``) for one territory (or, for admins, the regional roll-up) and one
format, into a private temporary directory, and sends the file back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from exporter.run import REGION as EXPORTER_REGION
from exporter.run import ExportRequest
from exporter.run import run_export as exporter_run
from exporter.source import ExportError
from storage.models import Campaign, Territory
from storage.settings import Settings

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
    settings: Settings, campaign: Campaign, territory: Territory | None, fmt: str
) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of the export of ``territory`` (None: the region)."""
    with tempfile.TemporaryDirectory(prefix="cnr-console-export-") as tmp:
        request = ExportRequest(
            campaign=campaign.code,
            out=Path(tmp),
            territories=(territory.code,) if territory is not None else (),
            region=territory is None,
            formats=(fmt,),
        )
        try:
            result = await exporter_run(settings, request)
        except ExportError as exc:
            raise ExportUnavailable(f"L'export a échoué : {exc}") from exc
        scope = territory.code if territory is not None else EXPORTER_REGION
        written = [w for w in result.written if w.format == fmt and w.scope == scope]
        if not written:
            raise ExportUnavailable(
                "Aucune contribution approuvée pour cette sélection : rien à exporter."
            )
        path = written[0].path
        return path.name, CONTENT_TYPES[fmt], path.read_bytes()
