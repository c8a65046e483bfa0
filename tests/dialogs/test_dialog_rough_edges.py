"""Issue 11, points 2-5, in the pure dialog: personal data told at the moment it is typed,
commands that do what they say, an answer fitting the step for every odd message, one
question open at a time, and short lever answers. (The same on the terminal and Telegram:
tests/terminal/test_terminal.py, tests/telegram/test_telegram.py.)"""

from __future__ import annotations

import pytest

from dialogs import flow
from dialogs.messages import t
from dialogs.model import AttachmentEvent, ChoiceEvent, CommandEvent, Conversation
from tests.dialog_helpers import NEED_EN, NEED_FR, SOLUTION_FR, Driver, consented, to_review

PII_NEED = "Il n'y a plus de médecin au village, appelez-moi au 06 12 34 56 78 pour en parler."


def at(step: str) -> Driver:
    """A conversation at ``step`` of a French draft (Oise, theme 1)."""
    if step == "theme":
        return consented(Driver(), "OISE")
    d = consented(Driver(), "OISE", "1")
    if step in ("solution", "levers", "profile"):
        d.send(NEED_FR)
    if step in ("levers", "profile"):
        d.send(SOLUTION_FR)
    if step == "profile":
        d.press("skip")
    assert d.conv.state == step
    return d


# --- point 2: personal data, at the moment it is typed ---------------------------------------


@pytest.mark.parametrize(
    ("step", "text", "kind"),
    [
        ("need", PII_NEED, "phone"),
        ("solution", "Écrivez à jean.dupont@example.fr pour créer une maison de santé", "email"),
        ("levers", "Le Dr Martin est prêt à s'installer", "name"),
        ("levers", "la mairie, 12 rue de la Paix", "address"),
    ],
)
def test_personal_data_is_told_kindly_and_rewrite_or_keep_is_offered(
    step: str, text: str, kind: str
) -> None:
    d = at(step)
    d.send(text)
    assert d.conv.state == step and step not in d.conv.answers, "nothing stored yet"
    assert len(d.replies) == 1, "one short message, one question"
    what = t("fr", f"pii.kind.{kind}")
    assert d.replies[0].text == t("fr", "pii.found", what=what)
    assert d.choices == ["aside:rewrite", "aside:keep"]
    d.press("aside:keep")
    assert d.conv.answers[step] == text and d.conv.state != step
    assert d.conv.aside is None and d.conv.held is None


def test_rewrite_asks_the_step_again_and_the_new_text_is_taken() -> None:
    d = at("need")
    d.send(PII_NEED)
    d.press("aside:rewrite")
    assert d.conv.state == "need" and "need" not in d.conv.answers and d.conv.held is None
    assert d.text == t("fr", "need.prompt")
    # the text comes back for the channels with a text box (the web chat) to edit it there
    assert d.replies[-1].draft == PII_NEED
    assert [r.draft for r in d.replies[:-1]] == [""] * (len(d.replies) - 1)
    d.send(NEED_FR)
    assert d.conv.answers["need"] == NEED_FR and d.conv.state == "solution"
    assert all(r.draft == "" for r in d.replies), "given back once, with the question only"


def test_keep_gives_no_text_back() -> None:
    d = at("solution")
    d.send("Écrivez à jean.dupont@example.fr pour créer une maison de santé")
    assert all(r.draft == "" for r in d.replies)
    d.press("aside:keep")
    assert all(r.draft == "" for r in d.replies)


def test_a_text_typed_instead_of_the_buttons_is_the_answer_rewritten() -> None:
    d = at("need")
    d.send(PII_NEED)
    d.send(NEED_FR)
    assert d.conv.answers["need"] == NEED_FR and d.conv.state == "solution"
    d = at("need")
    d.send(PII_NEED)
    d.send("la garder TELLE QUELLE")  # a button's label typed picks it
    assert d.conv.answers["need"] == PII_NEED


def test_personal_data_while_editing_from_the_review_keeps_the_old_answer_until_kept() -> None:
    d = to_review(Driver())
    d.press("edit:need")
    d.send(PII_NEED)
    assert d.conv.answers["need"] == NEED_FR and d.choices == ["aside:rewrite", "aside:keep"]
    d.send("/back")  # leaves the question: the answer held is forgotten
    assert d.conv.state == "review" and d.conv.answers["need"] == NEED_FR
    assert d.conv.held is None
    d.press("edit:need")
    d.send(PII_NEED)
    d.press("aside:keep")
    assert d.conv.state == "review" and d.conv.answers["need"] == PII_NEED


def test_ordinary_answers_are_not_questioned() -> None:
    d = at("need")
    d.send("Depuis le départ du docteur à la retraite, 30 km pour consulter en 2022.")
    assert d.conv.state == "solution" and d.conv.aside is None


def test_a_stale_or_forged_aside_choice_changes_nothing() -> None:
    d = at("need")
    d.send(ChoiceEvent("aside:keep", d.conv.version))
    assert d.conv.state == "need" and t("fr", "channel.stale_choice") in d.text


# --- point 3: commands that do what they say ------------------------------------------------


def test_start_mid_draft_offers_to_start_again_or_continue() -> None:
    d = at("solution")
    d.send("/start")
    assert d.choices == ["aside:restart", "aside:continue"]
    assert d.text == t("fr", "restart.confirm")
    d.press("aside:continue")
    assert d.conv.state == "solution" and d.conv.answers["need"] == NEED_FR
    assert d.text == t("fr", "solution.prompt")
    d.send("/start")
    d.press("aside:restart")
    assert d.conv.state == "territory" and "need" not in d.conv.answers
    assert t("fr", "restart.done") in d.text


def test_start_without_a_draft_shows_the_step_and_help_says_so() -> None:
    d = consented(Driver(), "OISE")
    d.send("/start")
    assert d.conv.state == "theme" and d.conv.aside is None and "th:1" in d.choices
    help_text = t("fr", "help.text")
    assert "/start" in help_text and "recommencer ou de continuer" in help_text


def test_start_with_a_poster_territory_mid_draft_offers_to_change_it() -> None:
    d = at("solution")
    d.send("/start littoral-nord")
    assert d.choices == ["aside:move", "aside:stay"]
    assert "Littoral Nord" in d.text and "Oise" in d.text
    d.press("aside:stay")
    assert d.conv.answers["territory"] == "OISE" and d.conv.state == "solution"
    d.send("/start littoral-nord")
    d.press("aside:move")
    assert d.conv.answers["territory"] == "LITTORAL-NORD"
    assert d.conv.state == "solution" and d.conv.answers["need"] == NEED_FR
    d.send("/start littoral-nord")  # the draft's own territory now: nothing to ask
    assert d.conv.aside is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("/aide", "help.text"),
        ("/retour", "back"),
        ("/annuler", "cancel.confirm"),
        ("/langue", "lang.prompt"),
        ("/confidentialité", "privacy"),
        ("/supprimer_mes_donnees", "delete.confirm"),
        ("/mes_contributions", "mine.none"),
    ],
)
def test_french_commands(typed: str, expected: str) -> None:
    d = at("solution")
    d.send(typed)
    if expected == "back":
        assert d.conv.state == "need"
    elif expected == "privacy":
        assert "Notice de confidentialité" in d.text
    else:
        assert t("fr", expected) in d.text


def test_every_french_menu_name_is_a_command() -> None:
    for command, name in flow.FRENCH_COMMANDS.items():
        assert command in flow.COMMANDS
        assert flow.COMMAND_ALIASES.get(name, name) == command


# --- point 4: every odd message gets an answer that fits the step ----------------------------


@pytest.mark.parametrize("kind", ["photo", "voice", "sticker", "document", "location", "contact"])
@pytest.mark.parametrize("step", ["theme", "profile", "review", "need", "levers"])
def test_an_attachment_gets_the_steps_hint_and_the_question_again(kind: str, step: str) -> None:
    d = to_review(Driver()) if step == "review" else at(step)
    before = flow.prompt_for(d.conv, d.ctx)
    d.send(AttachmentEvent(kind))
    hint = {
        "theme": "theme.hint",
        "profile": "profile.hint",
        "review": "review.hint",
        "need": "channel.unsupported",
        "levers": "levers.hint",
    }[step]
    first = d.replies[0].text
    assert first.endswith(t("fr", hint))
    if kind in ("location", "contact"):
        assert first.startswith(t("fr", f"attachment.{kind}"))
    else:
        assert first == t("fr", hint)
    assert t("fr", "text.expected_choice") not in first
    assert d.replies[1:] == before, "the question again"
    assert d.conv.state == step


def test_an_attachment_before_anything_greets() -> None:
    d = Driver()
    d.send(AttachmentEvent("photo"))
    assert d.replies[0].text == t("fr", "channel.unsupported")
    assert "consent:yes" in d.choices


@pytest.mark.parametrize(
    "invisible", ["\x00", "\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u3164", "\u034f"]
)
def test_invisible_characters_are_not_counted(invisible: str) -> None:
    d = at("need")
    d.send("Trop " + invisible * 20 + "court")
    assert d.replies[0].text == t("fr", "text.too_short", count=10, min=15)
    d = consented(Driver(), "OISE", "5")
    d.send(invisible * 10 + "ab" + invisible * 10)
    assert d.replies[0].text == t("fr", "custom_theme.too_short", min=3)


def test_the_language_offer_is_answered_before_the_next_question() -> None:
    d = at("need")
    d.send(NEED_EN)
    assert d.conv.state == "solution"
    assert len(d.replies) == 1 and d.choices == ["lang:en", "lang:keep"]
    assert t("fr", "solution.prompt") not in d.text
    d.press("lang:keep")
    assert d.conv.lang == "fr" and d.text == t("fr", "solution.prompt")
    d = at("need")
    d.send(NEED_EN)
    d.press("lang:en")
    assert d.conv.lang == "en" and d.replies[-1].text == t("en", "solution.prompt")
    assert d.conv.aside is None


def test_the_language_offer_after_the_levers_comes_before_the_profile() -> None:
    d = at("levers")
    d.send("We need more nurses and doctors in the countryside, and better public transport.")
    assert d.conv.state == "profile" and d.choices == ["lang:en", "lang:keep"]
    d.press("lang:keep")
    assert "p:-" in d.choices


# --- point 5: short answers where short is right ---------------------------------------------


@pytest.mark.parametrize("levers", ["CPTS, ARS", "Rectorat", "fibre, 4G", "ARS"])
def test_the_optional_levers_accept_a_short_answer(levers: str) -> None:
    d = at("levers")
    d.send(levers)
    assert d.conv.answers["levers"] == levers and d.conv.state == "profile"


@pytest.mark.parametrize("step", ["need", "solution"])
def test_the_need_and_the_solution_keep_their_minimum(step: str) -> None:
    d = at(step)
    d.send("Rectorat")
    assert d.conv.state == step
    assert d.replies[0].text == t("fr", "text.too_short", count=8, min=15)


def test_a_stored_conversation_keeps_its_aside() -> None:
    d = at("need")
    d.send(PII_NEED)
    again = Conversation.from_dict(d.conv.to_dict())
    assert again.aside == "pii" and again.held == PII_NEED
    assert flow.prompt_for(again, d.ctx) == flow.prompt_for(d.conv, d.ctx)


def test_commands_mid_aside_show_it_again() -> None:
    d = at("need")
    d.send(PII_NEED)
    d.send(CommandEvent("help"))
    assert d.choices == ["aside:rewrite", "aside:keep"]
