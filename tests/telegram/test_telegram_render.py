"""Rendering dialog replies for Telegram: callback data, keyboards, splitting long texts."""

from __future__ import annotations

import pytest

from bot.telegram.render import (
    CALLBACK_DATA_LIMIT,
    TEXT_LIMIT,
    CallbackDataTooLong,
    callback_data,
    keyboard,
    messages,
    parse_callback_data,
    split_text,
)
from dialogs.model import Choice, ChoiceEvent, Reply


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_callback_data_round_trip_and_limit() -> None:
    assert parse_callback_data(callback_data(7, "t:OISE")) == ChoiceEvent("t:OISE", 7)
    assert parse_callback_data(callback_data(0, "a:b:c")) == ChoiceEvent("a:b:c", 0)
    longest = "x" * (CALLBACK_DATA_LIMIT - len("v123:"))
    assert len(callback_data(123, longest).encode()) == CALLBACK_DATA_LIMIT
    with pytest.raises(CallbackDataTooLong):
        callback_data(123, longest + "x")
    with pytest.raises(CallbackDataTooLong):
        callback_data(1, "é" * 40)  # 80 bytes: the limit is in bytes


@pytest.mark.parametrize("data", [None, "", "x", "v:x", "vx:y", "v1", "v-1:x", "1:x", "v1:"])
def test_unreadable_callback_data_is_a_stale_choice(data: str | None) -> None:
    event = parse_callback_data(data)
    assert event.version == -1


def test_keyboards_short_labels_two_per_row_long_ones_alone() -> None:
    short = Reply("?", (Choice("a", "Oui"), Choice("b", "Non"), Choice("c", "Lire")))
    markup = keyboard(short, 3)
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["Oui", "Non"], ["Lire"]]
    long = Reply("?", (Choice("a", "Un libellé vraiment très long"), Choice("b", "Non")))
    markup = keyboard(long, 3)
    assert markup is not None and [len(r) for r in markup.inline_keyboard] == [1, 1]
    assert markup.inline_keyboard[0][0].callback_data == "v3:a"
    assert keyboard(Reply("no choices"), 1) is None
    blank = keyboard(Reply("?", (Choice("a", "  \n "),)), 1)
    assert blank is not None and blank.inline_keyboard[0][0].text.strip()


def test_short_text_is_one_message() -> None:
    assert split_text("Bonjour") == ["Bonjour"]
    assert split_text("   \n ") == []
    assert split_text("x" * TEXT_LIMIT) == ["x" * TEXT_LIMIT]


def test_long_text_is_cut_at_paragraphs_then_lines() -> None:
    paragraphs = [f"Paragraphe {i} " + ("mot " * 150).strip() for i in range(12)]
    text = "\n\n".join(paragraphs)
    parts = split_text(text)
    assert len(parts) > 1 and all(units(p) <= TEXT_LIMIT for p in parts)
    for part in parts:  # never inside a paragraph
        assert part.startswith("Paragraphe") and part.rstrip().endswith("mot")
    assert "\n\n".join(parts) == text.strip()
    lines = "\n".join(f"ligne {i} " + "x" * 90 for i in range(200))
    parts = split_text(lines)
    assert all(units(p) <= TEXT_LIMIT for p in parts)
    assert "\n".join(parts) == lines


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000,  # no break at all
        "😀" * 5_000,  # 2 UTF-16 units each: Telegram counts units
        "مرحبا " * 2_000,
        ("a\u200b" * 3000) + "\x00" * 10,
        "é" * 4097,
    ],
)
def test_any_text_splits_within_the_limit_and_loses_nothing(text: str) -> None:
    parts = split_text(text)
    assert parts and all(0 < units(p) <= TEXT_LIMIT for p in parts)
    assert "".join(parts).replace(" ", "") == text.strip("\n").replace(" ", "")


def test_keyboard_goes_with_the_last_part() -> None:
    reply = Reply("a " * 5000, (Choice("send", "Envoyer"),))
    out = messages(reply, 4)
    assert len(out) == 3
    assert [m is None for _, m in out] == [True, True, False]
    assert messages(Reply("", (Choice("x", "X"),)), 1)[0][0].strip()
    assert messages(Reply("  "), 1) == []
