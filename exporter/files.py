"""Atomic file output: write to a temporary file in the target directory, then rename.

An interrupted export never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from exporter.source import ExportError


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path next to ``final``; renamed to ``final`` when the block succeeds,
    removed when it fails."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def check_writable_dir(path: Path) -> None:
    """Create ``path`` if needed and check a file can be written there."""
    if path.exists() and not path.is_dir():
        raise ExportError(f"the output {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot create the output directory {path}: {exc.strerror or exc}"
        ) from exc
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ExportError(
            f"cannot write in the output directory {path}: {exc.strerror or exc}"
        ) from exc
