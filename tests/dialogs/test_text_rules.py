"""One rule, one definition: the text cleaner, the length limits and the time zone default
are each written once, at the lowest layer that needs them, and the layers above use them."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from dialogs.model import DEFAULT_TIMEZONE, Limits
from dialogs.places import resolve
from dialogs.validation import SHORT_INPUT_MAX_CHARS, clean_text, one_line
from storage.campaign_file import CampaignInfo, builtin_campaign_path, read_campaign_file
from storage.settings import Settings


def test_one_line_is_the_cleaning_of_citizens_texts_on_one_line() -> None:
    points = [*range(0x0, 0x3400), *range(0xD800, 0xD810), *range(0xE000, 0xE010)]
    points += [*range(0xFE00, 0x10000), 0xE0001, 0x10FFFF]
    for cp in points:
        for raw in (f"a{chr(cp)}b", f" {chr(cp)}\r\n\r\n\r\n x {chr(cp)}{chr(cp)}y "):
            assert one_line(raw) == " ".join(clean_text(raw).split()), hex(cp)
    assert one_line("  Bon\u200bjour\x00 \t le\u202e monde\r\n\r\nfin  ") == "Bonjour le monde fin"
    assert one_line("e\u0301te\u0301") == "été"


def test_one_line_keeps_a_printable_text_on_one_line_as_it_is_or_folds_its_spaces() -> None:
    # the fast path's premise: the plain space is the only whitespace a printable text holds
    assert [cp for cp in range(0x110000) if chr(cp).isspace() and chr(cp).isprintable()] == [32]
    text = "Il faut des médecins à Béthune 😀, et vite’"
    assert one_line(text) is text
    cases = {
        "a \u034f b": "a b",  # an invisible character between two spaces
        "\u2800a": "a",  # the blank braille pattern is a space
        "a\u2800\u2800b": "a b",
        "\ufe0f a\ufe0f ": "a",
        "a\U000e0100 \u3164b": "a b",
        " a": "a",
        "a ": "a",
        "a  b": "a b",
        "": "",
        "\u17b4": "",
    }
    for raw, expected in cases.items():
        assert one_line(raw) == expected == " ".join(clean_text(raw).split()), repr(raw)


def test_whitespace_controls_separate_words_instead_of_gluing_them() -> None:
    """Form feed, record separators and NEL are whitespace (``str.isspace``), like the tab and
    the vertical tab: they become a newline or a space, never nothing."""
    for control in "\x0c\x1c\x1d\x1e\x85\u2028\u2029\x0b":
        assert clean_text(f"deux{control}mots") == "deux\nmots", hex(ord(control))
    assert clean_text("deux\x1fmots") == "deux mots"
    for ch in "\x0c\x1c\x1d\x1e\x1f\x85":
        assert unicodedata.category(ch) == "Cc" and ch.isspace()


def test_a_place_is_cleaned_by_the_same_cleaner() -> None:
    view = read_campaign_file(builtin_campaign_path("hauts-de-france-2022")).to_view()
    oise = resolve("60000", view)
    assert oise.status == "one"
    assert resolve("\u202e６０\u200b０００\x85", view) == oise
    beauvais = resolve("Beauvais", view)
    assert beauvais.territories == oise.territories
    assert resolve("Beauvais\x0c", view) == resolve("\u200bBeau\u00advais ", view) == beauvais


def test_the_settings_defaults_are_the_dialogs_limits_and_time_zone(tmp_path: Path) -> None:
    settings = Settings(secret_key="test-secret-not-for-production", secret_file=tmp_path / "k")
    assert settings.dialog_limits() == Limits()
    assert settings.timezone == DEFAULT_TIMEZONE
    assert CampaignInfo.model_fields["timezone"].default == DEFAULT_TIMEZONE
    view = read_campaign_file(builtin_campaign_path("hauts-de-france-2022")).to_view()
    assert view.timezone == DEFAULT_TIMEZONE


def test_a_short_answer_longer_than_the_limit_is_no_place() -> None:
    view = read_campaign_file(builtin_campaign_path("hauts-de-france-2022")).to_view()
    padded = "Beauvais" + " -" * ((SHORT_INPUT_MAX_CHARS - len("Beauvais")) // 2)
    assert len(padded) <= SHORT_INPUT_MAX_CHARS
    assert resolve(padded, view).status != "unknown"
    assert resolve(padded + " x" * 2, view).status == "unknown"
