"""Exports from the console: the exporter's annex for the moderator's territories, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import AuditEntry, Contribution
from storage.settings import Settings
from tests.moderation_helpers import Console, World, new_console


async def _login(settings: Settings, engine: AsyncEngine, email: str) -> Console:
    con = await new_console(settings, engine)
    assert await con.login(email) == 303
    return con


@pytest.fixture
async def approved(world: World, sessions: async_sessionmaker[AsyncSession]) -> World:
    async with sessions() as s:
        await s.execute(
            update(Contribution)
            .where(Contribution.reference.in_(["HDF-OISE-000001", "HDF-SOMME-000001"]))
            .values(status="approved")
        )
        await s.execute(
            update(Contribution)
            .where(Contribution.reference == "HDF-OISE-000001")
            .values(need="Écrire à jean.dupont@example.org =SUM(A1) pour les urgences")
        )
        await s.commit()
    return world


async def test_moderator_downloads_the_annex_of_their_territory_only(
    db_settings: Settings,
    engine: AsyncEngine,
    approved: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    con = await _login(db_settings, engine, "oise@ars.test")
    try:
        resp = await con.post(
            "/exports", {"territory": str(approved.territories["OISE"]), "format": "md"}
        )
        assert resp.status == 200  # type: ignore[attr-defined]
        assert "attachment" in resp.headers["Content-Disposition"]  # type: ignore[attr-defined]
        text = (await resp.read()).decode()  # type: ignore[attr-defined]
        assert "CNR Santé" in text and "HDF-OISE-000001" in text
        assert "HDF-SOMME-000001" not in text
        assert "jean.dupont@example.org" not in text  # the exporter's safety net
        csv_resp = await con.post(
            "/exports", {"territory": str(approved.territories["OISE"]), "format": "csv"}
        )
        assert csv_resp.status == 200  # type: ignore[attr-defined]
        for territory, fmt in (("SOMME", "md"), ("AISNE", "csv")):
            r = await con.post(
                "/exports", {"territory": str(approved.territories[territory]), "format": fmt}
            )
            assert r.status == 422  # type: ignore[attr-defined]
        r = await con.post(
            "/exports", {"territory": f"region:{approved.campaign_id}", "format": "md"}
        )
        assert r.status == 422  # type: ignore[attr-defined]
    finally:
        await con.client.close()
    async with sessions() as s:
        entries = list(await s.scalars(select(AuditEntry).where(AuditEntry.action == "export")))
    assert [(e.actor, e.target) for e in entries] == [
        ("oise@ars.test", "OISE"),
        ("oise@ars.test", "OISE"),
    ]
    assert entries[0].after is not None and entries[0].after["format"] == "md"


async def test_admin_exports_any_territory_and_the_region(
    db_settings: Settings,
    engine: AsyncEngine,
    approved: World,
    staff_ids: dict[str, int],
) -> None:
    con = await _login(db_settings, engine, "admin@ars.test")
    try:
        form = await (await con.client.get("/exports")).text()
        assert f'value="region:{approved.campaign_id}"' in form
        for fmt in ("docx", "odt", "json", "xlsx"):
            r = await con.post(
                "/exports", {"territory": str(approved.territories["SOMME"]), "format": fmt}
            )
            assert r.status == 200, fmt  # type: ignore[attr-defined]
            assert len(await r.read()) > 100  # type: ignore[attr-defined]
        r = await con.post(
            "/exports", {"territory": f"region:{approved.campaign_id}", "format": "md"}
        )
        assert r.status == 200  # type: ignore[attr-defined]
        text = (await r.read()).decode()  # type: ignore[attr-defined]
        assert "HDF-OISE-000001" in text and "HDF-SOMME-000001" in text
        # nothing approved in AISNE: a clear message, no file
        r = await con.post(
            "/exports", {"territory": str(approved.territories["AISNE"]), "format": "md"}
        )
        assert r.status == 409  # type: ignore[attr-defined]
        assert "Aucune contribution approuvée" in await r.text()  # type: ignore[attr-defined]
    finally:
        await con.client.close()
