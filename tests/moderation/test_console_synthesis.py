"""The console's synthesis pages (issue 14, points 1 and 2, console side): the topics of each
theme of a territory and the queue filtered on a topic; the coordinated campaigns in the
moderator's scope, each decided at once through the bulk action (audited, citizens told)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moderation.routes.synthesis import TOPICS_KEY
from moderation.services.synthesis import TopicsCache
from storage.models import AuditEntry, Contribution, Outbox, Participant
from tests.moderation_helpers import T0, Console, World

ROW = re.compile(r'data-rowlink href="/contributions/(HDF-[A-Z]+-\d{6})')

DOCTOR = [
    "Impossible de trouver un médecin traitant depuis le départ en retraite du mien.",
    "Pas de médecin traitant pour ma famille, aucun généraliste ne prend de nouveaux patients.",
    "Je n'ai plus de médecin traitant, les généralistes du secteur refusent les nouveaux patients.",
    "Trouver un médecin traitant est devenu impossible dans notre commune.",
    "Mon médecin traitant est parti, personne ne le remplace.",
]
NIGHT = [
    "Les urgences de l'hôpital sont saturées la nuit, on attend des heures.",
    "Attente de six heures aux urgences la nuit dernière, c'est trop.",
    "Les urgences débordent la nuit et le week-end, l'attente est interminable.",
    "La nuit, les urgences sont saturées et il faut attendre des heures.",
]
COPIED = "Nous exigeons la réouverture immédiate de la maternité de Creil, fermée sans débat"


async def _add(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    territory: str,
    number: int,
    need: str,
    *,
    theme: str = "1",
    minutes: int = 0,
    new_participant: bool = True,
    solution: str = "Rouvrir le service et recruter.",
) -> str:
    """One contribution from its own participant (new: first came 5 minutes before)."""
    at = T0 + timedelta(days=3, minutes=minutes)
    ref = f"HDF-{territory}-{number:06d}"
    async with sessions() as s:
        since = at - timedelta(minutes=5) if new_participant else T0 - timedelta(days=30)
        p = Participant(key=f"{number:032x}{territory:0>32}"[:64], channel="web", created_at=since)
        s.add(p)
        await s.flush()
        s.add(
            Contribution(
                reference=ref,
                campaign_id=world.campaign_id,
                territory_id=world.territories[territory],
                theme_id=world.themes[theme],
                need=need,
                solution=solution,
                language="fr",
                channel="web",
                consent_version="v1",
                participant_id=p.id,
                draft_id=1,
                created_at=at,
                updated_at=at,
            )
        )
        await s.commit()
    return ref


async def _topics_world(sessions: async_sessionmaker[AsyncSession], world: World) -> list[str]:
    refs = []
    for i, text in enumerate(DOCTOR + NIGHT):
        refs.append(
            await _add(sessions, world, "OISE", 10 + i, text, new_participant=False, solution="")
        )
    return refs


async def _campaign_world(sessions: async_sessionmaker[AsyncSession], world: World) -> None:
    """Six copies in Oise and two in the Somme, from new participants within two hours."""
    for i in range(6):
        await _add(sessions, world, "OISE", 40 + i, f"{COPIED}{'.!'[i % 2]}", minutes=20 * i)
    for i in range(2):
        await _add(sessions, world, "SOMME", 40 + i, COPIED, minutes=10 + 20 * i)


async def _page(console: Console, path: str, **params: str) -> str:
    resp = await console.client.get(path, params=params)
    assert resp.status == 200, path
    return unescape(await resp.text())


# --- topics -----------------------------------------------------------------------------------


async def test_topics_page_lists_each_themes_topics_by_citizens(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _topics_world(sessions, world)
    page = await _page(oise, "/sujets", territory=str(world.territories["OISE"]))
    assert "Oise" in page and "Thème numéro 1" in page and "Thème numéro 2" in page
    rows = re.findall(
        r'<tr data-topic="(T\d+)">\s*<th scope="row">T\d+ — ([^<]+)</th>\s*<td>[^<]*</td>\s*'
        r"<td>(\d+)</td>\s*<td>(\d+)</td>",
        page,
    )
    by_label = {label: (tid, int(n), int(p)) for tid, label, n, p in rows}
    assert by_label["médecin traitant"][1:] == (5, 5)  # contributions, distinct citizens
    assert [r[0] for r in rows[:2]] == ["T1", "T2"]  # ranked by citizens
    night = next(v for k, v in by_label.items() if "urgences" in k or "saturées" in k)
    assert night[1:] == (4, 4)
    tid = by_label["médecin traitant"][0]
    assert f"topic={tid}" in page  # a link to the queue filtered on it


async def test_the_queue_filters_by_topic(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    refs = await _topics_world(sessions, world)
    oise_id, theme_id = str(world.territories["OISE"]), str(world.themes["1"])
    page = await _page(oise, "/sujets", territory=oise_id, theme=theme_id)
    tid = re.search(r'data-topic="(T\d+)">\s*<th scope="row">T\d+ — médecin traitant', page)
    assert tid is not None
    queue = await _page(
        oise, "/contributions", status="", territory=oise_id, theme=theme_id, topic=tid.group(1)
    )
    assert sorted(ROW.findall(queue)) == refs[:5]
    assert "« médecin traitant » : 5 contribution(s) de 5 citoyen(s)" in queue
    assert f'name="topic" value="{tid.group(1)}"' in queue  # kept by the filter form
    # a topic that is not there: nothing, and said so
    gone = await _page(
        oise, "/contributions", status="", territory=oise_id, theme=theme_id, topic="T99"
    )
    assert ROW.findall(gone) == [] and "n'existe plus" in gone
    # without a territory and a theme a topic means nothing: dropped, the queue is whole
    whole = await _page(oise, "/contributions", status="", topic=tid.group(1))
    assert len(ROW.findall(whole)) == 3 + len(refs)
    # a territory out of scope: dropped too, and the scope still holds
    somme = await _page(
        oise, "/contributions", status="", territory=str(world.territories["SOMME"]),
        theme=theme_id, topic=tid.group(1),
    )  # fmt: skip
    assert all(r.startswith("HDF-OISE-") for r in ROW.findall(somme))
    # the detail page's neighbours follow the topic
    first = await _page(
        oise, f"/contributions/{refs[0]}", status="", territory=oise_id, theme=theme_id,
        topic=tid.group(1),
    )  # fmt: skip
    nxt = re.search(r'href="/contributions/(HDF-[A-Z]+-\d{6})\?[^"]*" data-nav="next"', first)
    assert nxt is not None and nxt.group(1) == refs[1]


async def test_topics_are_kept_a_short_while_per_theme(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _topics_world(sessions, world)
    cache = oise.client.server.app[TOPICS_KEY]
    params = {"territory": str(world.territories["OISE"]), "theme": str(world.themes["1"])}
    await _page(oise, "/sujets", **params)
    assert cache.computed == 1
    await _page(oise, "/sujets", **params)
    await _page(oise, "/contributions", status="", topic="T1", **params)
    assert cache.computed == 1
    clock = [0.0]
    short = TopicsCache(ttl=10, kept=2, clock=lambda: clock[0])
    short.put((1, 1, 1), cache.get((world.campaign_id, *map(int, params.values()))))  # type: ignore[arg-type]
    assert short.get((1, 1, 1)) is not None
    clock[0] = 11
    assert short.get((1, 1, 1)) is None


async def test_a_moderator_sees_no_topics_of_another_territory(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _add(sessions, world, "SOMME", 10, DOCTOR[0])
    await _add(sessions, world, "SOMME", 11, DOCTOR[1])
    page = await _page(oise, "/sujets", territory=str(world.territories["SOMME"]))
    assert "<h2>Oise</h2>" in page and "Somme Littoral Sud</option>" not in page
    assert "médecin traitant" not in page


# --- coordinated campaigns -------------------------------------------------------------------


async def test_campaigns_are_shown_in_the_moderators_scope(
    oise: Console, admin: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _campaign_world(sessions, world)
    await _add(sessions, world, "OISE", 60, "Un texte sans rapport avec les autres, sur le bus.")
    page = await _page(oise, "/campagnes")
    assert "1 campagne(s) coordonnée(s) détectée(s)" in page
    assert "Campagne 1 : 6 contributions de 6 participants" in page
    assert page.count(COPIED) == 1  # the text once
    refs = re.findall(r'name="sel" value="(HDF-[A-Z]+-\d{6}):(\d+)"', page)
    assert sorted(r for r, _ in refs) == [f"HDF-OISE-{40 + i:06d}" for i in range(6)]
    assert "Oise" in page and "Somme" not in page.split("Campagne 1")[1]
    assert "05/11/2022 10:00" in page and "05/11/2022 11:40" in page  # first, last (Paris)
    # the administrator sees the whole campaign, across territories
    whole = await _page(admin, "/campagnes")
    assert "Campagne 1 : 8 contributions de 8 participants" in whole
    assert "Oise, Somme Littoral Sud" in whole


async def test_a_campaign_is_decided_at_once_audited_and_citizens_told(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _campaign_world(sessions, world)
    page = await _page(oise, "/campagnes")
    form = re.search(
        r'<form method="post" action="/contributions/bulk" class="campaign-bulk">(.*?)</form>',
        page,
        re.S,
    )
    assert form is not None
    fields = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', form.group(1))
    written = "Ce texte a été envoyé en très grand nombre à l'identique"
    resp = await oise.client.post(
        "/contributions/bulk",
        data=[
            *fields,
            ("bulk_action", "reject"),
            ("reason", "other"),
            ("citizen_reason", written),
            ("note", "campagne copiée d'un réseau social"),
        ],
        allow_redirects=False,
    )
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location == f"/campagnes?campaign={world.campaign_id}"
    after = await _page(oise, location)
    assert "6 contribution(s) rejetée(s)" in after and "6 citoyen(s) en seront informé(s)" in after
    assert "0 campagne(s) coordonnée(s) détectée(s)" in after  # decided: no longer live
    async with sessions() as s:
        decided = list(
            await s.scalars(
                select(Contribution).where(Contribution.reference.like("HDF-OISE-00004%"))
            )
        )
        audits = await s.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "reject")
        )
        notices = list(await s.scalars(select(Outbox)))
    assert {(c.status, c.citizen_reason) for c in decided} == {("rejected", written)}
    assert audits == 6
    assert sorted(n.params["reference"] for n in notices) == sorted(c.reference for c in decided)
    assert {n.params.get("reason_text") for n in notices} == {written}
    # the Somme's copies were out of this moderator's scope: untouched
    async with sessions() as s:
        somme = set(
            await s.scalars(
                select(Contribution.status).where(Contribution.reference.like("HDF-SOMME-00004%"))
            )
        )
    assert somme == {"pending"}


async def test_a_stale_campaign_form_changes_nothing_already_decided(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _campaign_world(sessions, world)
    page = await _page(oise, "/campagnes")
    sel = re.findall(r'name="sel" value="([^"]+)"', page)
    first = sel[0].split(":")[0]
    await oise.post(f"/contributions/{first}/approve", {"version": "1"})  # decided meanwhile
    resp = await oise.client.post(
        "/contributions/bulk",
        data=[
            ("_csrf", oise.csrf),
            ("return_to", "/campagnes"),
            ("bulk_action", "reject"),
            ("reason", "duplicate"),
            *(("sel", s) for s in sel),
        ],
        allow_redirects=False,
    )
    after = await _page(oise, resp.headers["Location"])
    assert "5 contribution(s) rejetée(s)" in after and f"non modifiée(s) : {first}" in after
    async with sessions() as s:
        kept = await s.scalar(select(Contribution.status).where(Contribution.reference == first))
    assert kept == "approved"


async def test_no_campaign_without_new_participants(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for i in range(6):  # the same text, but from people who came long before
        await _add(sessions, world, "OISE", 40 + i, COPIED, minutes=i, new_participant=False)
    page = await _page(oise, "/campagnes")
    assert "0 campagne(s) coordonnée(s) détectée(s)" in page
    assert "Aucune campagne coordonnée dans votre périmètre" in page
