"""Fixtures shared by the exporter's tests."""

from __future__ import annotations

import pytest

from storage.settings import Settings


@pytest.fixture
def cli_env(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point ``Settings()`` (read from CNR_* variables by the command) at the test database."""
    monkeypatch.setenv("CNR_DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("CNR_SECRET_KEY", "test-secret-not-for-production")
    if db_settings.database_schema:
        monkeypatch.setenv("CNR_DATABASE_SCHEMA", db_settings.database_schema)
    return db_settings
