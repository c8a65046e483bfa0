"""The console at scale (issue 13, point 5): the queue's keyset pages show the rows the plain
OFFSET pages showed, in the same order (first, middle, last page; following the links both
ways; with filters; a moderator's scope); the new indexes exist after the migrations on both
backends; the text search finds what the plain LIKE found, and on PostgreSQL through the
trigram index. Timings are in ``bench/console.py``, not here."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from html import unescape

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.services.queue import Cursor, QueueFilters, languages_seen
from moderation.services.scope import Scope
from storage.models import SEARCH_COLUMNS, Contribution
from storage.moderation import install_sqlite_casefold, search_clause
from storage.settings import Settings
from storage.tallies import cell_counts, received_per_hour
from tests.moderation_helpers import T0, Console, World, new_console, seed_world

ROW = re.compile(r'data-rowlink href="/contributions/(HDF-[A-Z]+-\d{6})')
NEXT = re.compile(r'href="/contributions\?([^"]*)" rel="next"')
PREV = re.compile(r'href="/contributions\?([^"]*)" rel="prev"')
SIZE = 3


async def _world(sessions: async_sessionmaker[AsyncSession]) -> World:
    """7 contributions a territory; some received at the same instant (ties broken by id),
    some out of reference order, a few approved."""
    world = await seed_world(sessions, per_territory=7)
    async with sessions() as s:
        rows = list(await s.scalars(select(Contribution).order_by(Contribution.id)))
        for i, c in enumerate(rows):
            c.created_at = T0 + timedelta(minutes=(i * 7) % 5)  # many ties, shuffled order
            if i % 4 == 3:
                c.status = "approved"
            c.theme_id = world.themes["1" if i % 3 else "2"]
        await s.commit()
    return world


async def _expected(
    sessions: async_sessionmaker[AsyncSession],
    *,
    territories: set[int] | None = None,
    status: str = "pending",
    theme: int | None = None,
) -> list[str]:
    """The queue's rows in its order, computed here from every row (the reference)."""
    async with sessions() as s:
        rows = list(await s.scalars(select(Contribution)))
    kept = [
        c
        for c in rows
        if (territories is None or c.territory_id in territories)
        and (not status or c.status == status)
        and (theme is None or c.theme_id == theme)
    ]
    return [c.reference for c in sorted(kept, key=lambda c: (c.created_at, c.id))]


async def _walk(con: Console, params: dict[str, str]) -> tuple[list[list[str]], list[str]]:
    """Every page from the first by the "next" links, then back by the "previous" ones."""
    page = await (await con.client.get("/contributions", params=params)).text()
    forward = [ROW.findall(page)]
    links = []
    while m := NEXT.search(page):
        links.append(unescape(m.group(1)))
        page = await (await con.client.get("/contributions?" + links[-1])).text()
        forward.append(ROW.findall(page))
        assert len(forward) < 50
    backward = []
    while m := PREV.search(page):
        query = unescape(m.group(1))
        assert "before=" in query, query  # a cursor, not an offset
        page = await (await con.client.get("/contributions?" + query)).text()
        backward.extend(reversed(ROW.findall(page)))
        assert len(backward) < 200
    assert all("start=" in link for link in links), links
    return forward, backward


def _pages(refs: list[str]) -> list[list[str]]:
    return [refs[i : i + SIZE] for i in range(0, len(refs), SIZE)] or [[]]


async def test_keyset_pages_show_the_offset_pages_rows_in_order(
    db_settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await _world(sessions)
    from tests.moderation_helpers import add_account

    await add_account(sessions, "admin@ars.test", "admin", [])
    await add_account(
        sessions,
        "scope@ars.test",
        "moderator",
        [world.territories["OISE"], world.territories["AISNE"]],
    )
    settings = db_settings.model_copy(update={"console_page_size": SIZE})
    oise_aisne = {world.territories["OISE"], world.territories["AISNE"]}
    cases = [
        ("admin@ars.test", {}, {}),
        ("admin@ars.test", {"status": ""}, {"status": ""}),
        (
            "admin@ars.test",
            {"status": "", "theme": str(world.themes["2"])},
            {"status": "", "theme": world.themes["2"]},
        ),
        ("scope@ars.test", {}, {"territories": oise_aisne}),
        (
            "scope@ars.test",
            {"status": "", "territory": str(world.territories["AISNE"])},
            {"status": "", "territories": {world.territories["AISNE"]}},
        ),
    ]
    for email, params, expect_args in cases:
        expected = await _expected(sessions, **expect_args)  # type: ignore[arg-type]
        pages = _pages(expected)
        assert len(pages) >= 2 or len(expected) <= SIZE
        con = await new_console(settings, engine)
        try:
            assert await con.login(email) == 303
            forward, backward = await _walk(con, params)
            assert forward == pages, (email, params)
            assert backward == list(reversed(expected[: len(expected) - len(pages[-1])])), (
                email,
                params,
            )
            # typed page numbers (no cursor): first, middle, last, beyond the last
            for number in {1, (len(pages) + 1) // 2, len(pages), len(pages) + 5}:
                shown = await (
                    await con.client.get("/contributions", params={**params, "page": str(number)})
                ).text()
                assert ROW.findall(shown) == pages[min(number, len(pages)) - 1], (
                    email,
                    params,
                    number,
                )
                assert f"page {min(number, len(pages))} sur {len(pages)}" in shown or (
                    len(pages) == 1
                )
        finally:
            await con.client.close()


async def test_a_cursor_page_stays_right_when_the_queue_moves(
    db_settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Approving the rows of page 1 does not make page 2's link skip rows (an OFFSET would),
    a forged or stale cursor falls back to a page, and the detail page's way back keeps it."""
    world = await _world(sessions)
    from tests.moderation_helpers import add_account

    await add_account(sessions, "admin@ars.test", "admin", [])
    settings = db_settings.model_copy(update={"console_page_size": SIZE})
    expected = await _expected(sessions)
    con = await new_console(settings, engine)
    try:
        assert await con.login("admin@ars.test") == 303
        first = await (await con.client.get("/contributions")).text()
        link = unescape(NEXT.search(first).group(1))  # type: ignore[union-attr]
        async with sessions() as s:
            for ref in expected[:SIZE]:
                row = await s.scalar(select(Contribution).where(Contribution.reference == ref))
                assert row is not None
                row.status = "approved"
            await s.commit()
        second = await (await con.client.get("/contributions?" + link)).text()
        assert ROW.findall(second) == expected[SIZE : 2 * SIZE]
        # a row's link carries the page's own cursor: "back to the queue" comes back here
        ref = ROW.findall(second)[0]
        qs = unescape(re.search(rf'href="/contributions/{ref}\?([^"]*)"', second).group(1))  # type: ignore[union-attr]
        detail = await (await con.client.get(f"/contributions/{ref}?{qs}")).text()
        back = unescape(re.search(r'href="/contributions\?([^"]*)">Retour', detail).group(1))  # type: ignore[union-attr]
        assert "start=" in back
        again = await (await con.client.get("/contributions?" + back)).text()
        assert ROW.findall(again) == expected[SIZE : 2 * SIZE]
        for forged in ("x", "-1-2", "99999999999999999-1", "1-" + "9" * 20, "1667379600000000-"):
            resp = await con.client.get("/contributions", params={"start": forged})
            assert resp.status == 200
            assert ROW.findall(await resp.text()) == expected[SIZE : 2 * SIZE]
        beyond = Cursor(T0 + timedelta(days=400), 10**9).token()
        last = await (await con.client.get("/contributions", params={"start": beyond})).text()
        assert ROW.findall(last) == expected[SIZE : 2 * SIZE]  # nothing there: page 1
        assert world.campaign_id
    finally:
        await con.client.close()


def test_cursor_tokens_round_trip_and_refuse_garbage() -> None:
    c = Cursor(T0 + timedelta(microseconds=123457), 42)
    assert Cursor.parse(c.token()) == c
    for bad in ("", "1", "a-1", "1-a", "1-2-3", " 1-2", "1-2\n", "1" * 18 + "-1"):
        assert Cursor.parse(bad) is None, bad
    assert QueueFilters.parse({"start": c.token(), "page": "3"}).query()["start"] == c.token()


def _indexes(conn: Connection) -> dict[str, dict[str, object]]:
    return {ix["name"]: ix for ix in sa.inspect(conn).get_indexes("contributions")}  # type: ignore[misc]


NEW_INDEXES = {
    "ix_contributions_status_order": ["status", "created_at", "id"],
    "ix_contributions_territory_order": ["territory_id", "status", "created_at", "id"],
    "ix_contributions_order": ["created_at", "id"],
    "ix_contributions_dashboard": [
        "campaign_id",
        "territory_id",
        "theme_id",
        "status",
        "created_at",
    ],
    "ix_contributions_language": ["language", "territory_id"],
    "ix_contributions_moderated": ["campaign_id", "moderated_at"],
    "ix_contributions_search": list(SEARCH_COLUMNS),
}


async def test_the_new_indexes_exist_after_upgrade(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        found = await conn.run_sync(_indexes)
        for name, columns in NEW_INDEXES.items():
            assert name in found, name
            assert found[name]["column_names"] == columns, name
        assert "ix_contributions_territory_status" not in found
        if engine.dialect.name == "postgresql":
            definition = await conn.scalar(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                {"n": "ix_contributions_search"},
            )
            assert "USING gin" in str(definition) and "gin_trgm_ops" in str(definition)
        else:
            sql = await conn.scalar(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'ix_contributions_search'")
            )
            assert str(sql).rstrip().endswith("WHERE 0")  # empty on SQLite: LIKE over the rows


SEARCH_TEXTS = [
    "Les URGENCES d'Évreux ferment à 20h",
    "Taux de 100% remboursé_total",
    "Straße und ŒUVRE: maïs à Saint-Étienne",
    "Pédiatre introuvable à Noyon, pédiatrie fermée",
    "back\\slash et 50 % de patients",
    "Il n'y a plus de médecin traitant",
    "DERMATOLOGUE à Compiègne",
    "ligne un\nligne deux",
    "rien de spécial ici",
]
QUERIES = [
    "évreux",
    "ÉVREUX",
    "urgences",
    "100%",
    "%",
    "_",
    "é_t",
    "œuvre",
    "MAÏS",
    "saint-étienne",
    "pédiatr",
    "PÉDIATRIE",
    "\\",
    "50 %",
    "a",
    "médecin traitant",
    "compiègne",
    "HDF-OISE",
    "-000002",
    "ligne",
    "nulle part",
    "Solution proposée 3",
    "un\nligne",
]


async def test_the_search_finds_what_the_plain_like_found(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if install_sqlite_casefold(engine):  # as the console does at start
        await engine.dispose()
    world = await seed_world(sessions, texts=SEARCH_TEXTS)
    async with sessions() as s:
        rows = list(await s.scalars(select(Contribution)))
    dialect = engine.dialect.name
    everyone = Scope(0, "admin@ars.test", "admin", frozenset())
    for q in QUERIES:
        wanted = {
            c.reference
            for c in rows
            if any(q.casefold() in (getattr(c, col) or "").casefold() for col in SEARCH_COLUMNS)
        }
        # what the search did before (lower(coalesce(col, '')) LIKE lower(pattern)): the same
        filters = QueueFilters(status="", q=q)
        async with sessions() as s:
            found = set(
                await s.scalars(
                    select(Contribution.reference).where(
                        *filters.selection(everyone).where(dialect)
                    )
                )
            )
        assert found == wanted, q
    assert world.campaign_id


async def test_postgres_searches_through_the_trigram_index(
    pg_engine: AsyncEngine,
) -> None:
    async with pg_engine.connect() as conn:
        await conn.execute(sa.text("SET enable_seqscan = off"))
        clause = search_clause("pédiatre", "postgresql")
        query = select(Contribution.id).where(clause)
        compiled = query.compile(pg_engine.sync_engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in await conn.execute(sa.text(f"EXPLAIN {compiled}")))
    assert "ix_contributions_search" in plan, plan


async def test_languages_seen_are_the_distinct_languages_in_scope(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await seed_world(sessions, per_territory=4)
    async with sessions() as s:
        rows = list(await s.scalars(select(Contribution).order_by(Contribution.id)))
        for i, c in enumerate(rows):
            c.language = ["fr", "en", "de", "fr", "ar", "nl"][i % 6]
        await s.commit()
    oise = world.territories["OISE"]
    for scope in (
        Scope(0, "a@ars.test", "admin", frozenset()),
        Scope(1, "o@ars.test", "moderator", frozenset({oise})),
        Scope(2, "n@ars.test", "moderator", frozenset()),
    ):
        expected = sorted(
            {c.language for c in rows if scope.is_admin or c.territory_id in scope.territory_ids}
        )
        async with sessions() as s:
            assert await languages_seen(s, scope) == expected, scope.email


async def _live_counts(
    sessions: async_sessionmaker[AsyncSession], campaign_id: int
) -> tuple[set[tuple[int, int, str, int]], dict[object, int]]:
    """The dashboard's counts computed from every contribution (the reference)."""
    async with sessions() as s:
        rows = list(
            await s.scalars(select(Contribution).where(Contribution.campaign_id == campaign_id))
        )
    cells: dict[tuple[int, int, str], int] = {}
    hours: dict[object, int] = {}
    for c in rows:
        key = (c.territory_id, c.theme_id, c.status)
        cells[key] = cells.get(key, 0) + 1
        hour = c.created_at.replace(minute=0, second=0, microsecond=0)
        hours[hour] = hours.get(hour, 0) + 1
    return {(*k, n) for k, n in cells.items()}, hours


async def _tallied(
    sessions: async_sessionmaker[AsyncSession], campaign_id: int
) -> tuple[set[tuple[int, int, str, int]], dict[object, int]]:
    async with sessions() as s:
        cells = set(await cell_counts(s, campaign_id, sa.true()))
        hours = {
            h.replace(tzinfo=UTC) if h.tzinfo is None else h: n
            for h, n in await received_per_hour(s, campaign_id, sa.true())
        }
    return cells, hours


async def test_the_dashboard_tallies_follow_every_change_and_fold(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Inserts, decisions, reclassifications, a changed time, a citizen's erasure (a cascade):
    the tallies the triggers keep always equal the counts of the rows, before and after the
    maintenance folds them into one row per group (and again after further changes)."""
    from storage.models import ContributionTally, Participant
    from storage.tallies import fold_tallies

    world = await seed_world(sessions, per_territory=5)
    cid = world.campaign_id
    assert await _tallied(sessions, cid) == await _live_counts(sessions, cid)
    async with sessions() as s:
        rows = list(await s.scalars(select(Contribution).order_by(Contribution.id)))
        rows[0].status = "approved"
        rows[1].status = "rejected"
        rows[2].territory_id = world.territories["AISNE"]
        rows[3].theme_id = world.themes["5"]
        rows[4].created_at = T0 + timedelta(days=3, hours=5)
        rows[5].need = "un texte modifié"  # no count changes
        await s.commit()
    assert await _tallied(sessions, cid) == await _live_counts(sessions, cid)
    async with sessions() as s:
        await s.delete(await s.get_one(Participant, world.participants[1]))  # cascade
        await s.commit()
    live = await _live_counts(sessions, cid)
    assert sum(n for *_, n in live[0]) < 15  # the erasure removed some
    assert await _tallied(sessions, cid) == live

    async def rows_kept() -> int:
        async with sessions() as s:
            return await s.scalar(select(sa.func.count(ContributionTally.id))) or 0

    before = await rows_kept()
    async with sessions() as s, s.begin():
        folded = await fold_tallies(s)
    assert folded == before - await rows_kept() > 0
    async with sessions() as s:
        receptions = {
            (c.territory_id, c.created_at.replace(minute=0, second=0, microsecond=0))
            for c in await s.scalars(select(Contribution))
        }
    # one row a group (cells; receptions by territory and hour), none that sums to zero
    assert await rows_kept() == len(live[0]) + len(receptions)
    assert await _tallied(sessions, cid) == live
    async with sessions() as s, s.begin():
        assert await fold_tallies(s) == 0  # nothing more to fold
    async with sessions() as s:
        rows = list(await s.scalars(select(Contribution).order_by(Contribution.id)))
        rows[-1].status = "duplicate"
        await s.commit()
    assert await _tallied(sessions, cid) == await _live_counts(sessions, cid)
