"""The privacy notice names the controller from the campaign file and the retention from the
settings, in every interface language."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from dialogs.model import CommandEvent, Context, Controller, Limits
from tests.dialog_helpers import OPEN_DAY, Driver, campaign


def _notice(lang: str, **overrides: object) -> str:
    view = campaign()
    if "controller" in overrides:
        view = dataclasses.replace(view, controller=overrides.pop("controller"))
    limits = Limits(
        draft_ttl=timedelta(days=5),
        identity_retention=timedelta(days=120),
        rejected_text_retention=timedelta(days=45),
    )
    d = Driver(ctx=Context(campaign=view, now=OPEN_DAY, limits=limits))
    d.conv.lang = lang
    d.send(CommandEvent("privacy"))
    return d.text


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
def test_the_notice_names_the_campaigns_controller_and_the_retention(lang: str) -> None:
    text = _notice(lang)
    assert "l'Agence régionale de santé Hauts-de-France" in text
    for days in ("5", "120", "45"):
        assert days in text, days
    assert "{" not in text and "}" not in text  # every placeholder filled


@pytest.mark.parametrize("lang", ["fr", "en", "falc"])
def test_a_contact_is_named_when_the_campaign_gives_one(lang: str) -> None:
    text = _notice(lang, controller=Controller("l'ARS Exemple", "dpo@ars-exemple.fr"))
    assert "dpo@ars-exemple.fr" in text and "l'ARS Exemple" in text
    assert "dpo@" not in _notice(lang)  # the shipped file names none yet


@pytest.mark.parametrize(
    ("lang", "general"),
    [
        ("fr", "l'Agence régionale de santé (ARS) de votre région"),
        ("en", "the regional health agency (ARS) of your region"),
        ("falc", "l'Agence régionale de santé de votre région"),
    ],
)
def test_without_a_controller_the_notice_uses_a_general_wording(lang: str, general: str) -> None:
    assert general in _notice(lang, controller=None)
