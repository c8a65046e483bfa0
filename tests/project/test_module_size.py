"""Small modules named for what they hold (DESIGN.md's house style): no module of the program
grows past 700 lines; one that does holds more than one concern and is split by concern."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "dialogs", "storage", "exporter", "moderation", "bench")
MAX_LINES = 700


def _sizes() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_the_packages_are_found() -> None:
    sizes = _sizes()
    assert {name.split("/")[0] for name in sizes} == set(PACKAGES)
    assert "storage/service.py" in sizes and sizes["storage/service.py"] > 100


def test_no_module_is_over_700_lines() -> None:
    too_long = {name: n for name, n in _sizes().items() if n > MAX_LINES}
    assert too_long == {}, f"split these modules by concern: {too_long}"
