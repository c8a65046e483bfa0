"""``cnrbot diagram``: the conversation's state diagram (Mermaid), generated from the machine.

``cnrbot diagram --update-readme README.md`` rewrites the block between the
``<!-- diagram:start -->`` and ``<!-- diagram:end -->`` markers (a test fails when it is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

START = "<!-- diagram:start -->"
END = "<!-- diagram:end -->"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "diagram",
    )
    parser.add_argument(
        "--update-readme",
        metavar="FILE",
        type=Path,
        help="write the diagram between the diagram markers of FILE instead of printing it",
    )
    parser.set_defaults(func=_diagram)


def diagram() -> str:
    from dialogs import flow  # imported when used: the CLI starts fast

    text = flow.mermaid()
    return text if text.endswith("\n") else text + "\n"


def embedded(readme: str) -> str | None:
    """The diagram embedded between the markers (without the code fence), or None."""
    if START not in readme or END not in readme:
        return None
    block = readme.split(START, 1)[1].split(END, 1)[0]
    body = block.strip("\n")
    if body.startswith("```mermaid\n") and body.endswith("```"):
        return body[len("```mermaid\n") : -len("```")]
    return body + "\n"


def with_diagram(readme: str, text: str) -> str:
    head, rest = readme.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n```mermaid\n{text}```\n{END}{tail}"


def _diagram(args: argparse.Namespace) -> int:
    text = diagram()
    if args.update_readme is None:
        sys.stdout.write(text)
        return 0
    path: Path = args.update_readme
    readme = path.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        print(f"cnrbot diagram: no {START} ... {END} markers in {path}", file=sys.stderr)
        return 2
    path.write_text(with_diagram(readme, text), encoding="utf-8")
    print(f"diagram written to {path}")
    return 0
