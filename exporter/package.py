"""Streaming the body of a zipped document (DOCX, ODT) instead of building it in memory.

The writer builds a small *skeleton* document with its library (python-docx, odfpy): styles,
metadata, the first part of the annex, and a marker paragraph where the long part goes. This
module copies the skeleton's package member by member and, in the one XML member that holds
the marker, writes the markup before it, then the body chunks as they come, then the rest: the
hundreds of thousands of item and annex paragraphs are never a tree, nor one string.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from isal import isal_zlib

#: The text of the marker paragraph; never a citizen's text (those are escaped and one-line).
MARKER = "@@cnr-sante-bot:body@@"
#: Deflate level of the streamed members, in ISA-L's scale (0-3): most of an export's time went
#: into compression at zlib's default level 6; zlib's level 1 wrote ~3 times faster for files
#: ~15 % larger, and ISA-L's level 1 deflates ~4 times faster again than zlib's level 1 (the
#: files ~5 % smaller than zlib's level 1).
BODY_COMPRESSION = 1
#: The date of every member of a package written here (zip's earliest): a document's dates are
#: in its metadata (the data's, never "now"), so two exports of the same data are the same bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_FLUSH_CHARS = 1 << 20


def _split(xml: str, paragraph_tag: str) -> tuple[str, str]:
    """``xml`` before and after the marker paragraph (``<w:p>...MARKER...</w:p>``)."""
    at = xml.index(MARKER)
    start = max(xml.rfind(f"<{paragraph_tag}>", 0, at), xml.rfind(f"<{paragraph_tag} ", 0, at))
    end = xml.index(f"</{paragraph_tag}>", at) + len(f"</{paragraph_tag}>")
    if start < 0:
        raise ValueError("marker paragraph not found")
    return xml[:start], xml[end:]


def open_member(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    """``info`` opened for writing in ``package`` (zip64, so of any size), deflated by ISA-L
    (python-isal) at :data:`BODY_COMPRESSION` instead of zlib: any unzip tool reads it.

    zipfile makes its (zlib) compressor when the member is opened, before any data; it is
    swapped for ISA-L's, which has the same interface. Should a Python version hold it under
    another name, the member is deflated by zlib at level 1 (valid all the same, slower)."""
    info.compress_type = zipfile.ZIP_DEFLATED
    # the level of a member opened for writing (``compress_level`` from Python 3.13, which
    # keeps this name as an alias)
    info._compresslevel = 1  # type: ignore[attr-defined]
    stream = package.open(info, "w", force_zip64=True)
    if hasattr(stream, "_compressor"):
        stream._compressor = isal_zlib.compressobj(
            BODY_COMPRESSION, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS
        )
    return stream


def write_streamed(
    skeleton: bytes, path: Path, member: str, paragraph_tag: str, body: Iterable[str]
) -> None:
    """Write to ``path`` the package ``skeleton`` with the marker paragraph of ``member``
    replaced by the markup chunks of ``body``; the other members are copied as they are
    (in order, with their compression: an ODT's ``mimetype`` stays first and stored)."""
    with (
        zipfile.ZipFile(io.BytesIO(skeleton)) as source,
        zipfile.ZipFile(path, "w") as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            info.date_time = ZIP_DATE
            if info.filename != member:
                target.writestr(info, data, compress_type=info.compress_type)
                continue
            head, tail = _split(data.decode("utf-8"), paragraph_tag)
            streamed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            streamed.external_attr = info.external_attr
            with open_member(target, streamed) as raw:
                raw.write(head.encode("utf-8"))
                pending: list[str] = []
                size = 0
                for chunk in body:
                    pending.append(chunk)
                    size += len(chunk)
                    if size >= _FLUSH_CHARS:
                        raw.write("".join(pending).encode("utf-8"))
                        pending.clear()
                        size = 0
                pending.append(tail)
                raw.write("".join(pending).encode("utf-8"))
