"""The permission matrix: roles x routes x in/out of scope, walked exhaustively."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.app import create_app
from storage.models import Contribution
from storage.settings import Settings
from tests.moderation_helpers import Console, World, new_console

ACTORS = {
    "admin@ars.test": None,  # everything
    "oise@ars.test": {"OISE"},
    "somme@ars.test": {"SOMME"},
}
ADMIN_ONLY_GET = ("/audit", "/audit.csv", "/staff")
_REF = re.compile(r'data-rowlink href="/contributions/(HDF-[A-Z]+-\d{6})')


def _sees(email: str, territory: str) -> bool:
    allowed = ACTORS[email]
    return allowed is None or territory in allowed


async def _snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, tuple[object, ...]]:
    async with sessions() as s:
        rows = await s.scalars(select(Contribution))
        return {
            c.reference: (c.status, c.version, c.need, c.theme_id, c.territory_id, c.duplicate_of)
            for c in rows
        }


async def test_permission_matrix(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for email in ACTORS:
        con = await new_console(db_settings, engine)
        try:
            assert await con.login(email) == 303
            await _walk(con, email, world, sessions)
        finally:
            await con.client.close()


async def _walk(
    con: Console, email: str, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    is_admin = ACTORS[email] is None
    visible = {ref for ref, terr in world.refs.items() if _sees(email, terr)}
    hidden = set(world.refs) - visible
    assert hidden or is_admin

    # list, counts and every search
    for status in ("", "pending"):
        page = await (await con.client.get("/contributions", params={"status": status})).text()
        assert set(_REF.findall(page)) == visible, (email, status)
        assert f"{len(visible)} contribution(s)" in page
    for ref, terr in world.refs.items():
        found = await (
            await con.client.get("/contributions", params={"status": "", "q": terr.lower()})
        ).text()
        assert (ref in _REF.findall(found)) == (ref in visible), (email, ref)
        found = await (
            await con.client.get("/contributions", params={"status": "", "q": ref})
        ).text()
        assert _REF.findall(found) == ([ref] if ref in visible else [])
    # filtering on a territory out of scope gives nothing, not the territory's items
    for terr_code, terr_id in world.territories.items():
        page = await (
            await con.client.get("/contributions", params={"status": "", "territory": terr_id})
        ).text()
        expect = {r for r, t in world.refs.items() if t == terr_code and r in visible}
        assert set(_REF.findall(page)) == expect

    # detail pages
    for ref in world.refs:
        resp = await con.client.get(f"/contributions/{ref}")
        assert resp.status == (200 if ref in visible else 404), (email, ref)
        body = await resp.text()
        if ref not in visible:
            assert ref not in body or "introuvable" in body.lower()

    # every action on a hidden item is a 404 and changes nothing
    before = await _snapshot(sessions)
    other = next(iter(visible))
    for ref in hidden:
        for action, data in (
            ("approve", {}),
            ("reject", {"reason": "offtopic"}),
            ("edit", {"need": "changé par quelqu'un hors périmètre", "solution": "idem"}),
            ("reclassify", {"theme": str(world.themes["4"])}),
            ("duplicate", {"of": other}),
        ):
            resp = await con.post(f"/contributions/{ref}/{action}", {"version": "1", **data})
            assert resp.status == 404, (email, ref, action)  # type: ignore[attr-defined]
        resp = await con.post("/contributions/bulk", {"bulk_action": "approve", "sel": f"{ref}:1"})
        assert resp.status == 303  # type: ignore[attr-defined]
    # marking a visible item as duplicate of a hidden one is refused too
    if hidden:
        resp = await con.post(
            f"/contributions/{other}/duplicate", {"version": "1", "of": next(iter(hidden))}
        )
        assert resp.status == 422  # type: ignore[attr-defined]
    assert await _snapshot(sessions) == before

    # dashboard counts only the scope
    dash = await (await con.client.get("/dashboard")).text()
    assert f"<strong>{len(visible)}</strong> en attente" in dash
    for code in world.territories:
        shown = _sees(email, code)
        name = {"OISE": "Oise", "SOMME": "Somme Littoral Sud", "AISNE": "Aisne Haute-Somme"}
        assert (f'<th scope="row">{name[code]}</th>' in dash) == shown

    # exports: only territories of the scope are offered and accepted
    form = await (await con.client.get("/exports")).text()
    for code, terr_id in world.territories.items():
        assert (f'<option value="{terr_id}">' in form) == _sees(email, code)
        resp = await con.post("/exports", {"territory": str(terr_id), "format": "md"})
        status = resp.status  # type: ignore[attr-defined]
        if _sees(email, code):
            assert status == 409, (email, code)  # nothing approved yet: nothing to export
        else:
            assert status == 422, (email, code)

    # admin-only pages
    for path in ADMIN_ONLY_GET:
        resp = await con.client.get(path)
        assert resp.status == (200 if is_admin else 403), (email, path)
    resp = await con.post("/staff", {"email": "new@ars.test", "role": "admin"})
    assert resp.status == (200 if is_admin else 403)  # type: ignore[attr-defined]
    for what in ("disable", "enable", "reset", "unlock"):
        resp = await con.post(f"/staff/999999/{what}")
        assert resp.status == (404 if is_admin else 403)  # type: ignore[attr-defined]


def test_no_route_can_change_or_delete_the_audit_log(db_settings: Settings) -> None:
    from storage.db import create_engine, session_factory

    engine = create_engine(db_settings)
    app = create_app(db_settings, session_factory(engine))
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if "audit" in path:
            assert route.method in ("GET", "HEAD"), (route.method, path)
        assert route.method in ("GET", "HEAD", "POST"), route.method


@pytest.mark.parametrize("who", ["oise@ars.test"])
async def test_moderator_does_not_see_originals_but_admin_does(
    client: TestClient,
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    who: str,
) -> None:
    mod = Console(client)
    assert await mod.login(who) == 303
    resp = await mod.post(
        "/contributions/HDF-OISE-000001/edit",
        {"version": "1", "need": "Constat rédigé [nom retiré]", "solution": "Solution proposée 1"},
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    page = await (await client.get("/contributions/HDF-OISE-000001")).text()
    assert "Constat rédigé [nom retiré]" in page
    assert "Textes d'origine" not in page
    admin = await new_console(db_settings, engine)
    try:
        assert await admin.login("admin@ars.test") == 303
        page = await (await admin.client.get("/contributions/HDF-OISE-000001")).text()
        assert "Textes d'origine" in page
        assert "Constat OISE numéro 0" in page
    finally:
        await admin.client.close()
