"""The dialog service's groups (``DialogService.handle_many``), on SQLite and PostgreSQL: the
events of several citizens in one transaction, with the outcome each would have had alone, all
or nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs.model import ChoiceEvent, CommandEvent, Event, TextEvent
from storage import repository
from storage.models import Contribution, ConversationRow, Participant
from storage.service import (
    DialogService,
    GroupEvent,
    HandleResult,
    NotGrouped,
    Participation,
)
from storage.settings import Settings
from tests.service_helpers import LEVERS, NEED, NOW, SOLUTION, TEST_TOML

#: A whole contribution, one event a step (the versions are those of the steps).
STEPS: list[Event] = [
    CommandEvent("start"),
    ChoiceEvent("consent:yes", 1),
    ChoiceEvent("t:OISE", 2),
    ChoiceEvent("th:2", 3),
    TextEvent(NEED),
    TextEvent(SOLUTION),
    TextEvent(LEVERS),
    ChoiceEvent("p:patient", 7),
    ChoiceEvent("send", 8),
]


def group(keys: Sequence[str], step: Event) -> list[GroupEvent]:
    return [GroupEvent(key, step, "fr", NOW) for key in keys]


def seen(result: HandleResult) -> tuple[Any, ...]:
    """What a citizen is shown and what is kept of their conversation (not who they are)."""
    conv = result.conversation
    return (
        [(re.sub(r"TST-OISE-\d+", "REF", r.text), r.choices) for r in result.replies],
        conv.state,
        conv.version,
        conv.answers,
        result.changed,
        result.contributed,
        len(result.submitted),
    )


async def count(service: DialogService, model: Any, *where: Any) -> int:
    async with service.engine.connect() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_group_is_one_transaction_with_each_events_own_outcome(
    service: DialogService,
) -> None:
    """Six citizens through a whole contribution as a group, one transaction a step, beside
    one citizen alone: each of the six is shown and keeps what the lone one does; their
    contributions are numbered without gap."""
    keys = [f"group-{n}" for n in range(6)]
    commits: list[int] = []
    event.listen(service.engine.sync_engine, "commit", lambda _c: commits.append(1))
    for step in STEPS:
        before = len(commits)
        results = await service.handle_many("web", group(keys, step))
        assert len(commits) - before == 1
        alone = await service.handle("web", "alone", step, lang_hint="fr", now=NOW, key="alone")
        assert [seen(r) for r in results] == [seen(alone)] * len(keys)
        assert [r.participant_key for r in results] == keys
    references = sorted(r for r in await _references(service))
    assert references == [f"TST-OISE-{n:06d}" for n in range(1, 8)]
    assert await count(service, ConversationRow, ConversationRow.state == "done") == 7


async def _references(service: DialogService) -> list[str]:
    async with service.engine.connect() as db:
        return list(await db.scalars(select(Contribution.reference)))


async def test_also_of_a_group_sees_every_participation_in_the_transaction(
    service: DialogService,
) -> None:
    keys = ["a", "b", "c"]
    await service.handle_many("web", group(keys, STEPS[0]))
    told: list[list[Participation]] = []

    async def also(db: AsyncConnection, who: Sequence[Participation]) -> None:
        told.append(list(who))
        # in the same transaction: the group's new participants are there already
        assert await db.scalar(select(func.count()).select_from(Participant)) == 3

    results = await service.handle_many("web", group(keys, STEPS[1]), also=also)
    (participations,) = told
    assert [p.participant_id for p in participations] == [r.participant_id for r in results]
    assert all(p.conversation.state == "territory" for p in participations)


async def test_a_group_is_all_or_nothing(
    service: DialogService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``also`` refusing, or one conversation changed meanwhile (another event of that citizen
    committed between the group's read and its write): nothing of the group is stored, and the
    error is raised (the caller then handles the events one by one)."""
    keys = ["a", "b", "c"]
    await service.handle_many("web", group(keys, STEPS[0]))
    await service.handle_many("web", group(keys, STEPS[1]))

    async def refuse(db: AsyncConnection, who: Sequence[Participation]) -> None:
        raise RuntimeError("recorded already")

    with pytest.raises(RuntimeError):
        await service.handle_many("web", group(keys, STEPS[2]), also=refuse)
    assert await count(service, ConversationRow, ConversationRow.state == "territory") == 3

    real_load = repository.load_states

    async def load_then_interfere(db: AsyncConnection, keys_: Sequence[str]) -> Any:
        states = await real_load(db, keys_)
        # citizen "b" in another tab: the same step, committed first
        await service.handle("web", "b", STEPS[2], lang_hint="fr", now=NOW, key="b")
        return states

    monkeypatch.setattr(repository, "load_states", load_then_interfere)
    with pytest.raises(repository.StaleConversation):
        await service.handle_many("web", group(keys, STEPS[2]))
    monkeypatch.undo()
    states = {}
    async with service.engine.connect() as db:
        for key in keys:
            state = await repository.load_state(db, key)
            assert state is not None and state.stored is not None
            states[key] = state.stored.conversation.state
    assert states == {"a": "territory", "b": "theme", "c": "territory"}
    # one by one, each as it stands: "b" is told its choice is out of date
    for key in keys:
        await service.handle("web", key, STEPS[2], lang_hint="fr", now=NOW, key=key)
    assert await count(service, ConversationRow, ConversationRow.state == "theme") == 3


async def test_one_citizen_twice_is_not_a_group(service: DialogService) -> None:
    with pytest.raises(NotGrouped):
        await service.handle_many("web", group(["a", "a"], STEPS[0]))
    assert await count(service, Participant) == 0


async def test_a_groups_submissions_are_checked_and_numbered_together(
    db_settings: Settings,
) -> None:
    """One group of "send": a citizen at the daily cap is refused (told why, the draft kept at
    the review step), one sending a draft stored already gets its reference again, the others'
    contributions are numbered per territory in the group's order, without gap."""
    settings = db_settings.model_copy(
        update={
            "default_campaign_file": str(TEST_TOML),
            "privacy_notice_version": "test-v9",
            "daily_contribution_cap": 1,
        }
    )
    service = await DialogService.open(settings)
    try:
        keys = ["capped", "again", "oise-1", "nord-1", "oise-2", "nord-2"]
        territory = {k: "t:NORD" if k.startswith("nord") else "t:OISE" for k in keys}
        await service.handle_many("web", group(keys, STEPS[0]))
        await service.handle_many("web", group(keys, STEPS[1]))
        await service.handle_many(
            "web", [GroupEvent(k, ChoiceEvent(territory[k], 2), "fr", NOW) for k in keys]
        )
        for step in STEPS[3:8]:
            await service.handle_many("web", group(keys, step))
        # "capped" and "again" sent one already today; "again" finds its review step back (as
        # after a restored backup): its draft is stored already
        async with service.engine.connect() as db:
            pid = await db.scalar(select(Participant.id).where(Participant.key == "again"))
            review = (
                await db.execute(
                    select(ConversationRow).where(ConversationRow.participant_id == pid)
                )
            ).one()
        for key in ("capped", "again"):
            sent = await service.handle("web", key, STEPS[8], lang_hint="fr", now=NOW, key=key)
            assert sent.submitted
        first_again = sent.submitted[0]
        async with service.engine.begin() as db:
            await db.execute(
                update(ConversationRow)
                .where(ConversationRow.participant_id == pid)
                .values(data=review.data, state=review.state, version=review.version)
            )
        capped = await service.handle(
            "web", "capped", ChoiceEvent("new", 9), lang_hint="fr", now=NOW, key="capped"
        )
        for step in STEPS[3:8]:  # another contribution, up to its review
            if isinstance(step, ChoiceEvent):
                step = ChoiceEvent(step.choice, capped.conversation.version)
            capped = await service.handle(
                "web", "capped", step, lang_hint="fr", now=NOW, key="capped"
            )
        assert capped.conversation.state == "review"
        version = capped.conversation.version

        events = [
            GroupEvent(k, ChoiceEvent("send", version if k == "capped" else 8), "fr", NOW)
            for k in keys
        ]
        results = dict(zip(keys, await service.handle_many("web", events), strict=True))
        assert not results["capped"].submitted
        assert results["capped"].conversation.state == "review"
        assert "1" in results["capped"].replies[0].text  # the cap, told
        assert not results["again"].submitted  # the same draft: its reference again
        assert any(first_again in r.text for r in results["again"].replies)
        assert [results[k].submitted for k in keys[2:]] == [
            ["TST-OISE-000003"],
            ["TST-NORD-000001"],
            ["TST-OISE-000004"],
            ["TST-NORD-000002"],
        ]
        assert sorted(await _references(service)) == [
            "TST-NORD-000001",
            "TST-NORD-000002",
            "TST-OISE-000001",
            "TST-OISE-000002",
            "TST-OISE-000003",
            "TST-OISE-000004",
        ]
    finally:
        await service.close()
