"""The channel of each contribution in the console: shown in the queue and on the detail page
(in French: "Telegram", "Site web", "Terminal (essai)"), a filter of the queue kept through
the detail page's neighbours and the actions, and a hostile or unknown value in the query
string answered clearly (the filter is ignored and said to be), never a crash nor SQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moderation.services.queue import CHANNELS, QueueFilters
from storage.models import Contribution
from tests.moderation_helpers import Console, World

_REF = re.compile(r'data-rowlink href="/contributions/(HDF-[A-Z]+-\d{6})\?([^"]*)"')
#: reference -> channel, over the 9 contributions of the test world
CHANNEL_OF = {
    "HDF-OISE-000001": "web",
    "HDF-OISE-000002": "telegram",
    "HDF-OISE-000003": "web",
    "HDF-SOMME-000001": "terminal",
    "HDF-SOMME-000002": "web",
}


@pytest.fixture
async def channels(world: World, sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessions() as s:
        for ref, channel in CHANNEL_OF.items():
            await s.execute(
                update(Contribution).where(Contribution.reference == ref).values(channel=channel)
            )
        await s.commit()
        return {c.reference: c.channel for c in await s.scalars(select(Contribution))}


def _refs(page: str) -> list[str]:
    return [ref for ref, _ in _REF.findall(page)]


async def test_the_queue_and_the_detail_page_show_the_channel_in_french(
    admin: Console, channels: dict[str, str]
) -> None:
    page = await (await admin.client.get("/contributions", params={"status": ""})).text()
    assert '<th scope="col">Canal</th>' in page
    rows = page.split("<tr data-row")[1:]
    assert len(rows) == 9
    for row in rows:
        ref = _REF.findall(row)[0][0]
        label = CHANNELS[channels[ref]]
        assert f'channel-{channels[ref]}">{label}</span>' in row, ref
    assert {"Telegram", "Site web", "Terminal (essai)"} <= set(
        re.findall(r'channel-\w+">([^<]+)<', page)
    )
    # the filter offers every channel, labelled in French
    select_ = page.split('id="f-channel"')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w*)"[^>]*>([^<]+)<', select_) == [
        ("", "Tous"),
        ("telegram", "Telegram"),
        ("web", "Site web"),
        ("terminal", "Terminal (essai)"),
    ]
    detail = await (await admin.client.get("/contributions/HDF-SOMME-000001")).text()
    meta = detail.split('<dl class="meta">')[1].split("</dl>")[0]
    assert re.search(
        r"<dt>Canal</dt><dd><span [^>]*channel-terminal\">Terminal \(essai\)</span>", meta
    )
    web = await (await admin.client.get("/contributions/HDF-OISE-000001")).text()
    assert 'channel-web">Site web</span>' in web


async def test_the_queue_filters_by_channel_and_keeps_the_filter(
    admin: Console, channels: dict[str, str]
) -> None:
    page = await (
        await admin.client.get("/contributions", params={"status": "", "channel": "web"})
    ).text()
    expected = sorted(r for r, ch in channels.items() if ch == "web")
    assert (
        sorted(_refs(page))
        == expected
        == [
            "HDF-OISE-000001",
            "HDF-OISE-000003",
            "HDF-SOMME-000002",
        ]
    )
    assert "3 contribution(s)" in page
    assert '<option value="web" selected>Site web</option>' in page
    assert "Canal inconnu" not in page
    # the links to the detail, the bulk form and the detail's neighbours keep the filter
    assert all("channel=web" in qs for _, qs in _REF.findall(page))
    assert '<input type="hidden" name="f_channel" value="web">' in page
    detail = await (
        await admin.client.get(
            "/contributions/HDF-OISE-000003", params={"status": "", "channel": "web"}
        )
    ).text()
    assert re.search(
        r'href="/contributions/HDF-OISE-000001\?[^"]*channel=web[^"]*" data-nav="prev"', detail
    )
    assert re.search(
        r'href="/contributions/HDF-SOMME-000002\?[^"]*channel=web[^"]*" data-nav="next"', detail
    )
    assert '<input type="hidden" name="f_channel" value="web">' in detail
    # an action keeps it: approving goes on to the next web contribution
    resp = await admin.post(
        "/contributions/HDF-OISE-000003/approve",
        {"version": "1", "f_status": "", "f_channel": "web"},
    )
    assert resp.status == 303  # type: ignore[attr-defined]
    location = resp.headers["Location"]  # type: ignore[attr-defined]
    assert location.startswith("/contributions/HDF-SOMME-000002?") and "channel=web" in location
    # telegram and terminal
    telegram = await (
        await admin.client.get("/contributions", params={"status": "", "channel": "telegram"})
    ).text()
    assert sorted(_refs(telegram)) == sorted(r for r, ch in channels.items() if ch == "telegram")
    terminal = await (
        await admin.client.get("/contributions", params={"status": "", "channel": "terminal"})
    ).text()
    assert _refs(terminal) == ["HDF-SOMME-000001"]


async def test_the_channel_filter_stays_within_a_moderators_territories(
    oise: Console, channels: dict[str, str]
) -> None:
    page = await (
        await oise.client.get("/contributions", params={"status": "", "channel": "web"})
    ).text()
    assert sorted(_refs(page)) == ["HDF-OISE-000001", "HDF-OISE-000003"]
    page = await (
        await oise.client.get("/contributions", params={"status": "", "channel": "terminal"})
    ).text()
    assert _refs(page) == []
    assert "Aucune contribution ne correspond à ces critères." in page


@pytest.mark.parametrize(
    "hostile",
    [
        "' OR 1=1 --",
        "web' OR '1'='1",
        "web; DROP TABLE contributions; --",
        '<script>alert("canal")</script>',
        "WEB",
        "Site web",
        "web\x00",
        "\u202eweb",
        "x" * 5000,
    ],
)
async def test_an_unknown_or_hostile_channel_is_ignored_and_said_to_be(
    admin: Console,
    channels: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    hostile: str,
) -> None:
    everything = await (await admin.client.get("/contributions", params={"status": ""})).text()
    resp = await admin.client.get("/contributions", params={"status": "", "channel": hostile})
    assert resp.status == 200
    page = await resp.text()
    # a clear answer: the filter is ignored, and the page says so
    assert "Canal inconnu" in page and "Ce filtre est ignoré" in page
    assert "Telegram, Site web, Terminal (essai)" in page
    assert sorted(_refs(page)) == sorted(_refs(everything))  # nothing filtered, nothing more
    assert "<script>alert" not in page
    shown = page.split("Canal inconnu : « <bdi>")[1].split("</bdi>")[0]
    assert len(shown) <= 40 * 6  # cut (and escaped: at most 6 characters per character)
    assert "\x00" not in shown and "\u202e" not in shown
    # the links do not carry it on
    assert "channel=" not in " ".join(qs for _, qs in _REF.findall(page))
    assert 'name="f_channel"' not in page
    # and the table is still there
    async with sessions() as s:
        assert len(list(await s.scalars(select(Contribution.id)))) == 9


def test_queue_filters_parse_the_channel() -> None:
    assert QueueFilters.parse({"channel": "web"}).channel == "web"
    assert QueueFilters.parse({"channel": "web"}).query()["channel"] == "web"
    assert "channel" not in QueueFilters.parse({}).query()
    bad = QueueFilters.parse({"channel": "' OR 1=1 --"})
    assert bad.channel == "" and bad.unknown_channel == "' OR 1=1 --"
    assert "channel" not in bad.query()
    assert QueueFilters.parse({"channel": ""}).unknown_channel == ""
