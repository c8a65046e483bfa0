"""Issue 11, points 2-5, in the terminal chat (the same dialog as on Telegram): personal data
told as it is typed, /start and the French commands, invisible characters, one question open
at a time, short levers."""

from __future__ import annotations

import io
import sqlite3
from datetime import date
from pathlib import Path

from bot.terminal import run_chat
from dialogs.messages import t
from storage.settings import Settings

NEED_PII = "Il n'y a plus de médecin au village, appelez-moi au 06 12 34 56 78 pour en parler."
SOLUTION = "Créer une maison de santé pluriprofessionnelle près de la gare."
NEED_EN = "There is no general practitioner left in my town since the last one retired."


def chat(settings: Settings, lines: list[str], user: str) -> list[str]:
    """The transcript, one chunk per line typed (chunk 0: before the first line), each with
    its whitespace folded."""
    stdin = io.StringIO("".join(line + "\n" for line in lines))
    out = io.StringIO()
    assert run_chat(settings, user_id=user, stdin=stdin, out=out, today=date(2022, 11, 20)) == 0
    return [" ".join(chunk.split()) for chunk in out.getvalue().split("\n> ")]


def said(msg_id: str, **params: object) -> str:
    return " ".join(t("fr", msg_id, **params).split())


def rows(settings: Settings, query: str) -> list[tuple[object, ...]]:
    path = Path(settings.database_url.split("///", 1)[1])
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchall()


def test_personal_data_commands_and_short_levers(sqlite_settings: Settings) -> None:
    lines = [
        "1",  # accept
        "Oise",
        "1",  # theme 1
        NEED_PII,  # 4: personal data: rewrite or keep?
        "2",  # 5: keep
        "/start",  # 6: start again or continue?
        "2",  # 7: continue
        "/aide",  # 8
        "/retour",  # 9: back to the need
        "Trop\u200b\u200b\u200b\u202e\x00\ufeff court",  # 10: 10 characters that count
        NEED_PII,  # 11
        "la garder telle quelle",  # 12: a button's label typed
        SOLUTION,  # 13
        "CPTS, ARS",  # 14: a short lever is an answer
        "8",  # 15: no profile
        "1",  # 16: send
    ]
    out = chat(sqlite_settings, lines, "rough-edges")
    assert said("pii.found", what=t("fr", "pii.kind.phone")) in out[4]
    assert said("solution.prompt") not in out[4], "one question at a time"
    assert said("solution.prompt") in out[5]
    assert said("restart.confirm") in out[6] and "1. Recommencer" in out[6]
    assert said("solution.prompt") in out[7]
    assert said("help.text") in out[8]
    assert said("need.prompt") in out[9]
    assert said("text.too_short", count=10, min=15) in out[10]
    assert said("solution.prompt") in out[12]
    assert said("profile.prompt") in out[14]
    assert "HDF-OISE-000001" in out[16]
    assert rows(sqlite_settings, "select need, solution, levers from contributions") == [
        (NEED_PII, SOLUTION, "CPTS, ARS")
    ]


def test_start_again_and_the_language_offer_first(sqlite_settings: Settings) -> None:
    lines = [
        "1",  # accept
        "Oise",
        "1",  # theme 1
        NEED_EN,  # 4: written in English: switch?
        "2",  # 5: stay in French
        "/start",  # 6
        "1",  # 7: start again
    ]
    out = chat(sqlite_settings, lines, "start-again")
    assert said("lang.offer_switch", language="anglais") in out[4]
    assert said("solution.prompt") not in out[4], "the offer comes alone"
    assert said("solution.prompt") in out[5]
    assert said("restart.done") in out[7] and said("territory.prompt") in out[7]
    assert rows(sqlite_settings, "select state from conversations") == [("territory",)]


def test_the_chat_started_again_shows_the_step_not_the_restart_question(
    sqlite_settings: Settings,
) -> None:
    chat(sqlite_settings, ["1", "Oise", "1", NEED_EN, "2"], "resume")
    out = chat(sqlite_settings, [], "resume")
    assert said("solution.prompt") in out[0] and said("restart.confirm") not in out[0]
