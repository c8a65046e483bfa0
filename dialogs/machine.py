"""The conversation's state machine: its states and transitions, built once at import.

The machine has no model of its own: nothing is attached or built per event. A
:class:`~dialogs.model.Conversation` (plain data, ``state`` attribute) is passed to
:func:`fire`, which reads and sets its ``state``; this is the only place a conversation's
state changes. Conditions are pure (they read the conversation); what a step says and stores
is in :mod:`dialogs.steps`. The README's diagram is drawn from the same definition
(:func:`mermaid`, ``cnrbot diagram``).
"""

from __future__ import annotations

from typing import Any

from transitions import EventData, Machine

from dialogs.model import Conversation

#: Steps of a draft, in order (``custom_theme`` only for a theme of the citizen's own).
DRAFT_STATES = (
    "territory",
    "theme",
    "custom_theme",
    "need",
    "solution",
    "levers",
    "profile",
    "review",
)
STATES = (
    "new",
    "consent",
    *DRAFT_STATES,
    "done",
    "confirm_cancel",
    "confirm_delete",
    "confirm_withdraw",
)
#: Steps whose answer is typed words (the others offer choices).
FREE_TEXT_STATES = ("custom_theme", "need", "solution", "levers")
#: Answers a citizen can change from the review.
EDITABLE = ("territory", "theme", "need", "solution", "levers", "profile")
#: The confirmations a citizen can come back from to where they were.
CONFIRMATIONS = ("confirm_cancel", "confirm_delete", "confirm_withdraw")


def draft_in_progress(conv: Conversation) -> bool:
    """Whether the citizen has started a contribution (beyond the territory)."""
    if conv.state == "confirm_cancel":
        return True
    if conv.state not in DRAFT_STATES:
        return False
    return any(conv.answers.get(k) for k in ("theme", "need", "solution", "levers", "custom_theme"))


# --- conditions (named for the diagram) -------------------------------------------------------


def _conv(ev: EventData) -> Conversation:
    model = ev.model
    assert isinstance(model, Conversation)
    return model


def editing(ev: EventData) -> bool:
    """An answer is being changed from the review (the review comes next)."""
    return _conv(ev).resume == "review"


def has_territory(ev: EventData) -> bool:
    """The territory is known already (a deep link, the previous contribution)."""
    return bool(_conv(ev).answers.get("territory"))


def free_theme(ev: EventData) -> bool:
    """The theme is the citizen's own (theme 5 without a predefined extra theme)."""
    return _conv(ev).answers.get("theme") == "5"


def has_draft(ev: EventData) -> bool:
    """A contribution is under way (what an idle time expires)."""
    return draft_in_progress(_conv(ev))


def _t(trigger: str, source: str | list[str], dest: str, **kw: Any) -> dict[str, Any]:
    return {"trigger": trigger, "source": source, "dest": dest, **kw}


TRANSITIONS: list[dict[str, Any]] = [
    _t("greet", "new", "consent"),
    _t("accept", ["new", "consent"], "theme", conditions=[has_territory]),
    _t("accept", ["new", "consent"], "territory"),
    _t("decline", ["new", "consent"], "new"),
    _t("set_territory", "territory", "review", conditions=[editing]),
    _t("set_territory", "territory", "theme"),
    _t("set_theme", "theme", "custom_theme", conditions=[free_theme]),
    _t("set_theme", "theme", "review", conditions=[editing]),
    _t("set_theme", "theme", "need"),
    _t("set_custom_theme", "custom_theme", "review", conditions=[editing]),
    _t("set_custom_theme", "custom_theme", "need"),
    _t("set_need", "need", "review", conditions=[editing]),
    _t("set_need", "need", "solution"),
    _t("set_solution", "solution", "review", conditions=[editing]),
    _t("set_solution", "solution", "levers"),
    _t("set_levers", "levers", "review", conditions=[editing]),
    _t("set_levers", "levers", "profile"),
    _t("set_profile", "profile", "review"),
    *(_t(f"edit_{name}", "review", name) for name in EDITABLE),
    _t("send", "review", "done"),
    _t("again", "done", "theme", conditions=[has_territory]),
    _t("again", "done", "territory"),
    # back: to review while editing, else to the previous step
    _t("back", list(DRAFT_STATES[:-1]), "review", conditions=[editing]),
    _t("back", "theme", "territory"),
    _t("back", "custom_theme", "theme"),
    _t("back", "need", "custom_theme", conditions=[free_theme]),
    _t("back", "need", "theme"),
    _t("back", "solution", "need"),
    _t("back", "levers", "solution"),
    _t("back", "profile", "levers"),
    _t("back", "review", "profile"),
    # a draft left idle too long starts again at the territory (a draft state implies consent:
    # the territory is only reached by accepting the privacy notice)
    _t("expire", [*DRAFT_STATES, "confirm_cancel"], "territory", conditions=[has_draft]),
    # /start mid-draft, "start again": from the territory, the draft forgotten
    _t("restart", list(DRAFT_STATES), "territory"),
    _t("cancel", list(DRAFT_STATES), "confirm_cancel"),
    _t("discard", "confirm_cancel", "done"),
    _t("delete", [s for s in STATES if s != "confirm_delete"], "confirm_delete"),
    _t("erase", "confirm_delete", "new"),
    # withdraw one contribution (from "my contributions" or /withdraw <reference>), confirmed
    _t("withdraw", [s for s in STATES if s != "confirm_withdraw"], "confirm_withdraw"),
    # "no" at a confirmation: back to the step it was asked from
    *(
        _t(f"resume_{name}", list(CONFIRMATIONS), name)
        for name in STATES
        if name not in CONFIRMATIONS
    ),
]

MACHINE = Machine(
    model=None,
    states=list(STATES),
    transitions=TRANSITIONS,
    initial="new",
    model_attribute="state",
    auto_transitions=False,
    send_event=True,
    ignore_invalid_triggers=True,
)


def fire(conv: Conversation, trigger: str) -> bool:
    """Fire ``trigger`` on ``conv``; False when no transition applies from its state.

    A trigger with no transition from the current state is refused here, before
    ``transitions`` would log a warning about it (an ordinary case: ``back`` at the first step).
    A question put aside the step (``conv.aside``) is over once the state has changed.
    """
    event = MACHINE.events.get(trigger)
    if event is None or conv.state not in event.transitions:
        return False
    moved = bool(event.trigger(conv))
    if moved:
        conv.aside = conv.held = None
    return moved


def mermaid() -> str:
    """A Mermaid diagram of the machine (generated from the same states and transitions)."""
    from transitions.extensions import GraphMachine

    class _Model:
        pass

    model = _Model()
    conditions = {c.__name__ for tr in TRANSITIONS for c in tr.get("conditions", [])}
    GraphMachine(
        model=model,
        states=list(STATES),
        transitions=[
            {**tr, "conditions": [c.__name__ for c in tr.get("conditions", [])]}
            for tr in TRANSITIONS
            if not tr["trigger"].startswith("resume_")
        ]
        + [_t("resume", list(CONFIRMATIONS), "review")],
        initial="new",
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title="cnr-sante-bot conversation",
    )
    # conditions are shown by name; the model needs them only for drawing
    for name in sorted(conditions):
        setattr(model, name, lambda: True)
    graph = model.get_graph()  # type: ignore[attr-defined]
    source: str = graph.draw(None)
    return source.strip() + "\n"
