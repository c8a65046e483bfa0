"""The structure holds: every table is read and written by ``storage/`` (no SQL in the
channels nor in the console), and ``dialogs/`` stays pure (no channel, SQL, web or I/O import)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What the channels and the console may import of SQLAlchemy: the handles they hand down to
#: ``storage/`` (engine, session, connection, session factory) and its errors; the terminal chat
#: reads a database URL (``make_url``) to name its SQLite file. Never a query, a table, the ORM.
SQLALCHEMY_ALLOWED: dict[str, set[str] | None] = {
    "sqlalchemy.ext.asyncio": None,  # any of its names
    "sqlalchemy.exc": None,
    "sqlalchemy.engine": {"make_url"},
}
#: Session and connection methods that run SQL or reach the rows (any receiver).
RUNS_SQL = {
    "execute",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
    "get_one",
    "begin_nested",
    "run_sync",
    "exec_driver_sql",
}
#: The unit of work's methods, on what the code names a session or a connection. What stays above
#: ``storage/`` is the request's transaction: ``begin``, ``commit``, ``rollback``, ``close``.
UNIT_OF_WORK = {
    "add",
    "add_all",
    "delete",
    "get",
    "merge",
    "flush",
    "refresh",
    "expunge",
    "expire",
    "connection",
}
SESSION_NAMES = {"session", "db", "s", "conn", "connection"}
ABOVE_STORAGE = ("bot", "moderation")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def _sql_above_storage(source: str, where: str) -> list[str]:
    """What in ``source`` (the module ``where``) builds or runs SQL, or touches the tables."""
    tree = ast.parse(source)
    annotations_only = _type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        modules: list[tuple[str, list[str]]] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            modules.extend((a.name, []) for a in node.names)
        for module, names in modules:
            if module.split(".")[0] == "sqlalchemy":
                allowed = SQLALCHEMY_ALLOWED.get(module, set())
                if not names or (allowed is not None and not set(names) <= allowed):
                    found.append(f"{where}:{node.lineno}: imports {module} {sorted(names)}")
            if module.startswith("storage.models") and id(node) not in annotations_only:
                found.append(f"{where}:{node.lineno}: imports the tables (not for annotations)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, node.func.value
            if method in RUNS_SQL or (
                method in UNIT_OF_WORK
                and isinstance(receiver, ast.Name)
                and receiver.id in SESSION_NAMES
            ):
                found.append(f"{where}:{node.lineno}: calls .{method}() on the database")
    return found


@pytest.mark.parametrize("layer", ABOVE_STORAGE)
def test_no_sql_above_storage(layer: str) -> None:
    """The channels and the console hand a session to ``storage/`` functions; they build no
    query, run no statement and import no table (but to name its rows in annotations)."""
    offenders = [
        problem
        for path in sorted((ROOT / layer).rglob("*.py"))
        for problem in _sql_above_storage(
            path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        )
    ]
    assert offenders == [], "SQL above storage/:\n" + "\n".join(offenders)


def test_the_check_sees_sql() -> None:
    """What :func:`test_no_sql_above_storage` refuses, and what it lets through."""
    sample = (
        "from typing import TYPE_CHECKING\n"
        "from sqlalchemy import select\n"  # 2
        "from sqlalchemy.orm import selectinload\n"  # 3
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "from storage.models import Staff\n"  # 6
        "if TYPE_CHECKING:\n"
        "    from storage.models import Contribution\n"
        "async def f(db: AsyncSession, rows: set[int]) -> None:\n"
        "    await db.execute(select(Staff))\n"  # 10
        "    await db.get(Staff, 1)\n"  # 11
        "    db.add(Staff())\n"  # 12
        "    rows.add(1)\n"
        "    await db.commit()\n"
    )
    found = _sql_above_storage(sample, "sample.py")
    lines = sorted(int(problem.split(":")[1]) for problem in found)
    assert lines == [2, 3, 6, 10, 11, 12], found


def test_dialogs_stay_pure() -> None:
    forbidden = ("sqlalchemy", "aiohttp", "telegram", "storage", "bot", "moderation", "exporter")
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / "dialogs").rglob("*.py"))
        for module, _ in _imports(path)
        if module.split(".")[0] in forbidden or module in ("asyncio", "socket", "sqlite3")
    ]
    assert offenders == []


#: What each layer may import of the project (README "Layout"): dialogs at the bottom, storage
#: on it, the exporter on storage, the channels and the console on top. The console shares the
#: channels' HTTP helper (client address behind a proxy) and access log, nothing else of bot/.
ALLOWED = {
    "dialogs": {"dialogs"},
    "storage": {"dialogs", "storage"},
    "exporter": {"dialogs", "storage", "exporter"},
    "moderation": {
        "dialogs",
        "storage",
        "exporter",
        "moderation",
        "bot.core.http",
        "bot.access_log",
    },
}
PROJECT = ("dialogs", "storage", "exporter", "moderation", "bot")


def test_each_layer_imports_only_the_layers_below() -> None:
    offenders = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            for module, _ in _imports(path):
                if module.split(".")[0] not in PROJECT:
                    continue
                if not any(module == a or module.startswith(a + ".") for a in allowed):
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == [], "an import against the layering:\n" + "\n".join(offenders)
