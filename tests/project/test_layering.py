"""The structure holds: every table is read and written by ``storage/`` (no SQL in the
channels), and ``dialogs/`` stays pure (no channel, SQL, web or I/O import)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What building or running SQL looks like from SQLAlchemy.
SQL_NAMES = {
    "select",
    "insert",
    "update",
    "delete",
    "text",
    "func",
    "bindparam",
    "exists",
    "Table",
    "Column",
    "aliased",
}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def test_no_sql_in_the_channels() -> None:
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for module, names in _imports(path):
            if module.startswith("sqlalchemy") and SQL_NAMES & set(names):
                offenders.append(f"{path.relative_to(ROOT)}: {module} {sorted(names)}")
            if module.startswith("storage.models"):
                offenders.append(f"{path.relative_to(ROOT)}: imports the tables")
        source = path.read_text(encoding="utf-8")
        if ".execute(" in source:
            offenders.append(f"{path.relative_to(ROOT)}: executes statements")
    assert offenders == []


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
