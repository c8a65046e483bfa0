"""Commands, available at every step: ``/start``, ``/help``, ``/back``, ``/cancel``,
``/language``, ``/privacy``, ``/mine``, ``/mydata``, ``/delete``, ``/withdraw <reference>``
(and their French words: ``/aide``, ``/retour``, ``/annuler``, ``/langue``,
``/confidentialite``, ``/mes_contributions``, ``/mes_donnees``, ``/supprimer_mes_donnees``,
``/retirer``..., the French command menu's)."""

from __future__ import annotations

import unicodedata

from dialogs import drafts, prompts, steps
from dialogs.machine import DRAFT_STATES, draft_in_progress, fire
from dialogs.model import (
    CampaignView,
    ChoiceEvent,
    CommandEvent,
    ListContributions,
    SendMyData,
)
from dialogs.steps import Turn
from dialogs.validation import fold

#: Canonical commands (Telegram's command menu) and the other words accepted for them.
COMMANDS = (
    "start",
    "help",
    "back",
    "cancel",
    "language",
    "privacy",
    "mine",
    "mydata",
    "delete",
)
#: The commands' names in the French command menu (and in « Français facile »), each an alias.
FRENCH_COMMANDS = {
    "start": "start",  # Telegram's own "Start" button sends /start
    "help": "aide",
    "back": "retour",
    "cancel": "annuler",
    "language": "langue",
    "privacy": "confidentialite",
    "mine": "mes_contributions",
    "mydata": "mes_donnees",
    "delete": "supprimer_mes_donnees",
}
COMMAND_ALIASES = {
    "aide": "help",
    "retour": "back",
    "precedent": "back",
    "annuler": "cancel",
    "langue": "language",
    "lang": "language",
    "confidentialite": "privacy",
    "vieprivee": "privacy",
    "mescontributions": "mine",
    "mes_contributions": "mine",
    "contributions": "mine",
    "mes_donnees": "mydata",
    "mesdonnees": "mydata",
    "my_data": "mydata",
    "donnees": "mydata",
    "retirer": "withdraw",
    "supprimer": "delete",
    "supprimer_mes_donnees": "delete",
    "effacer": "delete",
    "effacer_mes_donnees": "delete",
    "commencer": "start",
    "demarrer": "start",
}


def command(turn: Turn, event: CommandEvent) -> None:
    """Apply a command. Help, privacy, language, "my contributions", "my data", "withdraw"
    and "delete my data" work even while the consultation is closed; the others then say it
    is closed."""
    name = _plain(event.name)
    name = COMMAND_ALIASES.get(name, name)
    conv = turn.conv
    if name == "start":
        _start(turn, event.arg)
    elif name == "help":
        turn.say("help.text")
        turn.prompt()
    elif name == "privacy":
        steps.privacy(turn)
        turn.prompt()
    elif name == "language":
        turn.say("lang.prompt", *prompts.language_choices())
    elif name == "mine":
        turn.effects.append(ListContributions())
    elif name == "mydata":
        turn.effects.append(SendMyData())
    elif name == "withdraw":
        if event.arg:
            steps.ask_withdraw(turn, event.arg)
        else:  # which one? the list, each with its button
            turn.say("withdraw.which")
            turn.effects.append(ListContributions())
    elif name == "delete":
        steps.detour(turn, "delete")
    elif prompts.campaign_closed(turn.ctx):
        turn.say_closed()
    elif name == "back":
        if conv.state in DRAFT_STATES and fire(conv, "back"):
            steps.after_move(turn)
        else:
            turn.say("back.none")
            turn.prompt()
    elif name in ("skip", "passer") and conv.state in ("levers", "profile"):
        steps.choose(turn, ChoiceEvent("skip" if conv.state == "levers" else "p:-"))
    elif name == "cancel":
        if conv.state in DRAFT_STATES and draft_in_progress(conv):
            steps.detour(turn, "cancel")
        else:
            turn.say("cancel.nothing")
            turn.prompt()
    else:
        turn.say("command.unknown", command=event.name[:32])
        turn.prompt()


def _plain(name: str) -> str:
    """``/confidentialité`` is ``/confidentialite`` (accents dropped)."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _start(turn: Turn, payload: str) -> None:
    """``/start`` (again): the greeting before consent; with a draft under way, "start again
    or continue?"; else the current step. With a territory's deep link (a poster): that
    territory, or with a draft under way for another, "change the territory?"."""
    conv = turn.conv
    territory = territory_from_link(turn.ctx.campaign, payload)
    under_way = conv.state in DRAFT_STATES and draft_in_progress(conv)
    if territory and not under_way and conv.state in ("new", "consent", "territory", "done"):
        drafts.set_territory(conv, territory)
        if conv.state == "territory" and fire(conv, "set_territory"):
            steps.after_move(turn)
            return
    if prompts.campaign_closed(turn.ctx):
        turn.say_closed()
        return
    if conv.state in ("new", "consent"):
        steps.greet(turn)
        return
    if territory and conv.state in DRAFT_STATES and territory != conv.answers.get("territory"):
        steps.ask_territory_change(turn, territory)
        return
    if under_way and not territory:
        steps.ask_restart(turn)
        return
    turn.prompt()


def territory_from_link(c: CampaignView, payload: str) -> str | None:
    """``/start oise`` or ``/start LITTORAL-NORD``: the deep link printed on a poster."""
    key = fold(payload.replace("_", " ").replace("-", " "))
    if not key:
        return None
    for tr in c.territories:
        if key in (fold(tr.code.replace("-", " ")), fold(tr.name)):
            return tr.code
    return None
