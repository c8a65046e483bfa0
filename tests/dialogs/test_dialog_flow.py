"""The conversation, step by step, in French and English (pure: no database, no channel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialogs import flow
from dialogs.messages import t
from dialogs.model import (
    ChoiceEvent,
    CommandEvent,
    ContributionSummary,
    Conversation,
    DeleteMyData,
    ListContributions,
    RecordConsent,
    SetLanguage,
    SubmitContribution,
    TextEvent,
)
from tests.dialog_helpers import (
    LEVERS_FR,
    NEED_EN,
    NEED_FR,
    SOLUTION_EN,
    SOLUTION_FR,
    Driver,
    consented,
    context,
    to_review,
)


def test_machine_is_built_once_and_holds_no_conversation() -> None:
    assert flow.MACHINE.models == []
    d = to_review(Driver())
    assert flow.MACHINE.models == [], "a conversation must never be attached to the machine"
    assert d.conv.state == "review"


def test_full_contribution_in_french() -> None:
    d = Driver()
    replies = d.send("Bonjour")
    assert "concertation" in replies[0].text and d.choices[:2] == ["consent:yes", "consent:no"]
    d.press("consent:yes")
    assert d.effects == [RecordConsent("2022-11-v1")]
    assert d.conv.state == "territory" and "t:OISE" in d.choices
    d.press("t:OISE")
    assert "Territoire : Oise" in d.text or d.conv.state == "theme"
    d.press("th:2")
    assert d.conv.state == "need"
    d.send(NEED_FR)
    d.send(SOLUTION_FR)
    assert d.conv.state == "levers"
    d.send(LEVERS_FR)
    d.press("p:usager")
    assert d.conv.state == "review"
    assert NEED_FR in d.text and SOLUTION_FR in d.text and LEVERS_FR in d.text
    d.press("send")
    (effect,) = d.effects
    assert isinstance(effect, SubmitContribution)
    assert (effect.territory, effect.theme, effect.profile, effect.language) == (
        "OISE",
        "2",
        "usager",
        "fr",
    )
    assert (effect.need, effect.solution, effect.levers) == (NEED_FR, SOLUTION_FR, LEVERS_FR)
    assert effect.consent_version == "2022-11-v1" and effect.draft_id == 0
    assert d.conv.state == "done" and d.conv.draft_id == 1
    assert "need" not in d.conv.answers, "the sent draft is forgotten"
    thanks = flow.render_submitted(d.conv, ["HDF-OISE-000001"], d.ctx)
    assert "HDF-OISE-000001" in thanks[0].text and thanks[-1].choices


def test_full_contribution_in_english() -> None:
    d = Driver(conv=flow.new_conversation("en-GB"))
    d.send("hi")
    assert "Do you accept" in d.text
    d.press("consent:yes")
    d.send("60200")  # Compiègne
    assert d.conv.answers["territory"] == "OISE" and d.conv.state == "theme"
    d.press("th:4")
    d.send(NEED_EN)
    d.send(SOLUTION_EN)
    d.press("skip")
    d.press("p:-")
    assert "Here is your contribution" in d.text
    d.press("send")
    (effect,) = d.effects
    assert isinstance(effect, SubmitContribution) and effect.language == "en"
    assert effect.levers is None and effect.profile is None


def test_welcome_once_then_only_the_question() -> None:
    d = Driver()
    d.send("bonjour")
    assert "Bonjour !" in d.text and "Acceptez-vous" in d.text
    d.send("je ne sais pas")
    assert "Bonjour !" not in d.text and "Acceptez-vous" in d.text
    assert "merci d'accepter ou de refuser" in d.text and d.choices[0] == "consent:yes"


def test_a_second_contribution_keeps_the_territory() -> None:
    d = to_review(Driver())
    d.press("send")
    d.press("new")
    assert d.conv.state == "theme" and d.conv.answers == {"territory": "OISE"}
    assert "Oise" in d.text


def test_theme_of_ones_own_goes_through_custom_theme() -> None:
    d = Driver()
    consented(d, "HAINAUT", "5")
    assert d.conv.state == "custom_theme"
    d.send("ab")
    assert "trop court" in d.text and d.conv.state == "custom_theme"
    d.send("x" * 121)
    assert "trop long" in d.text
    d.send("  Santé des aidants  ")
    assert d.conv.answers["custom_theme"] == "Santé des aidants" and d.conv.state == "need"
    d.send("/back")
    assert d.conv.state == "custom_theme"


def test_predefined_extra_theme_is_under_theme_five() -> None:
    c = context().campaign
    extra = c.extra_themes[0]
    assert extra.number == 5 and len(c.extra_themes) == 8
    d = Driver()
    consented(d, "OISE", extra.code)
    assert d.conv.state == "need" and d.conv.answers["theme"] == extra.code


# --- table-driven transitions --------------------------------------------------------------

BASE = {"territory": "OISE", "theme": "1", "need": NEED_FR, "solution": SOLUTION_FR}

# (state, answers, resume, event, expected state)
TABLE = [
    ("new", {}, None, TextEvent("bonjour"), "consent"),
    ("new", {}, None, ChoiceEvent("consent:yes"), "territory"),
    ("consent", {}, None, ChoiceEvent("consent:yes"), "territory"),
    ("consent", {"territory": "OISE"}, None, ChoiceEvent("consent:yes"), "theme"),
    ("consent", {}, None, ChoiceEvent("consent:no"), "new"),
    ("consent", {}, None, ChoiceEvent("consent:read"), "consent"),
    ("territory", {}, None, ChoiceEvent("t:OISE"), "theme"),
    ("territory", {}, None, TextEvent("80100"), "theme"),
    ("territory", BASE, "review", ChoiceEvent("t:HAINAUT"), "review"),
    ("theme", {"territory": "OISE"}, None, ChoiceEvent("th:1"), "need"),
    ("theme", {"territory": "OISE"}, None, ChoiceEvent("th:5"), "custom_theme"),
    ("theme", {"territory": "OISE"}, None, TextEvent("Médecin traitant"), "need"),
    ("theme", BASE, "review", ChoiceEvent("th:3"), "review"),
    ("theme", BASE, "review", ChoiceEvent("th:5"), "custom_theme"),
    ("custom_theme", {**BASE, "theme": "5"}, None, TextEvent("Santé des aidants"), "need"),
    ("custom_theme", {**BASE, "theme": "5"}, "review", TextEvent("Aidants"), "review"),
    ("need", {"territory": "OISE", "theme": "1"}, None, TextEvent(NEED_FR), "solution"),
    ("need", BASE, "review", TextEvent(NEED_FR), "review"),
    ("solution", BASE, None, TextEvent(SOLUTION_FR), "levers"),
    ("solution", BASE, "review", TextEvent(SOLUTION_FR), "review"),
    ("levers", BASE, None, ChoiceEvent("skip"), "profile"),
    ("levers", BASE, None, TextEvent(LEVERS_FR), "profile"),
    ("levers", BASE, "review", ChoiceEvent("skip"), "review"),
    ("profile", BASE, None, ChoiceEvent("p:elu"), "review"),
    ("profile", BASE, None, ChoiceEvent("p:-"), "review"),
    ("profile", BASE, "review", ChoiceEvent("p:-"), "review"),
    *(("review", BASE, None, ChoiceEvent(f"edit:{n}"), n) for n in flow.EDITABLE),
    ("review", BASE, None, ChoiceEvent("send"), "done"),
    ("review", BASE, None, ChoiceEvent("discard"), "confirm_cancel"),
    ("done", {"territory": "OISE"}, None, ChoiceEvent("new"), "theme"),
    ("done", {}, None, ChoiceEvent("new"), "territory"),
    ("theme", BASE, None, CommandEvent("back"), "territory"),
    ("custom_theme", {**BASE, "theme": "5"}, None, CommandEvent("back"), "theme"),
    ("need", {**BASE, "theme": "5"}, None, CommandEvent("back"), "custom_theme"),
    ("need", BASE, None, CommandEvent("back"), "theme"),
    ("solution", BASE, None, CommandEvent("back"), "need"),
    ("levers", BASE, None, CommandEvent("back"), "solution"),
    ("profile", BASE, None, CommandEvent("back"), "levers"),
    ("review", BASE, None, CommandEvent("back"), "profile"),
    ("need", BASE, "review", CommandEvent("back"), "review"),
    ("territory", {}, None, CommandEvent("back"), "territory"),
    *((s, BASE, None, CommandEvent("cancel"), "confirm_cancel") for s in flow.DRAFT_STATES),
    ("territory", {}, None, CommandEvent("cancel"), "territory"),
    ("done", {}, None, CommandEvent("cancel"), "done"),
    *(
        (s, BASE, None, CommandEvent("delete"), "confirm_delete")
        for s in flow.STATES
        if s != "confirm_delete"
    ),
    ("need", BASE, None, CommandEvent("help"), "need"),
    ("need", BASE, None, CommandEvent("privacy"), "need"),
    ("need", BASE, None, CommandEvent("language"), "need"),
    ("need", BASE, None, CommandEvent("mine"), "need"),
    ("need", BASE, None, CommandEvent("nosuchcommand"), "need"),
    ("need", BASE, None, TextEvent("/aide"), "need"),
    ("levers", BASE, None, CommandEvent("skip"), "profile"),
    ("profile", BASE, None, TextEvent("/passer"), "review"),
    ("confirm_cancel", {**BASE, "_return": "need"}, None, ChoiceEvent("cancel:yes"), "done"),
    ("confirm_cancel", {**BASE, "_return": "need"}, None, ChoiceEvent("cancel:no"), "need"),
    ("confirm_delete", {**BASE, "_return": "theme"}, None, ChoiceEvent("delete:no"), "theme"),
    ("confirm_delete", {**BASE, "_return": "done"}, None, ChoiceEvent("delete:yes"), "new"),
    ("confirm_delete", {**BASE, "_return": "review"}, None, TextEvent("Oui, tout effacer"), "new"),
    *(
        (s, BASE, None, CommandEvent("withdraw", "HDF-OISE-000042"), "confirm_withdraw")
        for s in flow.STATES
        if s != "confirm_withdraw"
    ),
    ("done", BASE, None, ChoiceEvent("w:HDF-OISE-000042"), "confirm_withdraw"),
    ("need", BASE, None, CommandEvent("withdraw", "pas une référence"), "need"),
    ("confirm_withdraw", {**BASE, "_return": "need"}, None, ChoiceEvent("withdraw:no"), "need"),
    ("confirm_withdraw", {**BASE, "_return": "done"}, None, ChoiceEvent("withdraw:yes"), "done"),
]


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize(("state", "answers", "resume", "event", "expected"), TABLE)
def test_transition(
    lang: str, state: str, answers: dict[str, str], resume: str | None, event: object, expected: str
) -> None:
    conv = Conversation(
        state=state, lang=lang, answers=dict(answers), resume=resume, consent_version="2022-11-v1"
    )
    outcome = flow.handle(conv, event, context())  # type: ignore[arg-type]
    assert outcome.conversation.state == expected
    assert outcome.replies or outcome.effects, "every event gets an answer"
    for reply in outcome.replies:
        assert reply.text.strip()
        assert len(reply.text) <= 4096
        for choice in reply.choices:
            assert len(f"v999999:{choice.id}".encode()) <= 64, "fits Telegram callback data"
    changed = outcome.conversation.to_dict() | {"version": conv.version} != conv.to_dict()
    assert outcome.conversation.version == conv.version + (1 if changed else 0)
    assert conv.state == state, "the given conversation is never modified"


def test_table_covers_every_transition() -> None:
    covered = {(s, e) for s, _, _, _, e in TABLE}
    for tr in flow.TRANSITIONS:
        if tr["trigger"].startswith("resume_"):
            continue
        sources = tr["source"] if isinstance(tr["source"], list) else [tr["source"]]
        assert any((s, tr["dest"]) in covered for s in sources), tr


def test_detours_come_back_where_they_left() -> None:
    d = Driver()
    consented(d, "OISE", "1")
    d.send(NEED_FR)
    d.send("/cancel")
    assert d.conv.state == "confirm_cancel"
    d.press("cancel:no")
    assert d.conv.state == "solution" and d.conv.answers["need"] == NEED_FR
    d.send("/delete")
    d.press("delete:no")
    assert d.conv.state == "solution" and "Rien n'a été effacé" in d.text
    d.send("/cancel")
    d.press("cancel:yes")
    assert d.conv.state == "done" and d.conv.answers == {"territory": "OISE"}
    assert "Brouillon abandonné" in d.text


def test_delete_from_a_cancel_confirmation_then_keep() -> None:
    d = to_review(Driver())
    d.press("discard")
    d.send("/delete")
    d.press("delete:no")
    assert d.conv.state == "review"


def test_delete_my_data_is_confirmed_then_forgets_everything() -> None:
    d = to_review(Driver())
    d.send("/supprimer")
    assert d.conv.state == "confirm_delete" and not d.effects
    d.press("delete:yes")
    assert d.effects == [DeleteMyData()]
    assert d.conv.state == "new" and d.conv.answers == {} and d.conv.consent_version is None


def test_declining_consent_asks_storage_to_keep_nothing() -> None:
    d = Driver()
    d.send("bonjour")
    d.press("consent:no")
    assert d.effects == [DeleteMyData()] and d.conv.state == "new"
    assert "rien n'a été enregistré" in d.text


def test_edit_from_review_returns_to_review() -> None:
    d = to_review(Driver())
    d.press("edit:need")
    assert d.conv.state == "need" and d.conv.resume == "review"
    d.send("Les urgences de l'hôpital sont saturées tous les week-ends de l'hiver.")
    assert d.conv.state == "review" and d.conv.resume is None
    assert "urgences" in d.text


def test_stale_button_shows_the_current_step() -> None:
    d = Driver()
    consented(d)
    old_version = d.conv.version
    d.press("t:OISE")
    d.send(ChoiceEvent("t:HAINAUT", old_version))
    assert d.conv.answers["territory"] == "OISE"
    assert t("fr", "channel.stale_choice") in d.text and "th:1" in d.choices


def test_choice_from_another_step_is_refused() -> None:
    d = Driver()
    consented(d)
    d.send(ChoiceEvent("th:1"))  # a theme while the territory is asked
    assert d.conv.state == "territory" and "territory" not in d.conv.answers


def test_language_command_and_switch() -> None:
    d = Driver()
    d.send("/language")
    assert d.choices == ["lang:fr", "lang:en", "lang:falc"]
    d.press("lang:en")
    assert d.conv.lang == "en" and d.effects == [SetLanguage("en")]
    assert "continue in English" in d.text


def test_langdetect_offers_to_switch_once_when_confident() -> None:
    d = Driver()
    consented(d, "OISE", "1")
    d.send(NEED_EN)
    assert d.conv.answers["need_lang"] == "en"
    assert "lang:en" in d.choices and "Vous semblez écrire en anglais" in d.text
    d.send(SOLUTION_EN)
    assert "lang:en" not in d.choices, "offered once only"


def test_a_need_typed_in_capitals_is_french_and_offers_no_switch() -> None:
    d = Driver()
    consented(d, "OISE", "1")
    d.send("IL N'Y A PLUS DE MEDECIN TRAITANT DANS NOTRE VILLAGE DEPUIS DEUX ANS, C'EST GRAVE.")
    assert d.conv.answers["need_lang"] == "fr"
    assert d.conv.state == "solution" and "lang:" not in " ".join(d.choices)


def test_short_text_keeps_the_interface_language() -> None:
    d = Driver()
    consented(d, "OISE", "1")
    d.send("non merci, pas de médecin")  # langdetect alone may say Italian
    assert d.conv.answers["need_lang"] == "fr"
    assert "lang:" not in " ".join(d.choices)


def test_deep_link_preselects_the_territory() -> None:
    d = Driver()
    d.send(CommandEvent("start", "oise"))
    assert d.conv.answers["territory"] == "OISE" and d.conv.state == "consent"
    d.press("consent:yes")
    assert d.conv.state == "theme" and "Oise" in d.text
    d2 = Driver()
    d2.send(CommandEvent("start", "littoral_nord"))
    assert d2.conv.answers["territory"] == "LITTORAL-NORD"
    d3 = Driver()
    d3.send(CommandEvent("start", "<script>"))
    assert "territory" not in d3.conv.answers and d3.conv.state == "consent"


def test_start_mid_draft_keeps_the_draft() -> None:
    d = to_review(Driver())
    d.send("/start")
    assert d.conv.state == "review" and d.conv.answers["need"] == NEED_FR


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2022, 11, 13, 12, tzinfo=UTC), "ouvrira le 14 novembre 2022"),
        # 31 Dec 23:30 UTC is already 1 January in Paris
        (datetime(2022, 12, 31, 23, 30, tzinfo=UTC), "close depuis le 31 décembre 2022"),
    ],
)
def test_closed_campaign_says_when(now: datetime, expected: str) -> None:
    d = Driver(ctx=context(now))
    d.send("bonjour")
    assert expected in d.text and d.conv.state == "new"
    d.send(ChoiceEvent("consent:yes"))
    assert d.conv.state == "new" and not d.effects
    d.send("/mine")
    assert d.effects == [ListContributions()], "citizens can still see their contributions"


def test_idle_draft_expires() -> None:
    d = to_review(Driver())
    d.send("Envoyer", idle=timedelta(days=8))
    assert d.conv.state == "territory" and "need" not in d.conv.answers
    assert "brouillon précédent" in d.text and not d.effects


def test_idle_but_recent_draft_continues() -> None:
    d = to_review(Driver())
    d.send(ChoiceEvent("send", d.conv.version), idle=timedelta(days=6))
    assert d.conv.state == "done"


def test_my_contributions_are_rendered() -> None:
    d = to_review(Driver())
    items = [
        ContributionSummary(
            "HDF-OISE-000002",
            datetime(2022, 11, 21, tzinfo=UTC),
            "Oise",
            "Prévention",
            "approved",
            "x" * 300,
        )
    ]
    replies = flow.render_contributions(d.conv, items, d.ctx)
    assert "HDF-OISE-000002" in replies[0].text and "validée" in replies[0].text
    assert "…" in replies[0].text and replies[-1].choices  # then the current step
    assert "aucune" in flow.render_contributions(d.conv, [], d.ctx)[0].text


def test_territory_by_department_narrows_choices() -> None:
    d = Driver()
    consented(d)
    d.send("Nord")
    assert d.conv.state == "territory"
    assert set(d.choices) < {f"t:{tr.code}" for tr in d.ctx.campaign.territories}
    assert len(d.choices) >= 2
    d.press(d.choices[0])
    assert d.conv.state == "theme"


@pytest.mark.parametrize(
    ("typed", "message"),
    [("75001", "pas dans le périmètre"), ("99999", "ne reconnais pas"), ("blabla", "ne reconnais")],
)
def test_territory_unknown_or_outside(typed: str, message: str) -> None:
    d = Driver()
    consented(d)
    d.send(typed)
    assert d.conv.state == "territory" and message in d.text


def test_many_territories_are_typed_not_buttons() -> None:
    d = Driver(ctx=context(name="france-departements.toml"))
    consented(d)
    assert d.choices == [] and "code postal" in d.text
    d.send("2A004")
    assert d.conv.state == "theme"


def test_mermaid_is_generated_from_the_machine() -> None:
    diagram = flow.mermaid()
    assert diagram.lstrip("-\n ").startswith("cnr-sante-bot") or "stateDiagram-v2" in diagram
    for state in flow.STATES:
        assert f'state "{state}"' in diagram
    assert "review --> done: send" in diagram
