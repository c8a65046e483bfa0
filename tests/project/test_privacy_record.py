"""docs/privacy.md, the processing record, cannot fall behind the software: every stored
column and every retention setting is in it."""

from __future__ import annotations

import re
from pathlib import Path

from storage.models import Base
from storage.settings import Settings

RECORD = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"

#: Settings that decide how long something is kept (section 1.7 of the record).
RETENTION_SETTINGS = (
    "draft_ttl",
    "inbound_retention",
    "web_reply_retention",
    "outbox_sending_timeout",
    "console_session_idle",
    "identity_retention",
    "rejected_text_retention",
)


def _record() -> str:
    return RECORD.read_text(encoding="utf-8")


def test_every_stored_column_is_in_the_record() -> None:
    text = _record()
    missing = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if f"`{table.name}.{column.name}`" not in text
    ]
    assert missing == [], f"columns stored but not described in docs/privacy.md: {missing}"


def test_the_record_names_no_column_that_does_not_exist() -> None:
    known = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns}
    tables = {t.name for t in Base.metadata.sorted_tables}
    named = {
        m.group(1)
        for m in re.finditer(r"`([a-z_]+\.[a-z_]+)`", _record())
        if m.group(1).split(".")[0] in tables
    }
    assert named - known == set()


def test_every_retention_setting_is_in_the_record_and_exists() -> None:
    text = _record()
    for name in RETENTION_SETTINGS:
        assert name in Settings.model_fields
        assert f"`{name}`" in text, name


def test_the_record_has_the_sections_a_dpo_expects() -> None:
    text = _record()
    for heading in (
        "Controller",
        "Purposes",
        "Legal basis",
        "Categories of people",
        "Categories of data",
        "Recipients",
        "Retention",
        "Security measures",
        "Rights of the people",
        "Context",
        "Fundamental principles",
        "Risks",
    ):
        assert re.search(rf"^#+ [\d.]* ?{heading}", text, re.MULTILINE), heading
