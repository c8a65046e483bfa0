"""The dialog service with the real dialog, on SQLite and PostgreSQL: one event, one transaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialogs import flow
from dialogs.messages import t
from dialogs.model import ChoiceEvent, CommandEvent, Conversation, Event, TextEvent
from storage import campaigns_db, repository
from storage.campaign_file import read_campaign_file
from storage.identity import Pseudonymiser
from storage.maintenance import purge_expired_drafts
from storage.models import (
    Base,
    ChatIdentity,
    Contribution,
    ConversationRow,
    Outbox,
    Participant,
    Territory,
)
from storage.service import DialogService, HandleResult, Participation
from tests.service_helpers import NEED, NOW, SOLUTION, TEST_TOML


class Citizen:
    """One citizen talking to the service, pressing the choices they were last offered."""

    def __init__(self, service: DialogService, user_id: str = "424242", lang: str = "fr") -> None:
        self.service = service
        self.user_id = user_id
        self.lang = lang
        self.version: int | None = None
        self.now = NOW
        self.last: HandleResult | None = None

    async def send(self, event: Event, **kw: Any) -> HandleResult:
        result = await self.service.handle(
            "terminal", self.user_id, event, lang_hint=self.lang, now=self.now, **kw
        )
        self.version = result.conversation.version
        self.last = result
        return result

    async def pick(self, choice: str, **kw: Any) -> HandleResult:
        offered = [c.id for r in (self.last.replies if self.last else []) for c in r.choices]
        assert choice in offered, f"{choice} not offered: {offered}"
        return await self.send(ChoiceEvent(choice, self.version), **kw)

    async def say(self, text_: str, **kw: Any) -> HandleResult:
        return await self.send(TextEvent(text_), **kw)

    async def up_to_review(self, need: str = NEED, solution: str = SOLUTION) -> HandleResult:
        await self.send(CommandEvent("start"))
        await self.pick("consent:yes")
        await self.pick("t:OISE")
        await self.pick("th:2")
        await self.say(need)
        await self.say(solution)
        await self.say("Former et recruter davantage de médecins dans le territoire.")
        return await self.pick("p:patient")


async def count(service: DialogService, model: Any) -> int:
    async with service.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def all_text(service: DialogService) -> str:
    """Every value of every table, as text (to look for identifiers in clear)."""
    parts: list[str] = []
    async with service.sessions() as s:
        for table in Base.metadata.sorted_tables:
            for row in (await s.execute(select(table))).all():
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    parts.append(str(value))
    return "\n".join(parts)


async def test_full_contribution_is_stored_with_consent(service: DialogService) -> None:
    citizen = Citizen(service)
    review = await citizen.up_to_review()
    assert review.conversation.state == "review"
    done = await citizen.pick("send")
    assert done.submitted == ["TST-OISE-000001"]
    assert any("TST-OISE-000001" in r.text for r in done.replies)
    assert done.participant_key == Pseudonymiser(service.settings).key("terminal", "424242")
    async with service.sessions() as s:
        participant = await s.scalar(select(Participant))
        contribution = await s.scalar(select(Contribution))
        conv = await s.scalar(select(ConversationRow))
    assert participant is not None and contribution is not None and conv is not None
    assert participant.consent_version == "test-v9" and participant.consent_at == NOW
    assert participant.key == done.participant_key and participant.channel == "terminal"
    assert contribution.consent_version == "test-v9"
    assert contribution.participant_id == participant.id == done.participant_id
    assert (contribution.need, contribution.solution) == (NEED, SOLUTION)
    assert contribution.profile == "patient" and contribution.status == "pending"
    assert contribution.channel == "terminal" and contribution.language == "fr"
    assert contribution.created_at == NOW
    assert conv.state == "done" and conv.version == done.conversation.version
    assert conv.data == done.conversation.to_dict()
    # the next contribution in the same territory gets the next number
    await citizen.pick("new")
    await citizen.pick("th:SANTE-MENTALE")
    await citizen.say("Les délais pour consulter un psychiatre dépassent six mois ici.")
    await citizen.say("Des consultations avancées de psychiatrie dans les maisons de santé.")
    await citizen.pick("skip")
    await citizen.pick("p:-")
    second = await citizen.pick("send")
    assert second.submitted == ["TST-OISE-000002"]
    mine = await citizen.send(CommandEvent("mine"))
    listing = "\n".join(r.text for r in mine.replies)
    assert listing.index("TST-OISE-000002") < listing.index("TST-OISE-000001")
    assert "Santé mentale" in listing


async def test_no_raw_identifier_in_the_database(service: DialogService) -> None:
    user_id = "987654321012"
    citizen = Citizen(service, user_id)
    await citizen.up_to_review()
    await citizen.pick("send")
    await citizen.send(CommandEvent("mine"))
    content = await all_text(service)
    assert NEED in content  # the scan does see the data
    assert user_id not in content
    assert f"terminal:{user_id}" not in content


async def test_declining_stores_nothing(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))
    # while the notice waits for an answer, only a pseudonymous, unconsented row exists
    async with service.sessions() as s:
        waiting = (await s.scalars(select(Participant))).all()
    assert len(waiting) == 1 and waiting[0].consent_version is None
    declined = await citizen.pick("consent:no")
    assert declined.participant_id is None and declined.replies
    for model in (Participant, ConversationRow, Contribution):
        assert await count(service, model) == 0
    # a /help before consenting stores nothing either
    other = Citizen(service, "777")
    await other.send(CommandEvent("help"))
    assert await count(service, Participant) == 0


@pytest.mark.parametrize("command", ["mine", "delete", "help", "privacy", "language", "nope"])
async def test_every_command_before_consent_is_answered_and_stores_nothing(
    service: DialogService, command: str
) -> None:
    result = await Citizen(service, "555").send(CommandEvent(command))
    assert result.replies and all(r.text.strip() for r in result.replies)
    assert await count(service, Participant) == 0


async def test_duplicate_send_creates_one_contribution(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.up_to_review()
    send = ChoiceEvent("send", citizen.version)
    first = await citizen.send(send)
    again = await citizen.send(send)  # the same press delivered twice
    assert first.submitted == ["TST-OISE-000001"] and again.submitted == []
    assert await count(service, Contribution) == 1


async def test_concurrent_duplicate_send_creates_one_contribution(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.up_to_review()
    send = ChoiceEvent("send", citizen.version)
    results = await asyncio.gather(*(citizen.send(send) for _ in range(4)))
    assert sorted(len(r.submitted) for r in results) == [0, 0, 0, 1]
    assert await count(service, Contribution) == 1
    async with service.sessions() as s:
        assert await s.scalar(select(Territory.last_number).where(Territory.code == "OISE")) == 1


async def test_failing_also_leaves_nothing(service: DialogService) -> None:
    citizen = Citizen(service)
    review = await citizen.up_to_review()

    async def boom(db: AsyncConnection, who: Participation) -> None:
        assert who.participant_id == review.participant_id
        raise RuntimeError("the channel failed")

    with pytest.raises(RuntimeError):
        await citizen.send(ChoiceEvent("send", review.conversation.version), also=boom)
    assert await count(service, Contribution) == 0
    async with service.sessions() as s:
        conv = await s.scalar(select(ConversationRow))
        assert await s.scalar(select(func.sum(Territory.last_number))) == 0
    assert conv is not None and conv.state == "review"
    assert conv.version == review.conversation.version
    # and the same press, retried, goes through once
    calls: list[int] = []

    async def ok(db: AsyncConnection, who: Participation) -> None:
        calls.append(who.participant_id)

    done = await citizen.send(ChoiceEvent("send", review.conversation.version), also=ok)
    assert done.submitted == ["TST-OISE-000001"] and calls == [review.participant_id]


async def test_failing_effect_leaves_nothing(
    service: DialogService, monkeypatch: pytest.MonkeyPatch
) -> None:
    citizen = Citizen(service)
    review = await citizen.up_to_review()

    def broken(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("rendering failed after the insert")

    monkeypatch.setattr(flow, "render_submitted", broken)
    with pytest.raises(RuntimeError):
        await citizen.send(ChoiceEvent("send", review.conversation.version))
    assert await count(service, Contribution) == 0
    async with service.sessions() as s:
        conv = await s.scalar(select(ConversationRow))
        assert await s.scalar(select(func.sum(Territory.last_number))) == 0
    assert conv is not None and conv.state == "review"


async def test_also_runs_in_the_same_transaction(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))

    seen: list[Participation] = []

    async def add_identity(db: AsyncConnection, who: Participation) -> None:
        seen.append(who)
        if who.chat_blocked is None:
            await db.execute(
                insert(ChatIdentity).values(
                    participant_id=who.participant_id, channel="terminal", secret=b"s"
                )
            )

    await citizen.pick("consent:yes", also=add_identity)
    assert await count(service, ChatIdentity) == 1
    # the next event learns, with the conversation, that the identity is there
    await citizen.pick("t:OISE", also=add_identity)
    assert [w.chat_blocked for w in seen] == [None, False]
    assert seen[0].participant_id == seen[1].participant_id != 0
    async with service.sessions() as s, s.begin():
        await s.execute(update(ChatIdentity).values(blocked=True))
    await citizen.pick("th:2", also=add_identity)
    assert seen[-1].chat_blocked is True
    assert await count(service, ChatIdentity) == 1


async def test_stale_version_reruns_the_event(
    service: DialogService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another event of the same citizen commits between our read and our write: ours is
    re-run on the new state, so neither is lost."""
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))
    await citizen.pick("consent:yes")
    await citizen.pick("t:OISE")
    await citizen.pick("th:2")  # now at the need step
    real_load = repository.load_state
    interfered: list[bool] = []

    async def load_then_interfere(session: AsyncSession, key: str) -> Any:
        stored = await real_load(session, key)
        if not interfered:
            interfered.append(True)
            twin = Citizen(service)  # same user, another connection, commits first
            await twin.say(NEED)
        return stored

    monkeypatch.setattr(repository, "load_state", load_then_interfere)
    with caplog.at_level(logging.INFO, logger="storage.service"):
        result = await citizen.say(SOLUTION)
    assert interfered == [True]
    assert [r.message for r in caplog.records if "re-run" in r.message], caplog.text
    assert result.conversation.state == "levers"
    assert result.conversation.answers["need"] == NEED
    assert result.conversation.answers["solution"] == SOLUTION
    async with service.sessions() as s:
        conv = await s.scalar(select(ConversationRow))
    assert conv is not None and conv.data["answers"]["solution"] == SOLUTION


async def test_stale_choice_is_answered_not_applied(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))
    await citizen.pick("consent:yes")
    old = citizen.version
    await citizen.pick("t:OISE")
    stale = await citizen.send(ChoiceEvent("t:NORD", old))
    assert stale.conversation.answers["territory"] == "OISE"
    assert stale.conversation.state == "theme"


async def test_delete_my_data_erases_everything(service: DialogService) -> None:
    keeper = Citizen(service, "1")
    await keeper.up_to_review()
    await keeper.pick("send")
    citizen = Citizen(service, "2")
    await citizen.up_to_review()
    done = await citizen.pick("send")
    pid = done.participant_id
    assert pid is not None
    async with service.sessions() as s, s.begin():
        s.add(ChatIdentity(participant_id=pid, channel="telegram", secret=b"x"))
        s.add(Outbox(participant_id=pid, dedupe_key="approved:x", kind="approved"))
    await citizen.send(CommandEvent("delete"))
    erased = await citizen.pick("delete:yes")
    assert erased.participant_id is None
    async with service.sessions() as s:
        for model in (Participant, ConversationRow, Contribution, ChatIdentity, Outbox):
            rows = (await s.execute(select(model))).scalars().all()
            assert all(getattr(r, "id", None) != pid for r in rows)
            assert all(getattr(r, "participant_id", None) != pid for r in rows)
        assert await s.scalar(select(func.count(Participant.id))) == 1
        assert await s.scalar(select(func.count(Contribution.id))) == 1
    assert SOLUTION in await all_text(service)  # the keeper's contribution stays
    # coming back starts afresh, asking for consent again
    again = await citizen.send(CommandEvent("start"))
    assert again.conversation.state == "consent" and again.conversation.consent_version is None


async def test_draft_expires_after_idle_time(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))
    await citizen.pick("consent:yes")
    await citizen.pick("t:OISE")
    await citizen.pick("th:2")
    at_need = await citizen.say(NEED)
    assert at_need.conversation.answers["need"] == NEED
    ttl = service.settings.draft_ttl
    # purge, as the daily job would, just after the time to live
    async with service.sessions() as s, s.begin():
        assert await purge_expired_drafts(s, NOW + ttl + timedelta(minutes=1), ttl) == 1
    assert NEED not in await all_text(service)
    citizen.now = NOW + ttl + timedelta(minutes=2)
    back = await citizen.say(SOLUTION)
    assert back.replies[0].text == t("fr", "draft.expired")
    assert back.conversation.state == "territory"
    assert "need" not in back.conversation.answers and "solution" not in back.conversation.answers
    assert back.conversation.consent_version == "test-v9"
    assert SOLUTION not in await all_text(service)


async def test_draft_within_ttl_survives(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))
    await citizen.pick("consent:yes")
    await citizen.pick("t:OISE")
    await citizen.pick("th:2")
    await citizen.say(NEED)
    citizen.now = NOW + service.settings.draft_ttl - timedelta(minutes=1)
    later = await citizen.say(SOLUTION)
    assert later.conversation.state == "levers"
    assert later.conversation.answers["need"] == NEED


async def test_english_conversation_and_language_switch(service: DialogService) -> None:
    citizen = Citizen(service, lang="en")
    start = await citizen.send(CommandEvent("start"))
    assert start.conversation.lang == "en"
    await citizen.pick("consent:yes")
    await citizen.send(CommandEvent("language"))
    switched = await citizen.pick("lang:fr")
    assert switched.conversation.lang == "fr"
    async with service.sessions() as s:
        participant = await s.scalar(select(Participant))
    assert participant is not None and participant.lang == "fr"


async def test_hostile_texts_are_stored_cleanly(service: DialogService) -> None:
    need = "\u202eDROP TABLE contributions;-- <b>médecin</b>\x00 absent\u200b depuis 2 ans"
    solution = "'; DELETE FROM participants; -- " + "centre de santé " * 300
    citizen = Citizen(service)
    await citizen.up_to_review(need=need, solution=solution[:2900])
    done = await citizen.pick("send")
    assert done.submitted
    async with service.sessions() as s:
        contribution = await s.scalar(select(Contribution))
        assert await s.scalar(select(func.count(Participant.id))) == 1
    assert contribution is not None
    assert "\x00" not in contribution.need and "\u200b" not in contribution.need
    assert "DROP TABLE contributions" in contribution.need
    assert contribution.solution.startswith("'; DELETE FROM participants;")


async def test_campaign_change_is_seen_by_the_next_event(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.send(CommandEvent("start"))
    first = await citizen.pick("consent:yes")
    labels = [c.label for r in first.replies for c in r.choices]
    assert "Oise" in labels
    spec = read_campaign_file(TEST_TOML)
    data = spec.model_dump(mode="json")
    data["territories"][1]["name"] = "Oise (renommée)"
    changed = type(spec).model_validate(data)
    async with service.sessions() as s, s.begin():
        assert (await campaigns_db.load_campaign(s, changed)).status == "updated"
    again = await citizen.send(CommandEvent("start"))
    labels = [c.label for r in again.replies for c in r.choices]
    assert "Oise (renommée)" in labels and "Oise" not in labels


async def test_open_loads_the_default_campaign_once(service: DialogService) -> None:
    async with service.sessions() as s:
        listed = await campaigns_db.list_campaigns(s)
    assert [c.code for c in listed] == ["TEST-2022"]
    again = await DialogService.open(service.settings)
    await again.close()
    assert await count(service, Territory) == 3


async def test_concurrent_first_messages_make_one_participant(service: DialogService) -> None:
    citizen = Citizen(service, "first-contact")
    results = await asyncio.gather(*(citizen.send(CommandEvent("start")) for _ in range(4)))
    assert all(r.conversation.state == "consent" for r in results)
    assert await count(service, Participant) == 1
    assert await count(service, ConversationRow) == 1


async def test_draft_survives_its_territory_leaving_the_campaign(service: DialogService) -> None:
    citizen = Citizen(service)
    review = await citizen.up_to_review()
    spec = read_campaign_file(TEST_TOML)
    data = spec.model_dump(mode="json")
    data["territories"] = [t for t in data["territories"] if t["code"] != "OISE"]
    async with service.sessions() as s, s.begin():
        assert (await campaigns_db.load_campaign(s, type(spec).model_validate(data))).status == (
            "updated"
        )
    done = await citizen.send(ChoiceEvent("send", review.conversation.version))
    assert done.submitted == ["TST-OISE-000001"]
    # once nothing names it any more, a later load removes it
    async with service.sessions() as s, s.begin():
        await s.execute(text("DELETE FROM contributions"))
        await s.execute(update(ConversationRow).values(data=Conversation(state="done").to_dict()))
    data["territories"][0]["name"] = "Nord, encore"
    async with service.sessions() as s, s.begin():
        await campaigns_db.load_campaign(s, type(spec).model_validate(data))
        codes = set(await s.scalars(select(Territory.code)))
    assert codes == {"NORD", "SOMME"}


async def test_many_citizens_at_once(service: DialogService) -> None:
    """Ten citizens contribute at the same time, each pressing "send" twice: ten
    contributions, numbers 1..10 without gap or repeat, every conversation done."""

    async def contribute(n: int) -> list[str]:
        citizen = Citizen(service, f"crowd-{n}", lang="en" if n % 2 else "fr")
        review = await citizen.up_to_review(need=f"{NEED} ({n})", solution=f"{SOLUTION} ({n})")
        send = ChoiceEvent("send", review.conversation.version)
        first, second = await asyncio.gather(citizen.send(send), citizen.send(send))
        return first.submitted + second.submitted

    refs = [r for rs in await asyncio.gather(*(contribute(n) for n in range(10))) for r in rs]
    assert sorted(refs) == [f"TST-OISE-{n:06d}" for n in range(1, 11)]
    async with service.sessions() as s:
        needs = sorted(await s.scalars(select(Contribution.need)))
        states = set(await s.scalars(select(ConversationRow.state)))
    assert needs == sorted(f"{NEED} ({n})" for n in range(10))
    assert states == {"done"}
