"""The writers' fast paths give what the slower forms gave: CSV lines as the ``csv`` module
writes them, JSON records as ``json.dumps`` writes them, zip members deflated by ISA-L that any
zip reader reads back, the Markdown escape as its two substitutions, lists streamed by runs as
paragraph after paragraph."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import docx
import pytest

from exporter import docx as docx_mod
from exporter import markdown
from exporter import odt as odt_mod
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


def _markdown_escape_by_substitution(text: str) -> str:
    """The Markdown escape as two substitutions over the whole text (its definition)."""
    escaped = re.sub(r"([\\`*_{}\[\]<>#|~&])", r"\\\1", text)
    return re.sub(r"^(\s*(?:\d+)?)([-+=.)])", lambda m: m.group(1) + "\\" + m.group(2), escaped)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Des urgences la nuit",
        "# pas un titre",
        "- pas une liste",
        "  12) pas une liste numérotée",
        "3.5 km à pied",
        "+ = - . )",
        "a | b",
        "<script>&amp; [lien](http://x) ![img](y) *gras* _it_ `code` ~barré~ {x} \\",
        "1986-12-03",
        " -",
        "\u00a0- espace insécable",
    ],
)
def test_markdown_escape_is_the_two_substitutions(text: str) -> None:
    assert markdown.escape(text) == _markdown_escape_by_substitution(text)
    assert markdown._cell(text) == (re.sub(r"([\\`*_{}\[\]<>#|~&])", r"\\\1", text) or " ")


def test_streamed_paragraphs_are_one_paragraph_each() -> None:
    """DOCX and ODT lists streamed by runs: one escaped paragraph per text, in order, with the
    markup of a paragraph made alone."""
    texts = [f"Contribution {n} <&> — ’" for n in range(2 * docx_mod.RUN + 3)]
    document = docx.Document()
    markup = docx_mod._Markup(document)
    joined = "".join(markup.paragraphs(texts, markup.bullet))
    assert joined == "".join(markup.paragraph(t, markup.bullet) for t in texts)
    assert joined.count("<w:p>") == len(texts) and "&lt;&amp;&gt;" in joined
    joined = "".join(odt_mod._ps(texts, odt_mod.ITEM_STYLE))
    assert joined == "".join(odt_mod._p(t, odt_mod.ITEM_STYLE) for t in texts)
    assert joined.count("<text:p ") == len(texts)


def test_records_and_lines_encoded_once_are_written_one_by_one(tmp_path: Path) -> None:
    from exporter.csv import CsvWriter
    from exporter.json import BETWEEN, JsonWriter

    records = [dump({"reference": f"R{n}", "need": "Des urgences, la nuit — ’"}) for n in range(5)]
    lines = [CsvLines().line([f"R{n}", 'Des "urgences", la nuit — ’', n]) for n in range(5)]
    outputs = []
    for encoded in (True, False):
        with (
            (tmp_path / f"{encoded}.json").open("w", encoding="utf-8", newline="\n") as out,
            (tmp_path / f"{encoded}.csv").open("w", encoding="utf-8", newline="") as csv_out,
        ):
            writer = JsonWriter.__new__(JsonWriter)
            writer._out, writer._first = out, True
            out.write("{")  # text written before and after the encoded writes stays in order
            table = CsvWriter.__new__(CsvWriter)
            table._out = csv_out
            csv_out.write("head\r\n")
            for part in (records[:0], records[:2], records[2:]):
                if encoded:
                    writer.add_encoded(BETWEEN.join(part).encode("utf-8"))
                else:
                    for record in part:
                        writer.add_dumped(record)
            for part in (lines[:3], lines[3:]):
                if encoded:
                    table.add_encoded("".join(part).encode("utf-8"))
                else:
                    for line in part:
                        table.add_line(line)
            writer.close()
            csv_out.write("tail")
        outputs.append(
            (
                (tmp_path / f"{encoded}.json").read_bytes(),
                (tmp_path / f"{encoded}.csv").read_bytes(),
            )
        )
    assert outputs[0] == outputs[1]
    text = outputs[0][0].decode("utf-8")
    assert [
        r["reference"] for r in json.loads('{"contributions": [' + text[1:])["contributions"]
    ] == [f"R{n}" for n in range(5)]


def test_xlsx_rows_of_shared_values_are_the_cells_made_one_by_one(tmp_path: Path) -> None:
    from openpyxl.utils import get_column_letter

    from exporter import xlsx
    from exporter.rows import COLUMNS

    writer = xlsx.XlsxWriter(cast(Any, None), cast(Any, None), tmp_path / "a.xlsx")
    rows: list[list[str | int]] = [
        [f"{name} <{n % 2}>" if n % 3 else "" for name in COLUMNS] for n in range(6)
    ]
    rows += [[n if k % 2 else f" {n} & " for k in range(len(COLUMNS))] for n in range(3)]
    for row in rows:
        writer._append(row)
    expected = "".join(
        f'<row r="{n}">'
        + "".join(xlsx._cell(f"{get_column_letter(k + 1)}{n}", v) for k, v in enumerate(row))
        + "</row>"
        for n, row in enumerate(rows, start=1)
    )
    assert "".join(writer._pending) == expected
    assert writer._shared  # the shared columns' markup was kept
    writer.close()
