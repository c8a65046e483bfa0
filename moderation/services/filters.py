"""Parsing what staff type in filters (numbers, days, search text), shared by the queue and the
audit journal."""

from __future__ import annotations

from datetime import date

#: Days typed by staff and days of the dashboard are local days of this zone (settings'
#: CNR_TIMEZONE, the zone of the quiet hours too): the exporter reads the campaign's days the
#: same way (exporter.source.day_bounds), so a console filter and an export of the same dates
#: select the same texts.
DEFAULT_ZONE = "Europe/Paris"


def parse_int(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 12:
        return None
    return int(raw.strip())


def parse_date(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        return None
