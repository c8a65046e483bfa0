"""Campaigns in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import campaigns_db
from storage.campaign_file import CampaignSpec
from storage.db import session_factory
from storage.models import Campaign, Contribution, Participant, Territory, Theme
from tests.service_helpers import TEST_TOML


def raw_spec() -> dict[str, Any]:
    with TEST_TOML.open("rb") as fh:
        return tomllib.load(fh)


def spec_of(data: dict[str, Any]) -> CampaignSpec:
    return CampaignSpec.model_validate(data)


async def _counts(engine: AsyncEngine) -> tuple[int, int, int]:
    async with session_factory(engine)() as s:
        return (
            int(await s.scalar(select(func.count(Campaign.id))) or 0),
            int(await s.scalar(select(func.count(Territory.id))) or 0),
            int(await s.scalar(select(func.count(Theme.id))) or 0),
        )


async def test_load_twice_changes_nothing(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        first = await campaigns_db.load_campaign(s, spec_of(raw_spec()))
    assert first.status == "created"
    counts = await _counts(engine)
    assert counts == (1, 3, 4 + 1 + 1)  # 4 national themes, "5", one extra theme
    async with sessions() as s, s.begin():
        second = await campaigns_db.load_campaign(s, spec_of(raw_spec()))
    assert second.status == "unchanged" and second.campaign_id == first.campaign_id
    assert await _counts(engine) == counts
    async with sessions() as s:
        themes = (await s.scalars(select(Theme).order_by(Theme.position))).all()
        assert [t.code for t in themes] == ["1", "2", "3", "4", "5", "SANTE-MENTALE"]
        assert [t.number for t in themes] == [1, 2, 3, 4, 5, 5]
        terr = (await s.scalars(select(Territory).order_by(Territory.position))).all()
        assert [t.code for t in terr] == ["NORD", "OISE", "SOMME"]
        assert terr[2].departments == ["80", "62"]
        assert terr[0].situation == "Un territoire urbain."


async def test_changed_file_updates_in_place_keeping_contributions(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        loaded = await campaigns_db.load_campaign(s, spec_of(raw_spec()))
    # A contribution on OISE / theme 2, and a reference counter at 41.
    async with sessions() as s, s.begin():
        oise = await s.scalar(select(Territory).where(Territory.code == "OISE"))
        theme2 = await s.scalar(select(Theme).where(Theme.code == "2"))
        assert oise is not None and theme2 is not None
        await s.execute(update(Territory).where(Territory.id == oise.id).values(last_number=41))
        p = Participant(key="k" * 64, channel="terminal")
        s.add(p)
        await s.flush()
        s.add(
            Contribution(
                reference="TST-OISE-000041", campaign_id=loaded.campaign_id,
                territory_id=oise.id, theme_id=theme2.id, need="n" * 20, solution="s" * 20,
                language="fr", channel="terminal", consent_version="v1", participant_id=p.id,
                draft_id=1,
            )
        )  # fmt: skip
        oise_id, theme2_id = oise.id, theme2.id
    data = raw_spec()
    data["campaign"]["name"] = "Consultation renommée"
    data["territories"] = [t for t in data["territories"] if t["code"] != "OISE"]
    data["territories"][0]["name"] = "Nord renommé"
    data["themes"] = [t for t in data["themes"] if t["number"] != 2] + [
        {"number": 2, "label_fr": "Continuité (nouveau libellé)", "label_en": "Continuity"}
    ]
    data["supplementary"]["themes"] = []
    async with sessions() as s, s.begin():
        again = await campaigns_db.load_campaign(s, spec_of(data))
    assert again.status == "updated" and again.campaign_id == loaded.campaign_id
    async with sessions() as s:
        campaign = await s.get(Campaign, loaded.campaign_id)
        assert campaign is not None and campaign.name == "Consultation renommée"
        assert campaign.spec_hash == campaigns_db.spec_hash(
            campaigns_db.canonical_spec(spec_of(data))
        )
        # OISE is out of the offer but kept (a contribution names it), with its counter.
        oise = await s.get(Territory, oise_id)
        assert oise is not None and oise.last_number == 41
        theme2 = await s.get(Theme, theme2_id)
        assert theme2 is not None and theme2.label_fr == "Continuité (nouveau libellé)"
        assert await s.scalar(select(Theme).where(Theme.code == "SANTE-MENTALE")) is None
        nord = await s.scalar(select(Territory).where(Territory.code == "NORD"))
        assert nord is not None and nord.name == "Nord renommé"
        contrib = await s.scalar(select(Contribution))
        assert contrib is not None and contrib.territory_id == oise_id
        view = await campaigns_db.campaign_view(s, loaded.campaign_id)
    assert [t.code for t in view.territories] == ["NORD", "SOMME"]
    assert view.name == "Consultation renommée"
    assert view.theme("2") is not None and view.theme("SANTE-MENTALE") is None


async def test_list_and_current(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s:
        assert await campaigns_db.current_campaign(s) is None
        assert not await campaigns_db.has_campaign(s)
    other = raw_spec()
    other["campaign"]["code"] = "OTHER"
    other["campaign"]["ref_prefix"] = "OTH"
    async with sessions() as s, s.begin():
        await campaigns_db.load_campaign(s, spec_of(raw_spec()))
    async with sessions() as s, s.begin():
        await campaigns_db.load_campaign(s, spec_of(other))
    async with sessions() as s:
        listed = await campaigns_db.list_campaigns(s)
        assert [c.code for c in listed] == ["TEST-2022", "OTHER"]
        assert [c.territories for c in listed] == [3, 3]
        latest = await campaigns_db.current_campaign(s)
        assert latest is not None and latest.code == "OTHER" and latest.ref_prefix == "OTH"
        named = await campaigns_db.current_campaign(s, "TEST-2022")
        assert named is not None and named.ref_prefix == "TST"
        assert await campaigns_db.current_campaign(s, "NOPE") is None
        view = await campaigns_db.campaign_view(s, named.id)
    assert view == spec_of(raw_spec()).to_view()


def test_resolve_campaign_file(tmp_path: Path) -> None:
    assert campaigns_db.resolve_campaign_file("x.toml").parent.name == "campaigns"
    own = tmp_path / "mine.toml"
    own.write_text("")
    assert campaigns_db.resolve_campaign_file(str(own)) == own
