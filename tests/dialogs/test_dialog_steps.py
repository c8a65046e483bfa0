"""The table of steps, the machine as the only way a state changes, and the conversation's
stored form (schema 2, and schema 1 as stored before the bookkeeping had fields)."""

from __future__ import annotations

import ast
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dialogs import machine, steps
from dialogs.model import (
    SCHEMA_VERSION,
    ChoiceEvent,
    Conversation,
    DeleteMyData,
    SubmitContribution,
    TextEvent,
)
from tests.dialog_helpers import NEED_EN, NEED_FR, SOLUTION_FR, Driver, consented, to_review

DIALOGS = Path(__file__).resolve().parents[2] / "dialogs"


def test_one_step_per_state_and_each_asks_something() -> None:
    assert set(steps.STEPS) == set(machine.STATES)
    d = Driver()
    for state in machine.STATES:
        conv = Conversation(state=state, answers={"territory": "OISE", "theme": "1"})
        replies = steps.prompt_for(conv, d.ctx)
        assert replies and all(r.text.strip() for r in replies), state


def test_free_text_states_are_the_steps_without_choices_to_press() -> None:
    """The steps other packages treat as "typed words" (the web form's text box, the purge of
    idle drafts) are those whose text handler stores words."""
    stores_words = (steps._free_text, steps._custom_theme_text)
    words = {s for s, step in steps.STEPS.items() if step.on_text in stores_words}
    assert words == set(machine.FREE_TEXT_STATES)


def _assignments_to(attr: str) -> list[str]:
    found = []
    for path in DIALOGS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == attr:
                    found.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "__dict__":
                found.append(f"{path.name}:{node.lineno} __dict__")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
                name = node.args[1] if len(node.args) > 1 else None
                if isinstance(name, ast.Constant) and name.value == attr:
                    found.append(f"{path.name}:{node.lineno} setattr")
    return found


def test_no_state_is_set_outside_the_machine() -> None:
    assert _assignments_to("state") == []


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The triggers the steps fire (through the machine, as always)."""
    triggers: list[str] = []

    def spy(conv: Conversation, trigger: str) -> bool:
        triggers.append(trigger)
        return machine.fire(conv, trigger)

    monkeypatch.setattr(steps, "fire", spy)
    return triggers


def test_delete_my_data_fires_erase(fired: list[str]) -> None:
    d = to_review(Driver())
    d.send("/delete")
    fired.clear()
    d.press("delete:yes")
    assert fired == ["erase"] and d.effects == [DeleteMyData()]
    fresh = Conversation(lang="fr", version=d.conv.version)
    assert d.conv.to_dict() == fresh.to_dict()


def test_an_idle_draft_expires_through_the_machine(fired: list[str]) -> None:
    d = to_review(Driver())
    d.press("discard")  # a cancel confirmation: the draft is still there
    fired.clear()
    d.send("Non, je garde", idle=timedelta(days=8))
    assert fired == ["expire"]
    assert d.conv.state == "territory" and d.conv.answers == {"territory": "OISE"}
    assert d.conv.return_to is None and d.conv.return_resume is None
    assert "brouillon précédent" in d.text


def test_an_idle_conversation_without_draft_does_not_expire(fired: list[str]) -> None:
    d = Driver()
    consented(d, "OISE")
    fired.clear()
    d.send(ChoiceEvent("th:2", d.conv.version), idle=timedelta(days=30))  # nothing typed yet
    assert fired == ["expire", "set_theme"], "tried, refused by the machine (no draft)"
    assert d.conv.state == "need" and "brouillon précédent" not in d.text


def test_a_trigger_that_does_not_apply_warns_nobody(caplog: pytest.LogCaptureFixture) -> None:
    """``transitions`` warns about a trigger with no transition from the state (it would
    reach a terminal chat): the machine refuses such a trigger before."""
    d = to_review(Driver())
    d.press("send")
    greeted = Driver()
    greeted.send("bonjour")
    with caplog.at_level(logging.WARNING):
        d.send(ChoiceEvent("new", d.conv.version), idle=timedelta(days=30))  # expire at done
        greeted.send("/start")  # the greeting again, at the consent step
    assert d.conv.state == "theme" and greeted.conv.state == "consent"
    assert [r.getMessage() for r in caplog.records if r.name.startswith("transitions")] == []


# --- the stored form ------------------------------------------------------------------------

#: A conversation as storage holds it before schema 2 (written by the code of schema 1): at the
#: cancel confirmation asked while the need was being edited from the review, switching
#: languages already offered once, a place's candidate territories left over.
V1_AT_CONFIRM_CANCEL: dict[str, Any] = {
    "schema": 1,
    "state": "confirm_cancel",
    "lang": "fr",
    "answers": {
        "territory": "OISE",
        "theme": "1",
        "need": NEED_FR,
        "need_lang": "fr",
        "solution": SOLUTION_FR,
        "solution_lang": "fr",
        "levers": None,
        "profile": None,
        "_return": "need",
        "_return_resume": "review",
        "_lang_offered": True,
    },
    "version": 17,
    "resume": None,
    "consent_version": "2022-11-v1",
    "draft_id": 2,
}

V1_AT_TERRITORY: dict[str, Any] = {
    "schema": 1,
    "state": "territory",
    "lang": "fr",
    "answers": {"_candidates": ["HAINAUT", "METROPOLE-FLANDRES"]},
    "version": 4,
    "resume": None,
    "consent_version": "2022-11-v1",
    "draft_id": 0,
}


def test_schema_1_bookkeeping_becomes_fields() -> None:
    conv = Conversation.from_dict(json.loads(json.dumps(V1_AT_CONFIRM_CANCEL)))
    assert (conv.return_to, conv.return_resume, conv.lang_offered) == ("need", "review", True)
    assert conv.territory_candidates == ()
    assert not any(key.startswith("_") for key in conv.answers)
    assert conv.answers["need"] == NEED_FR and conv.draft_id == 2 and conv.version == 17
    stored = conv.to_dict()
    assert stored["schema"] == SCHEMA_VERSION == 2
    assert not any(key.startswith("_") for key in stored["answers"])
    territory = Conversation.from_dict(V1_AT_TERRITORY)
    assert territory.territory_candidates == ("HAINAUT", "METROPOLE-FLANDRES")
    assert territory.answers == {}


def test_a_schema_1_conversation_continues_where_it_was() -> None:
    d = Driver(conv=Conversation.from_dict(V1_AT_CONFIRM_CANCEL))
    d.send(ChoiceEvent("cancel:no", 17))
    # back at the need, still editing from the review
    assert d.conv.state == "need" and d.conv.resume == "review"
    assert d.conv.return_to is None
    d.send(NEED_EN)
    assert d.conv.state == "review" and d.conv.answers["need"] == NEED_EN
    assert "lang:en" not in d.choices, "the switch was offered before: not again in this draft"
    d.press("send")
    (effect,) = d.effects
    assert isinstance(effect, SubmitContribution)
    assert (effect.draft_id, effect.need, effect.solution) == (2, NEED_EN, SOLUTION_FR)
    assert d.conv.state == "done" and d.conv.answers == {"territory": "OISE"}


def test_a_schema_1_conversation_keeps_its_candidate_territories() -> None:
    d = Driver(conv=Conversation.from_dict(V1_AT_TERRITORY))
    d.send(TextEvent("Oise"))  # not one of the candidates: the place is resolved anew
    assert d.conv.state == "theme" and d.conv.answers["territory"] == "OISE"
    d = Driver(conv=Conversation.from_dict(V1_AT_TERRITORY))
    d.send(ChoiceEvent("t:OISE"))
    assert d.conv.state == "territory", "only the candidates are offered"
    assert set(d.choices) == {"t:HAINAUT", "t:METROPOLE-FLANDRES"}
    d.press("t:HAINAUT")
    assert d.conv.state == "theme" and d.conv.territory_candidates == ()


def test_schema_2_round_trip() -> None:
    conv = Conversation(
        state="territory",
        lang="en",
        answers={"territory": "OISE", "theme": "5", "custom_theme": "Aidants"},
        version=9,
        resume="review",
        consent_version="2022-11-v1",
        draft_id=3,
        territory_candidates=("HAINAUT", "LITTORAL-NORD"),
        return_to="need",
        return_resume="review",
        lang_offered=True,
    )
    stored = json.loads(json.dumps(conv.to_dict()))  # as a JSON column gives it back
    assert stored["schema"] == 2
    again = Conversation.from_dict(stored)
    assert again.to_dict() == conv.to_dict()
    assert again.territory_candidates == ("HAINAUT", "LITTORAL-NORD")
    assert (again.return_to, again.return_resume, again.lang_offered) == ("need", "review", True)
    blank = Conversation.from_dict(Conversation().to_dict())
    assert blank.to_dict() == Conversation().to_dict()


def test_a_detour_keeps_its_way_back_in_fields() -> None:
    d = to_review(Driver())
    d.press("edit:solution")
    d.send("/cancel")
    assert d.conv.state == "confirm_cancel"
    assert (d.conv.return_to, d.conv.return_resume) == ("solution", "review")
    stored = d.conv.to_dict()
    assert not any(key.startswith("_") for key in stored["answers"])
    d.press("cancel:no")
    assert d.conv.state == "solution" and d.conv.resume == "review"
    assert d.conv.return_to is None and d.conv.return_resume is None
