"""The message catalogues are complete: no missing, unused or mismatched message."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from dialogs import flow
from dialogs.messages import CATALOGUES, t

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for d in ("bot", "dialogs", "storage", "moderation", "exporter")
    for p in (ROOT / d).rglob("*.py")
]


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _literals() -> tuple[set[str], list[re.Pattern[str]]]:
    """String constants and f-string shapes found in the source tree."""
    constants: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                parts = [
                    re.escape(v.value) if isinstance(v, ast.Constant) else r"[\w.-]+"
                    for v in node.values
                ]
                patterns.append(re.compile("".join(parts) + "$"))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
    return constants, patterns


def test_same_ids_in_every_language() -> None:
    fr, en = CATALOGUES["fr"], CATALOGUES["en"]
    assert set(fr) == set(en), set(fr) ^ set(en)


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_no_empty_message_and_same_placeholders(lang: str) -> None:
    for msg_id, text in CATALOGUES[lang].items():
        assert text.strip(), f"{lang}:{msg_id} is empty"
        assert _placeholders(text) == _placeholders(CATALOGUES["fr"][msg_id]), msg_id
        assert len(text) <= 4096, msg_id


def test_every_message_is_used() -> None:
    constants, patterns = _literals()
    unused = [
        msg_id
        for msg_id in CATALOGUES["fr"]
        if msg_id not in constants and not any(p.match(msg_id) for p in patterns)
    ]
    assert unused == []


def test_every_message_id_in_code_exists() -> None:
    """Constant ids passed to t()/say() exist in the catalogues."""
    missing: list[str] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            index = {"t": 1, "say": 0}.get(name or "")
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if (
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and arg.value not in CATALOGUES["fr"]
            ):
                missing.append(f"{path.name}: {arg.value}")
    assert missing == []


def test_command_menu_descriptions_exist() -> None:
    for command in flow.COMMANDS:
        for lang in CATALOGUES:
            assert 3 <= len(t(lang, f"menu.{command}")) <= 256
