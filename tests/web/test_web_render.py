"""The web chat's pages say everything through the message catalogues: every text id the
templates use exists in every language, and every ``web.*`` message is used somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from bot.web import render
from bot.web.channel import Answer
from dialogs.messages import CATALOGUES
from dialogs.model import Choice, Reply

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "bot" / "web" / "templates"
CALL = re.compile(r"""\bt\(\s*['"]([\w.]*\w)['"]""")
MENU_CALL = re.compile(r"""t\(\s*['"](menu\.)['"]\s*~""")


def _template_ids() -> set[str]:
    ids: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        ids.update(CALL.findall(path.read_text(encoding="utf-8")))
    return ids


def test_every_id_in_the_templates_exists_in_every_language() -> None:
    ids = _template_ids()
    assert ids, "the templates use t('...')"
    for lang, catalogue in CATALOGUES.items():
        assert sorted(ids - set(catalogue)) == [], lang


def test_the_menu_labels_exist() -> None:
    assert any(MENU_CALL.search(p.read_text()) for p in TEMPLATES.glob("*.html"))
    for lang, catalogue in CATALOGUES.items():
        for command in render.MENU:
            assert f"menu.{command}" in catalogue, (lang, command)


def test_every_web_message_is_used() -> None:
    used = _template_ids()
    for path in (ROOT / "bot" / "web").glob("*.py"):
        used.update(re.findall(r"""["'](web\.[\w.]+)["']""", path.read_text(encoding="utf-8")))
    web_ids = {msg_id for msg_id in CATALOGUES["fr"] if msg_id.startswith("web.")}
    assert sorted(web_ids - used) == []


def test_a_view_offers_the_last_choices_and_a_text_box_where_words_are_expected() -> None:
    answer = Answer(
        "ok",
        [Reply("Merci.\n\nLigne 1\nLigne 2"), Reply("Votre besoin ?", (Choice("skip", "Passer"),))],
        version=4,
        state="levers",
    )
    view = render.view(answer, territory="oise")
    assert view.replies == [[["Merci."], ["Ligne 1", "Ligne 2"]], [["Votre besoin ?"]]]
    assert [c.id for c in view.choices] == ["skip"] and view.accepts_text
    assert view.territory == ""  # a poster's territory applies only at the welcome
    assert view.message_id != view.menu_id and len(view.message_id) == 24
    welcome = render.view(Answer("ok", [Reply("Bonjour", ())], state="new"), territory="oise")
    assert welcome.territory == "oise" and not welcome.accepts_text
    review = render.view(Answer("ok", [Reply("Résumé", ())], state="review"), proof=True)
    assert review.proof and not render.view(Answer("ok", [], state="need"), proof=True).proof
