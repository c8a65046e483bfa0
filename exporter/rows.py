"""One contribution as a flat row: the documented columns shared by CSV, XLSX and JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from exporter.source import CampaignData, Item

#: The columns, in order. Documented in ``exporter/schema/contributions.schema.json``.
COLUMNS: tuple[str, ...] = (
    "reference",
    "territory_code",
    "territory",
    "theme_number",
    "theme_code",
    "theme",
    "supplementary_theme",
    "submitted_at",
    "profile",
    "language",
    "channel",
    "need",
    "solution",
    "levers",
    "topic_id",
    "topic",
)

#: A spreadsheet would read these first characters as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def neutralise(value: str) -> str:
    """``value`` made inert for spreadsheets: a leading quote before a formula character,
    also after leading spaces (some spreadsheets trim them when they open a file).

    The one neutraliser: the exporter's CSV and XLSX and the console's audit CSV use it."""
    if value.startswith(_FORMULA_START) or value.lstrip().startswith(_FORMULA_START):
        return "'" + value
    return value


class RowMaker:
    """Rows of one data file; ``topics`` maps a reference to its topic's id and label
    (:func:`exporter.report.topic_columns`), a contribution in no topic has none."""

    def __init__(
        self, campaign: CampaignData, topics: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        self.territory_names = {t.code: t.name for t in campaign.territories}
        self.theme_labels = {n: campaign.theme_label(n) for n in range(1, 6)}
        self.topics = topics or {}

    def row(self, item: Item) -> dict[str, Any]:
        topic_id, topic = self.topics.get(item.reference, (None, None))
        return {
            "reference": item.reference,
            "territory_code": item.territory,
            "territory": self.territory_names.get(item.territory, item.territory),
            "theme_number": item.theme_number,
            "theme_code": item.theme_code,
            "theme": self.theme_labels.get(item.theme_number, ""),
            "supplementary_theme": item.supplementary,
            "submitted_at": item.submitted_at.astimezone(UTC)
            .replace(microsecond=0)
            .isoformat()
            .replace("+00:00", "Z"),
            "profile": item.profile,
            "language": item.language,
            "channel": item.channel,
            "need": item.need,
            "solution": item.solution,
            "levers": item.levers or None,
            "topic_id": topic_id,
            "topic": topic,
        }

    def cells(self, item: Item) -> list[str | int]:
        """The row for a spreadsheet: strings neutralised, missing values empty."""
        return self.cells_of(self.row(item))

    @staticmethod
    def cells_of(row: dict[str, Any]) -> list[str | int]:
        """:meth:`cells` of a row already made."""
        out: list[str | int] = []
        for value in row.values():
            if value is None:
                out.append("")
            elif isinstance(value, int):
                out.append(value)
            else:
                out.append(neutralise(str(value)))
        return out
