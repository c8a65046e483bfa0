"""JSON data file, written as a stream (valid against ``schema/contributions.schema.json``).

Keys come in a fixed order and values are plain, so the same data gives the same bytes.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from exporter.rows import RowMaker
from exporter.source import CampaignData, Item

SCHEMA_PATH = Path(__file__).parent / "schema" / "contributions.schema.json"
FORMAT = "cnr-sante-contributions"
VERSION = 1
#: What comes between two records in the file.
BETWEEN = ",\n  "


#: The records' encoder, made once (``json.dumps`` with options makes one a call).
_RECORDS = json.JSONEncoder(ensure_ascii=False, separators=(",", ": "))


def dump(value: Any) -> str:
    """A record on one line, as the file has it (``json.dumps(value, ensure_ascii=False,
    separators=(",", ": "))``)."""
    return _RECORDS.encode(value)


class JsonWriter:
    def __init__(
        self,
        out: TextIO,
        rows: RowMaker,
        campaign: CampaignData,
        territories: list[str],
        since: date | None,
        until: date | None,
    ) -> None:
        self._out = out
        self._rows = rows
        self._first = True
        head = {
            "format": FORMAT,
            "version": VERSION,
            "campaign": {"code": campaign.code, "name": campaign.name, "region": campaign.region},
            "selection": {
                "territories": territories,
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
            },
            "themes": [{"number": n, "label": campaign.theme_label(n)} for n in range(1, 6)],
        }
        body = json.dumps(head, ensure_ascii=False, indent=1)
        out.write(body[:-2] + ',\n "contributions": [')

    def add(self, item: Item) -> None:
        self.add_row(self._rows.row(item))

    def add_row(self, row: dict[str, Any]) -> None:
        """A record already made (:meth:`RowMaker.row`)."""
        self.add_dumped(dump(row))

    def add_dumped(self, record: str) -> None:
        """A record already written (:func:`dump`): one record, several files."""
        self._out.write("\n  " if self._first else BETWEEN)
        self._first = False
        self._out.write(record)

    def add_encoded(self, records: bytes) -> None:
        """Records already written (:func:`dump`), joined by :data:`BETWEEN` and encoded in
        UTF-8, as one write: as many :meth:`add_dumped` (records encoded once for the
        territory's file and the roll-up's; the file is one opened by ``open``)."""
        if not records:
            return
        head = "\n  " if self._first else BETWEEN
        self._first = False
        self._out.write(head)
        self._out.flush()
        self._out.buffer.write(records)

    def close(self) -> None:
        self._out.write("]\n}\n" if self._first else "\n ]\n}\n")
