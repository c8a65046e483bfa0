"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.service import DialogService
from storage.settings import Settings
from tests.service_helpers import TEST_TOML


@pytest.fixture
async def service(db_settings: Settings) -> AsyncIterator[DialogService]:
    """The dialog service on the test campaign (``db_settings``: SQLite and PostgreSQL)."""
    settings = db_settings.model_copy(
        update={"default_campaign_file": str(TEST_TOML), "privacy_notice_version": "test-v9"}
    )
    svc = await DialogService.open(settings)
    try:
        yield svc
    finally:
        await svc.close()
