"""Right of access in the chat (issue 12, point 1): "my data" (/mydata, /mes_donnees, its
menu entry) gives a short message and the JSON of storage.access — in the dialog (pure), in
the service (one transaction), and through every channel (terminal process, Telegram on the
fake Bot API, the web chat's download)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from bot.telegram.app import _menu
from dialogs import flow
from dialogs.messages import CATALOGUES, t
from dialogs.model import CommandEvent, Conversation, MyDataSummary, SendMyData
from storage.my_data import MY_DATA_FILENAME, my_data_summary
from storage.service import DialogService
from storage.settings import Settings
from tests.dialog_helpers import Driver, consented, context, to_review
from tests.storage.test_service import TEST_TOML, Citizen
from tests.telegram_helpers import Citizen as TelegramCitizen
from tests.telegram_helpers import contribute_fr, running_bot, settle
from tests.terminal.test_terminal import NEED, SOLUTION, chat
from tests.web_helpers import WebCitizen, contribute, running_web

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "my-data.schema.json").read_text()
)
NOW = datetime(2022, 11, 20, 9, 30, tzinfo=UTC)


# --- the dialog (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["/mydata", "/mes_donnees", "/MES_DONNEES", "/mesdonnees"])
def test_my_data_command_asks_storage_and_changes_nothing(typed: str) -> None:
    d = to_review(Driver())
    before = d.conv.to_dict()
    d.send(typed)
    assert d.effects == [SendMyData()]
    assert d.conv.to_dict() == before  # nothing changed: the step is asked again by storage


def test_my_data_is_in_the_command_menus_and_the_help() -> None:
    assert "mydata" in flow.COMMANDS and flow.FRENCH_COMMANDS["mydata"] == "mes_donnees"
    assert [c.command for c in _menu("fr")].count("mes_donnees") == 1
    assert [c.command for c in _menu("en")].count("mydata") == 1
    assert "/mes_donnees" in t("fr", "help.text") and "/mes_donnees" in t("falc", "help.text")
    assert "/mydata" in t("en", "help.text")


def test_my_data_works_while_the_consultation_is_closed() -> None:
    d = Driver(ctx=context(datetime(2023, 3, 1, 10, 0, tzinfo=UTC)))
    d.send(CommandEvent("mydata"))
    assert d.effects == [SendMyData()]


def _summary() -> MyDataSummary:
    return MyDataSummary(
        contributions=(("pending", 1), ("approved", 2)),
        consent_version="2022-11-v1",
        consent_at=datetime(2022, 11, 19, 23, 30, tzinfo=UTC),  # the 20th in Paris
        has_draft=True,
        filename=MY_DATA_FILENAME,
    )


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_the_summary_counts_and_names_the_consent_and_the_file(lang: str) -> None:
    conv = consented(Driver()).conv
    conv.lang = lang
    replies = flow.render_my_data(conv, _summary(), context())
    text = replies[0].text
    assert "3 (" in text and "2022-11-v1" in text and "20/11/2022" in text
    assert t(lang, "status.pending") in text and t(lang, "status.approved") in text
    assert MY_DATA_FILENAME in text
    assert replies[-1].text == flow.prompt_for(conv, context())[-1].text  # then the step again


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_nothing_stored_is_said_plainly(lang: str) -> None:
    conv = Conversation(lang=lang)
    text = flow.render_my_data(conv, None, context())[0].text
    assert text == t(lang, "my_data.nothing")


def test_the_summary_is_read_from_the_file_content() -> None:
    data = {
        "participant": {"consent": {"notice_version": "v1", "accepted_at": NOW.isoformat()}},
        "contributions": [{"status": "approved"}, {"status": "pending"}, {"status": "approved"}],
        "draft": {"step": "need", "answers": {"territory": "OISE", "theme": "1"}},
    }
    summary = my_data_summary(data)
    assert summary.contributions == (("pending", 1), ("approved", 2))
    assert (summary.consent_version, summary.consent_at) == ("v1", NOW)
    assert summary.has_draft
    # the territory kept for the next contribution is no draft
    data["draft"] = {"step": "done", "answers": {"territory": "OISE"}}
    assert not my_data_summary(data).has_draft


# --- the service: one transaction ---------------------------------------------------------


@pytest.fixture
async def service(db_settings: Settings) -> DialogService:
    settings = db_settings.model_copy(
        update={"default_campaign_file": str(TEST_TOML), "privacy_notice_version": "test-v9"}
    )
    svc = await DialogService.open(settings)
    try:
        yield svc  # type: ignore[misc]
    finally:
        await svc.close()


async def test_service_gives_the_summary_and_the_json_file(service: DialogService) -> None:
    citizen = Citizen(service)
    await citizen.up_to_review()
    await citizen.pick("send")
    result = await citizen.send(CommandEvent("mes_donnees"))
    assert len(result.attachments) == 1
    file = result.attachments[0]
    assert (file.filename, file.media_type) == (MY_DATA_FILENAME, "application/json")
    data = json.loads(file.data.decode("utf-8"))
    jsonschema.validate(data, SCHEMA)
    assert [c["reference"] for c in data["contributions"]] == ["TST-OISE-000001"]
    assert data["participant"]["consent"]["notice_version"] == "test-v9"
    text = "\n".join(r.text for r in result.replies)
    assert "1 (" in text and "test-v9" in text and MY_DATA_FILENAME in text
    assert result.conversation.state == "done" and not result.changed


async def test_service_nothing_stored_no_file(service: DialogService) -> None:
    citizen = Citizen(service, user_id="77")
    result = await citizen.send(CommandEvent("mydata"))
    assert result.attachments == [] and result.participant_id is None
    assert result.replies[0].text == t("fr", "my_data.nothing")
    assert await service.my_data("terminal", "77") is None


# --- the terminal: a real process -----------------------------------------------------------


def test_terminal_writes_the_file_here_and_says_where(tmp_path: Path) -> None:
    lines = ["1", "Oise", "2", NEED, SOLUTION, "1", "3", "1", "/mes_donnees"]
    result = chat(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    path = tmp_path / MY_DATA_FILENAME
    assert t("fr", "my_data.saved", path=str(path.resolve()))[:20] in result.stdout
    assert str(path.resolve()) in result.stdout.replace("\n", "")
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, SCHEMA)
    assert [c["reference"] for c in data["contributions"]] == ["HDF-OISE-000001"]
    assert data["contributions"][0]["texts"]["need"] == NEED
    assert path.stat().st_mode & 0o077 == 0  # the citizen's texts: readable by them only


def test_terminal_nothing_stored_writes_no_file(tmp_path: Path) -> None:
    result = chat(tmp_path, ["2", "/mes_donnees"])  # declined: nothing kept
    assert result.returncode == 0, result.stderr
    assert "Rien n'est enregistré sur vous" in " ".join(result.stdout.split())
    assert not (tmp_path / MY_DATA_FILENAME).exists()


# --- Telegram: a document, uploaded ---------------------------------------------------------


async def test_telegram_sends_the_json_as_a_document(sqlite_settings: Settings) -> None:
    async with running_bot(sqlite_settings) as bot:
        c = TelegramCitizen(bot.api, bot.api.user(31337))
        await contribute_fr(c)
        await c.say("/mes_donnees")
        await c.expect(text=t("fr", "my_data.summary").split("\n")[0])
        chat_ = bot.api.chats[31337]
        await bot.api.wait_for(lambda: len(chat_.documents) == 1)
        await settle(bot)
        doc = chat_.documents[0]
        assert doc.filename == MY_DATA_FILENAME
        data = json.loads(doc.data.decode("utf-8"))
        jsonschema.validate(data, SCHEMA)
        assert data["participant"]["channel"] == "telegram"
        assert data["participant"]["chat_identity_kept"] is True
        assert [x["reference"] for x in data["contributions"]] == ["HDF-OISE-000001"]
        assert "31337" not in doc.data.decode("utf-8")  # the identity itself is not in it
        # someone with nothing stored: a clear answer, no document
        stranger = TelegramCitizen(bot.api, bot.api.user(4040))
        await stranger.say("/mes_donnees")
        await stranger.expect(text=t("fr", "my_data.nothing")[:30])
        await settle(bot)
        assert bot.api.chats[4040].documents == []
        assert not [e for e in bot.api.errors if e[0] == "sendDocument"]


# --- the web chat: a download ---------------------------------------------------------------


async def test_web_download_is_computed_from_the_cookie(sqlite_settings: Settings) -> None:
    async with running_web(sqlite_settings) as web, WebCitizen(web) as citizen:
        await contribute(citizen)
        # the menu has the entry (a button, as Telegram's menu) and the download link
        assert "mydata" in [b.value for b in citizen.menu.buttons]
        assert await citizen.command("mydata") == 200
        assert citizen.said(t("fr", "my_data.summary").split("\n")[0])
        async with citizen.session.get(web.url + "mes-donnees", headers=citizen.headers) as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"] == (
                f'attachment; filename="{MY_DATA_FILENAME}"'
            )
            assert r.headers["Cache-Control"] == "no-store"
            assert r.content_type == "application/json"
            data = json.loads(await r.read())
        jsonschema.validate(data, SCHEMA)
        assert data["participant"]["channel"] == "web"
        assert len(data["contributions"]) == 1
        page = await (await citizen.session.get(web.url, headers=citizen.headers)).text()
        assert 'href="/mes-donnees"' in page and t("fr", "web.download") in page
    async with running_web(sqlite_settings) as web, WebCitizen(web) as newcomer:
        await newcomer.open()  # a cookie, nothing stored
        async with newcomer.session.get(web.url + "mes-donnees", headers=newcomer.headers) as r:
            assert r.status == 404
            assert r.content_type == "text/html"
            assert t("fr", "my_data.nothing") in html.unescape(await r.text())
            assert "Content-Disposition" not in r.headers
        async with (
            WebCitizen(web) as cookieless,
            cookieless.session.get(web.url + "mes-donnees") as r,
        ):
            assert r.status == 404 and "Content-Disposition" not in r.headers
