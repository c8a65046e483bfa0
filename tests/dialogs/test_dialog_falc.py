"""« Français facile » (FALC): its catalogue follows the easy-to-read rules, and the dialog
offers it, speaks it and keeps it (pure: no database, no channel; the channels are in
tests/integration/test_channels_falc.py)."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

import pytest

from bench.readability import MAX_WORDS, PLACEHOLDER, sentences, words
from dialogs import flow
from dialogs.commands import COMMAND_ALIASES, COMMANDS
from dialogs.messages import CATALOGUES, html_lang, normalise_lang, t, written_in
from dialogs.model import ChoiceEvent, SetLanguage, SubmitContribution
from tests.dialog_helpers import (
    NEED_EN,
    NEED_FR,
    SOLUTION_FR,
    Driver,
    consented,
    context,
    to_review,
)

FALC = CATALOGUES["falc"]

#: Words a FALC message must not contain, with why (matched as whole words, any case):
#:
#: * abbreviations a reader must already know: a full stop inside ("ex.", "cf.", "etc.",
#:   "c.-à-d.", "n°"), and any acronym (two capitals or more: ARS, CPTS, CNR, IP, NIR) —
#:   every one this service needs has a plain name ("l'Agence régionale de santé");
#: * the connectors of written administrative French, which chain two ideas in one sentence
#:   or send the reader elsewhere ("notamment", "afin de", "via", "ainsi que", "néanmoins",
#:   "toutefois", "cependant", "dès lors", "en vue de", "lors de", "auprès de");
#: * this service's own jargon, with the everyday words the catalogue uses instead:
#:   pseudonyme -> "un code", chiffré -> "caché par un code secret", modération -> "une
#:   personne lit", concertation -> "donner votre avis", synthèse -> "le résumé", périmètre,
#:   irréversible -> "personne ne pourra les retrouver", facultatif -> "vous pouvez passer",
#:   levier -> "qui pourrait aider", brouillon -> "l'avis en cours", notice -> "les
#:   explications", identifiant, contribution -> "avis", données -> "informations";
#: * one word at a time: the same thing always has the same name (FALC rule), so a reader
#:   who learnt "avis" never meets "contribution".
WORDS_TO_AVOID = (
    r"ex\.",
    r"cf\.",
    r"etc\.",
    r"c\.-à-d\.",
    r"n°",
    r"notamment",
    r"afin (?:de|que|qu')",
    r"via",
    r"ainsi que",
    r"néanmoins",
    r"toutefois",
    r"cependant",
    r"dès lors",
    r"en vue de",
    r"lors de",
    r"auprès de",
    r"pseudonym\w*",
    r"chiffré\w*",
    r"chiffrement",
    r"modérat\w*",
    r"concertation",
    r"synthèse",
    r"périmètre",
    r"irréversible",
    r"facultati\w*",
    r"leviers?",
    r"brouillons?",
    r"notice",
    r"identifiants?",
    r"contributions?",
    r"données",
)
#: An acronym: two capitals or more in a row (a placeholder's name is not text).
ACRONYM = re.compile(r"\b[A-ZÀ-Ý]{2,}\b")
#: Words allowed only with their explanation in the same message.
EXPLAINED = {r"cookies?": "petit fichier"}


def _text(msg_id: str) -> str:
    """A message as a reader sees it, the placeholders aside."""
    return PLACEHOLDER.sub(" ", FALC[msg_id])


def test_falc_has_every_message_of_french() -> None:
    assert set(FALC) == set(CATALOGUES["fr"]), set(FALC) ^ set(CATALOGUES["fr"])


@pytest.mark.parametrize("msg_id", sorted(FALC))
def test_every_falc_sentence_has_at_most_15_words(msg_id: str) -> None:
    long = [s for s in sentences(FALC[msg_id]) if len(words(s)) > MAX_WORDS]
    assert long == [], f"{msg_id}: {[(len(words(s)), s) for s in long]}"


@pytest.mark.parametrize("msg_id", sorted(FALC))
def test_no_falc_message_uses_a_word_to_avoid(msg_id: str) -> None:
    text = _text(msg_id)
    found = [
        m.group(0)
        for pattern in WORDS_TO_AVOID
        for m in re.finditer(rf"(?<![\w/]){pattern}(?!\w)", text, re.IGNORECASE)
    ]
    found += ACRONYM.findall(text)
    for pattern, explanation in EXPLAINED.items():
        if re.search(rf"\b{pattern}\b", text, re.IGNORECASE) and explanation not in text:
            found.append(f"{pattern} (without « {explanation} »)")
    assert found == [], f"{msg_id}: {found}"


def test_the_checks_catch_what_they_are_for() -> None:
    """The rules above are not vacuous: French text breaks them, FALC does not."""
    fr = CATALOGUES["fr"]
    assert any(len(words(s)) > MAX_WORDS for m in fr.values() for s in sentences(m))
    assert ACRONYM.search(fr["submitted"]), "« l'ARS » in French"
    assert re.search(r"pseudonym\w*", fr["privacy.notice"])
    assert sentences("Bonjour !\n• un point\nUne phrase. Une autre (ex. 59000) ici.") == [
        "Bonjour !",
        "• un point",
        "Une phrase.",
        "Une autre (ex. 59000) ici.",
    ]
    assert len(words("Écrivez /aide, l'Agence « {x} » – ici.")) == 5


@pytest.mark.parametrize("msg_id", sorted(FALC))
def test_falc_names_only_commands_that_exist(msg_id: str) -> None:
    """FALC tells French commands (/aide, /effacer...): each one must work."""
    known = set(COMMANDS) | set(COMMAND_ALIASES)
    named = re.findall(r"(?<![\w{])/(\w+)", FALC[msg_id])
    assert [c for c in named if c not in known] == []


def test_the_privacy_notice_says_the_same_facts_in_easy_words() -> None:
    template = FALC["privacy.notice"]
    params: dict[str, object] = {
        name: f"<{name}>" for _, name, _, _ in string.Formatter().parse(template) if name
    }
    params.update(version="2022-11-v1", ttl_days=7)
    # who is responsible: in the notice, or in its default when the notice names it
    notice = t("falc", "privacy.notice", **params) + FALC.get("privacy.controller_default", "")
    for fact in (
        "Agence régionale de santé",  # who is responsible
        "territoire",  # what is kept
        "textes",
        "langue et la date",
        "code",  # identities replaced by a code
        "numéro de notre conversation",  # Telegram's chat id, kept apart
        "adresse de votre connexion à internet",  # no IP address
        "navigateur",  # nor the browser
        "cache les informations personnelles",  # masked before publication
        "/mes_contributions",  # rights
        "/effacer",
        "7 jours",  # idle drafts
        "N'écrivez pas votre nom",  # advice
        "2022-11-v1",
    ):
        assert fact in notice, fact


# --- the dialog in FALC -------------------------------------------------------------------------


def test_the_greeting_offers_easy_french_and_switching_keeps_the_step() -> None:
    d = Driver()
    d.send("bonjour")
    assert "lang:falc" in d.choices
    assert t("fr", "lang.name.falc") == "Français facile"
    d.press("lang:falc")
    assert d.conv.lang == "falc" and d.effects == [SetLanguage("falc")]
    assert d.conv.state == "consent"
    assert t("falc", "lang.set") in d.text and t("falc", "consent.prompt") in d.text
    assert {"consent:yes", "consent:no", "consent:read", "lang:fr"} <= set(d.choices)
    d.press("consent:yes")
    assert d.conv.state == "territory" and t("falc", "territory.prompt") in d.text


def test_easy_french_chosen_before_the_greeting_greets_so_that_it_is_kept() -> None:
    """A web page shows the greeting before anything is stored (state ``new``): the choice
    of a language greets, as /start does, so that storage keeps the conversation."""
    d = Driver()
    assert d.conv.state == "new"
    d.send(ChoiceEvent("lang:falc"))
    assert d.conv.lang == "falc" and d.conv.state == "consent"
    assert t("falc", "welcome", campaign=d.ctx.campaign.name, region="Hauts-de-France") in d.text


def test_easy_french_typed_at_the_greeting_is_picked() -> None:
    d = Driver()
    d.send("bonjour")
    d.send("français facile")
    assert d.conv.lang == "falc"


@pytest.mark.parametrize("command", ["/langue", "/language"])
def test_langue_offers_three_languages_at_any_step(command: str) -> None:
    d = consented(Driver(), "OISE", "1")
    assert d.conv.state == "need"
    d.send(command)
    assert d.choices == ["lang:fr", "lang:en", "lang:falc"]
    labels = [c.label for r in d.replies for c in r.choices]
    assert labels == ["Français", "English", "Français facile"]
    d.press("lang:falc")
    assert d.conv.lang == "falc" and d.conv.state == "need"
    assert t("falc", "need.prompt") in d.text
    d.send("/langue")
    d.press("lang:fr")
    assert d.conv.lang == "fr" and t("fr", "need.prompt") in d.text


def test_a_whole_contribution_in_easy_french_is_stored_as_french_text() -> None:
    d = Driver(conv=flow.new_conversation("falc"))
    assert d.conv.lang == "falc"
    d = to_review(d)
    assert t("falc", "review.send") in [c.label for r in d.replies for c in r.choices]
    assert "Ce qui manque : " + NEED_FR in d.text
    d.press("send")
    (submitted,) = [e for e in d.effects if isinstance(e, SubmitContribution)]
    assert submitted.language == "fr", "the texts are French: FALC is an interface"
    assert t("falc", "submitted", reference="HDF-TEST-000001") in d.text


def test_french_typed_by_a_falc_citizen_offers_no_switch() -> None:
    """langdetect says "fr" for a French answer: FALC is French, nothing to offer."""
    d = consented(Driver(conv=flow.new_conversation("falc")), "OISE", "1")
    d.send(NEED_FR)
    assert d.conv.answers["need_lang"] == "fr"
    assert not any(c.startswith("lang:") for c in d.choices)
    assert d.conv.lang == "falc" and not d.conv.lang_offered
    d.send("non merci")  # too short to tell: the interface's written language
    assert d.conv.answers.get("solution_lang") in (None, "fr")
    d.send(SOLUTION_FR)
    assert d.conv.answers["solution_lang"] == "fr"
    assert not any(c.startswith("lang:") for c in d.choices)


def test_english_typed_by_a_falc_citizen_is_offered_in_easy_words() -> None:
    d = consented(Driver(conv=flow.new_conversation("falc")), "OISE", "1")
    d.send(NEED_EN)
    assert "lang:en" in d.choices
    assert t("falc", "lang.offer_switch", language=t("falc", "lang.in.en")) in d.text
    assert t("falc", "lang.keep") in [c.label for r in d.replies for c in r.choices]


def test_dates_in_easy_french_are_french_dates() -> None:
    closed = context(now=datetime(2023, 2, 1, 12, tzinfo=UTC))
    d = Driver(ctx=closed, conv=flow.new_conversation("falc"))
    d.send("bonjour")
    assert "31 décembre 2022" in d.text
    assert t("falc", "closed.ended", campaign=closed.campaign.name, closed="31 décembre 2022") in (
        d.text
    )


def test_falc_is_an_interface_language_written_in_french() -> None:
    assert normalise_lang("falc") == "falc" and normalise_lang(" FALC ") == "falc"
    assert normalise_lang("fr-x-falc") == "falc", "the tag of its pages, sent back"
    assert normalise_lang("fr-FR") == "fr" and normalise_lang("en-GB") == "en"
    assert normalise_lang("fa-IR") == "fr", "Persian is not FALC"
    assert written_in("falc") == "fr" and written_in("en") == "en"
    assert html_lang("falc") == "fr-x-falc" and html_lang("fr") == "fr"
    assert len("falc") <= 8, "participants.lang is a String(8)"
