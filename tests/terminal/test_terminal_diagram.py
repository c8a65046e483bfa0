"""``cnrbot diagram``: the README embeds the diagram the command prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.commands.diagram import END, START, diagram, embedded

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_diagram_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("---") or "stateDiagram" in printed
    for state in ("consent", "territory", "theme", "need", "solution", "review", "done"):
        assert state in printed
    readme = README.read_text(encoding="utf-8")
    assert START in readme and END in readme, "README lost its diagram markers"
    assert embedded(readme) == printed, (
        "README's diagram is stale: run `cnrbot diagram --update-readme README.md`"
    )


def test_update_readme_rewrites_only_the_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{START}\nold diagram\n{END}\n\nafter\n")
    assert main(["diagram", "--update-readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old diagram" not in text
    assert main(["diagram"]) == 0
    capsys.readouterr()
    assert embedded(text) == diagram()
    # no markers: refused
    readme.write_text("# nothing\n")
    assert main(["diagram", "--update-readme", str(readme)]) == 2
