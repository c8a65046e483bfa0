"""Moderation outcomes as the citizen reads them (issue 11, point 6): the thank-you says where
and when the outcome comes; a rejection as « autre motif » carries a reason written for the
citizen, apart from the internal note that never leaves the console; the console's confirmation
says the citizen will be told and shows the notice; the reasons read the same on both sides."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.notifier import notice_text
from dialogs.messages import CATALOGUES, t
from moderation.services.actions import REJECT_REASONS
from storage import vocabulary
from storage.db import session_factory
from storage.models import Contribution, Outbox, Territory
from storage.settings import Settings
from tests.moderation_helpers import Console, World, add_account, new_console, start_console
from tests.telegram_helpers import Citizen, contribute_fr, running_bot

WRITTEN = "Votre texte parle d'une autre région que les Hauts-de-France"
NOTE = "Note interne : signalé par l'équipe, à surveiller"


async def _get(sessions: async_sessionmaker[AsyncSession], ref: str) -> Contribution:
    async with sessions() as s:
        c = await s.scalar(select(Contribution).where(Contribution.reference == ref))
        assert c is not None
        return c


async def _outbox(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


def _flash_of(page: str) -> str:
    match = re.search(r'class="[^"]*flash[^"]*"[^>]*>(.*?)</', page, re.S)
    assert match, "no confirmation on the page"
    return unescape(match.group(1))


async def _confirmation(console: Console, resp: object) -> str:
    assert resp.status == 303, resp  # type: ignore[attr-defined]
    location = resp.headers["Location"]  # type: ignore[attr-defined]
    return _flash_of(await (await console.client.get(location)).text())


# --- the reasons: one vocabulary, read the same on both sides --------------------------------


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
def test_staff_and_citizens_have_the_same_reasons(lang: str) -> None:
    citizen = {k.split(".", 1)[1] for k in CATALOGUES[lang] if k.startswith("reject_reason.")}
    assert set(REJECT_REASONS) == citizen == set(vocabulary.REJECT_REASONS)


def test_each_staff_label_says_what_the_citizen_reads() -> None:
    """The words a moderator picks are in the French notice (« other » is written for the
    citizen each time)."""
    for code, label in REJECT_REASONS.items():
        if code == "other":
            assert "citoyen" in label.casefold()
            continue
        said = label.split(" (")[0].casefold()
        assert said in t("fr", f"reject_reason.{code}").casefold(), code


@pytest.mark.parametrize(
    ("lang", "where", "when"),
    [
        ("fr", "ici, dans cette conversation", "quelques jours"),
        ("en", "here, in this chat", "within a few days"),
        ("falc", "ici, dans cette conversation", "quelques jours"),
    ],
)
def test_the_thank_you_says_where_and_when_the_outcome_comes(
    lang: str, where: str, when: str
) -> None:
    text = t(lang, "submitted", reference="HDF-OISE-000001")
    assert where in text and when in text


# --- rejecting as « autre motif » ------------------------------------------------------------


async def test_other_needs_a_reason_for_the_citizen_the_note_stays_inside(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = "HDF-OISE-000002"
    for data in (
        {"reason": "other", "note": NOTE},  # a note alone is not a reason for the citizen
        {"reason": "other", "citizen_reason": "   ", "note": NOTE},
        {"reason": "other", "citizen_reason": "x" * 301},
    ):
        resp = await oise.post(f"/contributions/{ref}/reject", {"version": "1", **data})
        assert resp.status == 422, data  # type: ignore[attr-defined]
    assert (await _get(sessions, ref)).status == "pending" and await _outbox(sessions) == []

    resp = await oise.post(
        f"/contributions/{ref}/reject",
        {"version": "1", "reason": "other", "citizen_reason": WRITTEN + ".", "note": NOTE},
    )
    confirmation = await _confirmation(oise, resp)
    c = await _get(sessions, ref)
    assert (c.status, c.reject_reason, c.citizen_reason, c.reject_note) == (
        "rejected",
        "other",
        WRITTEN + ".",
        NOTE,
    )
    [msg] = await _outbox(sessions)
    assert msg.params == {"reference": ref, "reason": "other", "reason_text": WRITTEN + "."}
    notice = notice_text("fr", msg.kind, msg.params)
    assert notice == t("fr", "notify.rejected", reference=ref, reason=WRITTEN)
    assert "autre motif" not in notice.casefold() and "interne" not in notice
    # the confirmation: the citizen will be told, where, and what they will read
    assert "sera informé" in confirmation and "Telegram" in confirmation
    assert f"« {notice} »" in confirmation and NOTE not in confirmation
    # the detail page shows both, each under its name
    page = unescape(await (await oise.client.get(f"/contributions/{ref}?status=")).text())
    assert "Raison envoyée au citoyen" in page and WRITTEN in page
    assert "Commentaire interne" in page and NOTE in page


async def test_another_reason_sends_no_written_reason(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = "HDF-OISE-000003"  # its author reads English
    resp = await oise.post(
        f"/contributions/{ref}/reject",
        {"version": "1", "reason": "offtopic", "citizen_reason": WRITTEN, "note": NOTE},
    )
    confirmation = await _confirmation(oise, resp)
    c = await _get(sessions, ref)
    assert c.citizen_reason is None and c.reject_note == NOTE
    [msg] = await _outbox(sessions)
    assert "reason_text" not in msg.params
    english = t("en", "notify.rejected", reference=ref, reason=t("en", "reject_reason.offtopic"))
    assert f"(en anglais) : « {english} »" in confirmation


async def test_approving_shows_the_notice_and_a_second_decision_says_none_is_sent(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = "HDF-OISE-000001"
    confirmation = await _confirmation(
        oise, await oise.post(f"/contributions/{ref}/approve", {"version": "1"})
    )
    assert f"« {t('fr', 'notify.approved', reference=ref)} »" in confirmation
    await oise.post(
        f"/contributions/{ref}/reject",
        {"version": "2", "reason": "offtopic"},
    )
    again = await _confirmation(
        oise, await oise.post(f"/contributions/{ref}/approve", {"version": "3"})
    )
    assert "Avis déjà envoyé" in again and "«" not in again
    assert [m.kind for m in await _outbox(sessions)] == ["approved", "rejected"]


async def test_without_notices_the_confirmation_says_so(
    db_settings: Settings,
    engine: AsyncEngine,
    world: World,
    staff_ids: dict[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = db_settings.model_copy(update={"notify_citizens": False})
    console = await new_console(settings, engine)
    try:
        assert await console.login("oise@ars.test") == 303
        resp = await console.post("/contributions/HDF-OISE-000001/approve", {"version": "1"})
        confirmation = await _confirmation(console, resp)
    finally:
        await console.client.close()
    assert "Aucun avis n'est envoyé" in confirmation and await _outbox(sessions) == []


async def test_bulk_rejection_as_other_carries_the_written_reason(
    oise: Console, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    selected = ["HDF-OISE-000001:1", "HDF-OISE-000002:1"]
    refused = await oise.post(
        "/contributions/bulk",
        {"bulk_action": "reject", "reason": "other", "sel": selected[0]},
    )
    assert "écrivez la raison" in await _confirmation(oise, refused)
    resp = await oise.client.post(
        "/contributions/bulk",
        data=[
            ("_csrf", oise.csrf),
            ("bulk_action", "reject"),
            ("reason", "other"),
            ("citizen_reason", WRITTEN),
            ("note", NOTE),
            *(("sel", s) for s in selected),
        ],
        allow_redirects=False,
    )
    confirmation = await _confirmation(oise, resp)
    assert "2 contribution(s) rejetée(s)" in confirmation
    assert "2 citoyen(s) en seront informé(s)" in confirmation and WRITTEN in confirmation
    rows = await _outbox(sessions)
    assert [m.params.get("reason_text") for m in rows] == [WRITTEN, WRITTEN]


# --- on Telegram, through the fake Bot API ---------------------------------------------------


async def test_telegram_citizen_reads_the_written_reason(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings, notify_interval=3600) as bot:
        citizen = Citizen(bot.api, bot.api.user(7101, lang="fr"))
        thanks = await contribute_fr(citizen)
        assert "dans cette conversation" in thanks.text and "quelques jours" in thanks.text
        engine = bot.service.engine
        sessions = session_factory(engine)
        async with sessions() as s:
            oise_id = await s.scalar(select(Territory.id).where(Territory.code == "OISE"))
            c = await s.scalar(select(Contribution))
        assert oise_id is not None and c is not None
        await add_account(sessions, "oise@ars.test", "moderator", [oise_id])
        console = Console(await start_console(bot.settings, engine))
        try:
            assert await console.login("oise@ars.test") == 303
            resp = await console.post(
                f"/contributions/{c.reference}/reject",
                {
                    "version": str(c.version),
                    "reason": "other",
                    "citizen_reason": WRITTEN,
                    "note": NOTE,
                },
            )
            confirmation = await _confirmation(console, resp)
        finally:
            await console.client.close()
        before = len(citizen.messages)
        assert await bot.channel.notifier.run_once() == 1
        [notice] = [m.text for m in citizen.messages[before:]]
        assert notice == t("fr", "notify.rejected", reference=c.reference, reason=WRITTEN)
        assert "autre motif" not in notice.casefold() and "interne" not in notice
        assert f"« {notice} »" in confirmation  # the moderator saw what the citizen reads
