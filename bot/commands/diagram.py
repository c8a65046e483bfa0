"""``cnrbot diagram``: the conversation's state diagram (Mermaid), generated from the machine."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "diagram", help="print the conversation's state diagram (Mermaid) as embedded in README"
    )
    parser.set_defaults(func=_diagram)


def _diagram(args: argparse.Namespace) -> int:
    from dialogs import flow  # imported when used: the CLI starts fast

    text = flow.mermaid()
    print(text if text.endswith("\n") else text + "\n", end="")
    return 0
