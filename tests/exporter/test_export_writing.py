"""The writers' fast paths give what the libraries they stand in for give: CSV lines as the
``csv`` module writes them, JSON records as ``json.dumps`` writes them, zip members deflated by
ISA-L that any zip reader reads back."""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib

import pytest

from exporter.csv import CsvLines
from exporter.json import dump
from exporter.package import open_member

#: Every Latin-1 character, line and paragraph separators, wide characters, the full-width
#: formula characters.
CHARS = [chr(i) for i in range(256)] + ["\u2028", "\u2029", "\u2019", "\U0001f600", "\uff1d"]
FIELDS: list[str | int] = [
    "",
    " ",
    "a",
    0,
    7,
    -3,
    'x"y',
    '"',
    '""',
    "a,b",
    " lead",
    "trail ",
    "\r\n",
    "'=1",
    *CHARS,
    *(f"a{c}b" for c in CHARS),
    *(f"{c}x" for c in CHARS),
]


def _csv_module_line(cells: list[str | int]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


@pytest.mark.parametrize("shape", ["alone", "twice", "among others"])
def test_csv_lines_are_the_csv_modules(shape: str) -> None:
    lines = CsvLines()
    for value in FIELDS:
        cells = {"alone": [value], "twice": [value, value], "among others": ["a", value, 1]}
        row = cells[shape]
        assert lines.line(row) == _csv_module_line(row), repr(row)


def test_json_records_are_json_dumps() -> None:
    record = {
        "reference": "HDF-OISE-000001",
        "theme_number": 5,
        "need": 'Des "urgences"\u2028la nuit \\ à 20 km — ’😀\x00',
        "levers": None,
        "topic": "",
    }
    expected = json.dumps(record, ensure_ascii=False, separators=(",", ": "))
    assert dump(record) == expected
    assert json.loads(dump(record)) == record


def test_a_member_deflated_by_isal_is_read_back_by_zipfile_and_zlib() -> None:
    data = ("<w:p>Une maison de santé au bourg &amp; la nuit</w:p>" * 50_000).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        info = zipfile.ZipInfo("word/document.xml", date_time=(1980, 1, 1, 0, 0, 0))
        with open_member(package, info) as member:
            # ISA-L's compressor, not zlib's: the fast path is taken on this Python
            assert type(member._compressor).__module__.startswith("isal")  # type: ignore[attr-defined]
            for start in range(0, len(data), 1 << 16):
                member.write(data[start : start + (1 << 16)])
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as package:
        assert package.testzip() is None  # CRC checked
        (info,) = package.infolist()
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.file_size == len(data) and info.compress_size < len(data) // 20
        assert package.read(info) == data
        raw = buffer.getvalue()[info.header_offset :]
        # a raw deflate stream, as any unzip tool expects
        start = 30 + int.from_bytes(raw[26:28], "little") + int.from_bytes(raw[28:30], "little")
        assert zlib.decompressobj(-15).decompress(raw[start:]) == data
