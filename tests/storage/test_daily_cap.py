"""The per-citizen daily cap (issue 14, point 2): one more contribution than
``daily_contribution_cap`` in a local day is not stored, its draft stays at the review step, the
citizen is told politely in their language, and it can be sent the next day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dialogs.messages import t
from dialogs.model import ChoiceEvent
from storage.daily_cap import local_midnight
from storage.models import Contribution, ConversationRow
from storage.service import DialogService
from storage.settings import Settings
from tests.storage.test_service import NOW, TEST_TOML, Citizen


@pytest.fixture
async def capped(db_settings: Settings) -> AsyncIterator[DialogService]:
    settings = db_settings.model_copy(
        update={
            "default_campaign_file": str(TEST_TOML),
            "privacy_notice_version": "test-v9",
            "daily_contribution_cap": 2,
        }
    )
    svc = await DialogService.open(settings)
    try:
        yield svc
    finally:
        await svc.close()


async def _stored(service: DialogService) -> int:
    async with service.sessions() as s:
        return int(await s.scalar(select(func.count(Contribution.id))) or 0)


async def _another(citizen: Citizen, need: str) -> None:
    """From the thank-you: a new contribution in the same territory, up to the review."""
    await citizen.pick("new")
    await citizen.pick("th:2")
    await citizen.say(need)
    await citizen.say("Des consultations avancées dans les maisons de santé du canton.")
    await citizen.pick("skip")
    review = await citizen.pick("p:-")
    assert review.conversation.state == "review"


def test_the_day_is_the_campaigns_local_day() -> None:
    # 23:30 in Paris on 20 November is 22:30 UTC; its day began at 23:00 UTC the day before
    late = datetime(2022, 11, 20, 22, 30, tzinfo=UTC)
    assert local_midnight(late, "Europe/Paris") == datetime(2022, 11, 19, 23, 0, tzinfo=UTC)
    after = datetime(2022, 11, 20, 23, 30, tzinfo=UTC)  # 00:30 on the 21st in Paris
    assert local_midnight(after, "Europe/Paris") == datetime(2022, 11, 20, 23, 0, tzinfo=UTC)
    assert local_midnight(late, "UTC") == datetime(2022, 11, 20, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
def test_the_message_is_polite_and_says_when(lang: str) -> None:
    text = t(lang, "daily_cap", cap=10)
    assert "10" in text
    assert {"fr": "demain", "en": "tomorrow", "falc": "demain"}[lang] in text
    assert {"fr": "Merci", "en": "Thank you", "falc": "Merci"}[lang] in text


async def test_one_more_than_the_cap_is_kept_at_review_and_sent_the_next_day(
    capped: DialogService,
) -> None:
    citizen = Citizen(capped)
    await citizen.up_to_review()
    first = await citizen.pick("send")
    await _another(citizen, "Les délais pour consulter un psychiatre dépassent six mois ici.")
    second = await citizen.pick("send")
    assert len(first.submitted) == len(second.submitted) == 1
    await _another(citizen, "Aucun dentiste ne prend de nouveaux patients dans la commune.")

    citizen.now = NOW + timedelta(hours=3)  # the same local day
    refused = await citizen.pick("send")
    assert refused.submitted == [] and await _stored(capped) == 2
    assert refused.replies[0].text == t("fr", "daily_cap", cap=2)
    # the draft is kept, at the review step, with its texts, and may be sent again
    assert refused.conversation.state == "review"
    assert "dentiste" in "\n".join(r.text for r in refused.replies[1:])
    assert "send" in {c.id for r in refused.replies for c in r.choices}
    async with capped.sessions() as s:
        row = await s.scalar(select(ConversationRow))
    assert row is not None and row.state == "review"
    again = await citizen.pick("send")  # still the same day: refused again, nothing stored
    assert again.submitted == [] and await _stored(capped) == 2

    citizen.now = NOW + timedelta(days=1)  # the next day
    sent = await citizen.pick("send")
    assert len(sent.submitted) == 1 and await _stored(capped) == 3
    assert sent.conversation.state == "done"
    async with capped.sessions() as s:
        needs = list(await s.scalars(select(Contribution.need)))
    assert any("dentiste" in n for n in needs)


async def test_the_cap_counts_from_local_midnight_and_per_citizen(
    capped: DialogService,
) -> None:
    late = datetime(2022, 11, 20, 22, 10, tzinfo=UTC)  # 23:10 in Paris
    citizen = Citizen(capped)
    citizen.now = late
    await citizen.up_to_review()
    await citizen.pick("send")
    await _another(citizen, "Les délais pour consulter un psychiatre dépassent six mois ici.")
    await citizen.pick("send")
    # 00:10 in Paris: a new day, although fewer than 24 hours passed
    citizen.now = late + timedelta(hours=1)
    await _another(citizen, "Aucun dentiste ne prend de nouveaux patients dans la commune.")
    assert len((await citizen.pick("send")).submitted) == 1
    # another citizen is not counted with this one
    other = Citizen(capped, "515151")
    other.now = citizen.now
    await other.up_to_review()
    assert len((await other.pick("send")).submitted) == 1


async def test_a_draft_already_stored_is_not_refused(capped: DialogService) -> None:
    citizen = Citizen(capped)
    await citizen.up_to_review()
    send = ChoiceEvent("send", citizen.version)
    await citizen.send(send)
    await _another(citizen, "Les délais pour consulter un psychiatre dépassent six mois ici.")
    send = ChoiceEvent("send", citizen.version)
    done = await citizen.send(send)
    again = await citizen.send(send)  # the same press delivered twice, at the cap
    assert len(done.submitted) == 1 and again.submitted == []
    assert all(t("fr", "daily_cap", cap=2) != r.text for r in again.replies)
    assert await _stored(capped) == 2
