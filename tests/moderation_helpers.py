"""Shared data and helpers of the console tests (tests/moderation/, and the tests of other
folders that need a console); their fixtures are in tests/moderation/conftest.py. Data is
created directly with the models on the migrated database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from moderation.app import create_app
from moderation.services import accounts
from storage.db import session_factory
from storage.models import Campaign, Contribution, Participant, Territory, Theme
from storage.settings import Settings

PASSWORD = "correct horse battery staple"
T0 = datetime(2022, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class World:
    campaign_id: int
    territories: dict[str, int]
    themes: dict[str, int]
    participants: list[int]
    #: reference -> territory code
    refs: dict[str, str] = field(default_factory=dict)


async def seed_world(
    sessions: async_sessionmaker[AsyncSession], *, per_territory: int = 3, texts: list[str] = ()
) -> World:
    """A campaign with 3 territories, 5 themes, contributions spread over OISE/SOMME/AISNE."""
    async with sessions() as s:
        camp = Campaign(
            code="HDF-TEST",
            ref_prefix="HDF",
            name="Consultation test",
            region="Hauts-de-France",
            opens_on=date(2022, 11, 1),
            closes_on=date(2099, 1, 31),
            spec={},
            spec_hash="0" * 64,
        )
        s.add(camp)
        await s.flush()
        terrs = {}
        for i, (code, name) in enumerate(
            [("OISE", "Oise"), ("SOMME", "Somme Littoral Sud"), ("AISNE", "Aisne Haute-Somme")]
        ):
            t = Territory(campaign_id=camp.id, code=code, name=name, position=i, departments=[])
            s.add(t)
            terrs[code] = t
        themes = {}
        for i in range(1, 6):
            th = Theme(
                campaign_id=camp.id,
                code=str(i),
                number=i,
                label_fr=f"Thème numéro {i}",
                label_en=f"Theme {i}",
                position=i,
            )
            s.add(th)
            themes[str(i)] = th
        await s.flush()
        parts = []
        for i in range(3):
            p = Participant(key=f"{i:064x}", channel="telegram", lang="fr" if i else "en")
            s.add(p)
            parts.append(p)
        await s.flush()
        world = World(
            camp.id,
            {k: v.id for k, v in terrs.items()},
            {k: v.id for k, v in themes.items()},
            [p.id for p in parts],
        )
        n = 0
        for code in ("OISE", "SOMME", "AISNE"):
            for j in range(per_territory):
                n += 1
                text = texts[n - 1] if n - 1 < len(texts) else f"Constat {code} numéro {j}"
                ref = f"HDF-{code}-{j + 1:06d}"
                s.add(
                    Contribution(
                        reference=ref,
                        campaign_id=camp.id,
                        territory_id=terrs[code].id,
                        theme_id=themes[str(1 + j % 3)].id,
                        need=text,
                        solution=f"Solution proposée {n}",
                        levers=None,
                        language="fr",
                        channel="telegram",
                        consent_version="v1",
                        participant_id=parts[n % 3].id,
                        draft_id=n,
                        created_at=T0 + timedelta(minutes=n),
                        updated_at=T0 + timedelta(minutes=n),
                    )
                )
                world.refs[ref] = code
        await s.commit()
    return world


async def add_account(
    sessions: async_sessionmaker[AsyncSession],
    email: str,
    role: str,
    territory_ids: list[int],
) -> int:
    async with sessions() as s:
        terrs = [await s.get_one(Territory, i) for i in territory_ids]
        staff = await accounts.add_staff(s, email, role, PASSWORD, terrs)
        await s.commit()
        return staff.id


_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


class Console:
    """A logged-in (or not) test client of the console."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    async def login(self, email: str, password: str = PASSWORD) -> int:
        page = await self.client.get("/login")
        token = csrf_of(await page.text())
        resp = await self.client.post(
            "/login",
            data={"_csrf": token, "email": email, "password": password, "next": "/contributions"},
            allow_redirects=False,
        )
        if resp.status == 303:
            home = await self.client.get("/contributions")
            self.csrf = csrf_of(await home.text())
        return resp.status

    async def post(self, path: str, data: dict[str, str] | None = None, **kw: object) -> object:
        payload = {"_csrf": self.csrf, **(data or {})}
        return await self.client.post(path, data=payload, allow_redirects=False, **kw)


async def start_console(settings: Settings, engine: AsyncEngine) -> TestClient:
    app = create_app(settings, session_factory(engine))
    client = TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    return client


async def new_console(settings: Settings, engine: AsyncEngine) -> Console:
    return Console(await start_console(settings, engine))


async def _logged_in(settings: Settings, engine: AsyncEngine, email: str) -> AsyncIterator[Console]:
    con = await new_console(settings, engine)
    assert await con.login(email) == 303
    yield con
    await con.client.close()
