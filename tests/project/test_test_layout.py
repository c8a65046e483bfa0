"""The tests mirror the code: one folder per package (tests/dialogs, tests/storage, ...), shared
fixtures in conftest.py files, and no test module imports a fixture from another test module."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = {"dialogs", "storage", "exporter", "moderation", "telegram", "web", "terminal"}


def _test_modules() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def test_every_test_module_is_in_a_folder() -> None:
    loose = [p.name for p in _test_modules() if p.parent == TESTS]
    assert loose == [], f"test modules at the top of tests/: {loose}"
    present = {p.relative_to(TESTS).parts[0] for p in _test_modules()}
    assert present >= FOLDERS, FOLDERS - present


def _is_fixture(obj: object) -> bool:
    return type(obj).__name__ == "FixtureFunctionDefinition" or hasattr(
        obj, "_pytestfixturefunction"
    )


def test_no_fixture_is_imported_from_a_test_module() -> None:
    offenders = []
    for path in _test_modules() + sorted(TESTS.rglob("conftest.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module):
                continue
            if not node.module.startswith("tests.") or ".test_" not in node.module:
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if _is_fixture(getattr(module, alias.name, None)):
                    offenders.append(f"{path.relative_to(TESTS)}: {node.module}.{alias.name}")
    assert offenders == [], offenders


@pytest.mark.parametrize("name", ["fast_hashing", "db_settings", "engine"])
def test_shared_fixtures_live_in_conftest(name: str, request: pytest.FixtureRequest) -> None:
    defs = request._fixturemanager.getfixturedefs(name, request.node)  # type: ignore[attr-defined]
    assert defs, name
    assert all(Path(d.func.__code__.co_filename).name == "conftest.py" for d in defs)
