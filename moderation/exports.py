"""Console downloads of the annex export, through the exporter's Python API.

The console does not build documents itself: it asks the exporter (``exporter/``), the same code
as ``cnrbot export``, for one territory and one format, and sends the bytes back.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Territory
from storage.settings import Settings

CONTENT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportUnavailable(RuntimeError):
    """The exporter cannot produce this file here (message in French, for the user)."""


def export_formats() -> list[str]:
    return list(CONTENT_TYPES)


async def run_export(
    settings: Settings, session: AsyncSession, territory: Territory, fmt: str
) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of the export of ``territory`` in ``fmt``."""
    raise ExportUnavailable(
        "L'export n'est pas encore disponible dans la console (module d'export absent) ; "
        "utilisez la commande « cnrbot export »."
    )
