"""Withdraw one contribution in the chat (issue 12, point 2): a "Withdraw <reference>" choice
under each of "my contributions" or /withdraw (/retirer) <reference>, confirmed, then storage
deletes a pending one or withdraws a published one from every later export, and the dialog
says which. Hostile input (someone else's reference, malformed or huge, a double press, a
stale button) gets a clear answer and changes nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from dialogs.messages import CATALOGUES, t
from dialogs.model import (
    ChoiceEvent,
    CommandEvent,
    ContributionSummary,
    ListContributions,
    WithdrawContribution,
)
from dialogs.prompts import contributions
from exporter.run import ExportRequest, run_export
from storage.models import AuditEntry, Contribution
from storage.service import DialogService
from storage.settings import Settings
from tests.dialog_helpers import Driver, consented, context, to_review
from tests.storage.test_service import Citizen
from tests.telegram_helpers import Citizen as TelegramCitizen
from tests.telegram_helpers import contribute_fr, running_bot, settle
from tests.terminal.test_terminal import NEED, SOLUTION, chat, db_rows
from tests.web_helpers import WebCitizen, contribute, running_web

REF = "HDF-OISE-000042"
NOW = datetime(2022, 11, 20, 9, 30, tzinfo=UTC)


# --- the dialog (pure) ------------------------------------------------------------------------


def _item(reference: str, status: str = "pending", need: str = "Un besoin.") -> ContributionSummary:
    return ContributionSummary(reference, NOW, "Oise", "Thème", status, need)


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_each_listed_contribution_but_a_withdrawn_one_has_its_button(lang: str) -> None:
    conv = consented(Driver()).conv
    conv.lang = lang
    items = [_item("HDF-OISE-000002", "approved"), _item(REF, "withdrawn", need="")]
    [reply] = contributions(conv, items)
    assert [c.id for c in reply.choices] == ["w:HDF-OISE-000002"]
    assert reply.choices[0].label == t(lang, "withdraw.button", reference="HDF-OISE-000002")
    assert t(lang, "mine.erased") in reply.text and t(lang, "status.withdrawn") in reply.text


def test_withdraw_is_confirmed_then_comes_back_where_it_was() -> None:
    d = to_review(Driver())
    d.send(f"/retirer {REF.lower()}")
    assert d.conv.state == "confirm_withdraw" and d.conv.withdrawing == REF
    assert not d.effects and REF in d.text
    assert d.choices == ["withdraw:yes", "withdraw:no"]
    d.press("withdraw:yes")
    assert d.effects == [WithdrawContribution(REF)]
    assert d.conv.state == "review" and d.conv.withdrawing is None  # the draft kept


def test_keep_withdraws_nothing() -> None:
    d = consented(Driver(), "OISE", "1")
    d.send(ChoiceEvent(f"w:{REF}", d.conv.version))
    assert d.conv.state == "confirm_withdraw"
    d.press("withdraw:no")
    assert not d.effects and d.conv.state == "need"
    assert t("fr", "withdraw.kept") in d.text


def test_withdraw_without_a_reference_lists_them() -> None:
    d = consented(Driver())
    d.send("/retirer")
    assert d.effects == [ListContributions()]
    assert t("fr", "withdraw.which") in d.text


@pytest.mark.parametrize(
    "arg", ["ma contribution d'hier", "HDF_OISE_1", "HDF-OISE-" + "9" * 5000, "<script>", "--"]
)
def test_malformed_or_huge_reference_is_refused_plainly(arg: str) -> None:
    d = consented(Driver(), "OISE", "1")
    before = d.conv.to_dict()
    d.send(CommandEvent("withdraw", arg))
    assert not d.effects and d.conv.to_dict() == before
    assert t("fr", "withdraw.malformed") in d.text
    assert arg not in d.text  # never echoed back
    d.send(ChoiceEvent(f"w:{arg}", d.conv.version))
    assert not d.effects and d.conv.to_dict() == before


def test_without_consent_there_is_nothing_to_withdraw() -> None:
    d = Driver()
    d.send(CommandEvent("withdraw", REF))
    assert not d.effects and d.conv.state == "new"
    assert t("fr", "withdraw.unknown", reference=REF) in d.text


def test_a_stale_withdraw_button_or_confirmation_changes_nothing() -> None:
    d = consented(Driver(), "OISE", "1")
    old = d.conv.version
    d.send("/retirer " + REF)
    d.press("withdraw:no")
    before = d.conv.to_dict()
    d.send(ChoiceEvent(f"w:{REF}", old))  # a button of an older list
    d.send(ChoiceEvent("withdraw:yes", old))  # a confirmation pressed again
    assert not d.effects and d.conv.to_dict() == before
    assert t("fr", "channel.stale_choice") in d.text


def test_withdraw_works_while_the_consultation_is_closed() -> None:
    d = consented(Driver(), "OISE")
    d.ctx = context(datetime(2023, 3, 1, 10, 0, tzinfo=UTC))
    d.send(ChoiceEvent(f"w:{REF}", d.conv.version))
    d.press("withdraw:yes")
    assert d.effects == [WithdrawContribution(REF)]


# --- the service: storage.withdraw in the event's transaction, and the export -----------------


@pytest.fixture
async def service(db_settings: Settings) -> DialogService:
    svc = await DialogService.open(db_settings)  # the Hauts-de-France campaign
    try:
        yield svc  # type: ignore[misc]
    finally:
        await svc.close()


async def _exported(settings: Settings, out: Path) -> str:
    request = ExportRequest(campaign="HDF-2022", out=out, formats=("csv", "md"))
    result = await run_export(settings, request)
    return "\n".join(w.path.read_text(encoding="utf-8") for w in result.written)


async def _contribute(citizen: Citizen) -> str:
    """A contribution in the Oise (its need names its author); its reference."""
    await citizen.send(CommandEvent("start"))
    await citizen.pick("consent:yes")
    await citizen.pick("t:OISE")
    await citizen.pick("th:2")
    await citizen.say(f"{NEED} ({citizen.user_id})")
    await citizen.say(SOLUTION)
    await citizen.pick("skip")
    await citizen.pick("p:-")
    return (await citizen.pick("send")).submitted[0]


async def test_withdrawn_after_approval_leaves_every_later_export(
    service: DialogService, tmp_path: Path
) -> None:
    mine, other = Citizen(service, "1001"), Citizen(service, "2002")
    ref, others = [await _contribute(citizen) for citizen in (mine, other)]
    async with service.sessions() as s, s.begin():  # a moderator approves both
        await s.execute(update(Contribution).values(status="approved"))
    assert ref in await _exported(service.settings, tmp_path / "before")

    listed = await mine.send(CommandEvent("mes_contributions"))
    assert f"w:{ref}" in [c.id for r in listed.replies for c in r.choices]
    await mine.pick(f"w:{ref}")
    done = await mine.pick("withdraw:yes")
    assert t("fr", "withdraw.withdrawn", reference=ref) in [r.text for r in done.replies]
    assert done.conversation.state == "done"
    # pressed again (a double press, or a retried message): already withdrawn or stale
    again = await mine.send(ChoiceEvent("withdraw:yes", done.conversation.version - 1))
    assert t("fr", "channel.stale_choice") in [r.text for r in again.replies]
    twice = await mine.send(CommandEvent("retirer", ref))
    twice = await mine.pick("withdraw:yes")
    assert t("fr", "withdraw.already", reference=ref) in [r.text for r in twice.replies]
    # someone else's reference: unknown, and theirs untouched
    await mine.send(CommandEvent("retirer", others))
    theirs = await mine.pick("withdraw:yes")
    assert t("fr", "withdraw.unknown", reference=others) in [r.text for r in theirs.replies]

    exported = await _exported(service.settings, tmp_path / "after")
    assert ref not in exported and "(1001)" not in exported
    assert others in exported and "(2002)" in exported
    async with service.sessions() as s:
        statuses = dict(
            (await s.execute(select(Contribution.reference, Contribution.status))).all()
        )
        audit = (await s.execute(select(AuditEntry.action, AuditEntry.target))).all()
    assert statuses == {ref: "withdrawn", others: "approved"}
    assert audit == [("withdrawn", ref)]  # one entry, the second press changed nothing


async def test_a_pending_one_is_deleted(service: DialogService) -> None:
    citizen = Citizen(service)
    ref = await _contribute(citizen)
    await citizen.send(CommandEvent("withdraw", ref))
    result = await citizen.pick("withdraw:yes")
    assert t("fr", "withdraw.deleted", reference=ref) in [r.text for r in result.replies]
    async with service.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Contribution)) == 0


# --- the channels -----------------------------------------------------------------------------


def test_terminal_withdraws_from_my_contributions(tmp_path: Path) -> None:
    lines = ["1", "Oise", "2", NEED, SOLUTION, "1", "3", "1", "/mes_contributions"]
    # the list's "Retirer" comes first (1), then the step's choices; then confirm (1)
    result = chat(tmp_path, [*lines, "Retirer HDF-OISE-000001", "1"])
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "1. Retirer HDF-OISE-000001" in flat
    assert t("fr", "withdraw.deleted", reference="HDF-OISE-000001") in flat
    assert db_rows(tmp_path, "select count(*) from contributions") == [(0,)]


async def test_telegram_withdraw_button_then_double_press(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = TelegramCitizen(bot.api, bot.api.user(60606))
        await contribute_fr(c)
        await c.say("/mes_contributions")
        listed = await c.expect(button="w:HDF-OISE-000001")
        await c.press("w:HDF-OISE-000001", listed)
        confirm = await c.expect(button="withdraw:yes")
        data = confirm.button("withdraw:yes")["callback_data"]
        await c.press("withdraw:yes", confirm)
        await c.expect(text=t("fr", "withdraw.deleted", reference="HDF-OISE-000001"))
        await settle(bot)
        await bot.api.press_data(c.user, confirm, data)  # the same button again (a 2nd tap)
        await c.expect(text=t("fr", "channel.stale_choice"))
        await settle(bot)
        assert bot.channel.processor.stats.failed == 0
        assert not [e for e in bot.api.errors if e[0] == "sendMessage"]


async def test_web_withdraw_without_javascript(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as web, WebCitizen(web) as citizen:
        await contribute(citizen)
        assert await citizen.command("mine") == 200
        ref = next(b.value[2:] for b in citizen.form.buttons if b.value.startswith("w:"))
        assert "new" in citizen.buttons()  # the step's own choices stay offered
        await citizen.press(f"w:{ref}")
        assert citizen.state == "confirm_withdraw"
        confirm = citizen.form
        await citizen.press("withdraw:yes")
        assert citizen.said(t("fr", "withdraw.deleted", reference=ref))
        assert citizen.state == "done"
        # the confirmation form sent again (back button, double submit): applied once
        await citizen.post({**confirm.fields, "choice": "withdraw:yes"}, form=confirm)
        assert citizen.status == 200
        assert citizen.said(t("fr", "withdraw.deleted", reference=ref))
        assert await citizen.command("mine") == 200
        assert citizen.said(t("fr", "mine.none"))
