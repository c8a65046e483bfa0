"""Helpers for the pure dialog tests: the shipped campaign and a tiny driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from dialogs import flow
from dialogs.model import (
    CampaignView,
    ChoiceEvent,
    Context,
    Conversation,
    Effect,
    Event,
    Limits,
    ListContributions,
    Reply,
    SubmitContribution,
    TextEvent,
)
from storage.campaign_file import builtin_campaign_path, read_campaign_file

OPEN_DAY = datetime(2022, 11, 20, 10, 0, tzinfo=UTC)
NEED_FR = (
    "Il n'y a plus de médecin traitant dans notre village depuis deux ans, il faut faire 30 km."
)
SOLUTION_FR = "Ouvrir une maison de santé avec des consultations avancées de spécialistes."
LEVERS_FR = "Financer les locaux par la commune et simplifier l'installation des jeunes médecins."
NEED_EN = "There has been no family doctor in our village for two years; we must drive 30 km."
SOLUTION_EN = "Open a health centre with regular visits from specialists and nurses every week."


@cache
def campaign(name: str = "hauts-de-france-2022.toml") -> CampaignView:
    return read_campaign_file(builtin_campaign_path(name)).to_view()


def context(now: datetime = OPEN_DAY, name: str = "hauts-de-france-2022.toml") -> Context:
    return Context(campaign=campaign(name), now=now, limits=Limits())


@dataclass
class Driver:
    """Feeds events to the dialog like a channel would and keeps what it said."""

    ctx: Context = field(default_factory=context)
    conv: Conversation = field(default_factory=lambda: flow.new_conversation(None))
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    def send(self, event: Event | str, *, idle: timedelta | None = None) -> list[Reply]:
        if isinstance(event, str):
            event = TextEvent(event)
        outcome = flow.handle(self.conv, event, self.ctx, idle=idle)
        self.conv = outcome.conversation
        self.replies = list(outcome.replies)
        self.effects = outcome.effects
        # what storage does with the effects that need its data
        for effect in outcome.effects:
            if isinstance(effect, SubmitContribution):
                self.replies += flow.render_submitted(self.conv, ["HDF-TEST-000001"], self.ctx)
            elif isinstance(effect, ListContributions):
                self.replies += flow.render_contributions(self.conv, [], self.ctx)
        return self.replies

    def press(self, choice: str) -> list[Reply]:
        offered = {c.id for r in self.replies for c in r.choices}
        assert choice in offered, f"{choice!r} not offered; offered: {sorted(offered)}"
        return self.send(ChoiceEvent(choice, self.conv.version))

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def choices(self) -> list[str]:
        return [c.id for r in self.replies for c in r.choices]


def consented(d: Driver, territory: str | None = None, theme: str | None = None) -> Driver:
    """Greet and accept the notice; then pick ``territory`` and ``theme`` when given."""
    d.send("bonjour")
    d.press("consent:yes")
    if territory:
        d.press(f"t:{territory}")
    if theme:
        d.press(f"th:{theme}")
    return d


def to_review(d: Driver, *, need: str = NEED_FR, solution: str = SOLUTION_FR) -> Driver:
    consented(d, "OISE", "1")
    d.send(need)
    d.send(solution)
    d.press("skip")
    d.press("p:-")
    assert d.conv.state == "review"
    return d
