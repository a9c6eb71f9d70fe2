"""The operator actions on a projection version: when each applies, and what the
destructive ones ask before they run (naming what is lost)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.services.projections import ProjectionStatus

__all__ = [
    "ACTIONS",
    "ACTIVE_STATES",
    "ActionSpec",
    "action_named",
    "confirmation_text",
]

#: The states of a version the scheduler runs (``ProjectionStatus.state``).
ACTIVE_STATES: Final = frozenset({"never run", "caught up", "catching up", "behind"})


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: its name, its button text and tip, the states it applies in (None:
    every state), and whether it asks first (it drops something)."""

    name: str
    label: str
    tip: str
    states: frozenset[str] | None
    destructive: bool = False
    long: bool = False  # runs the projection: shows progress and can be cancelled

    def applies_to(self, status: ProjectionStatus) -> bool:
        """Whether the action makes sense in the version's state."""
        return self.states is None or status.state in self.states


ACTIONS: Final = (
    ActionSpec(
        "run",
        "Run now",
        "Catch the version up to the head now, under this console's lease",
        ACTIVE_STATES,
        long=True,
    ),
    ActionSpec("pause", "Pause", "Stop running it until it is resumed", ACTIVE_STATES),
    ActionSpec("resume", "Resume", "Run the paused version again", frozenset({"paused"})),
    ActionSpec(
        "rebuild",
        "Rebuild",
        "Drop its documents and history and run it again from the first event",
        None,
        long=True,
    ),
    ActionSpec(
        "retry",
        "Retry",
        "Apply the event it faulted on again (after a fix)",
        frozenset({"faulted"}),
    ),
    ActionSpec(
        "skip",
        "Skip event",
        "Step over the event it faulted on and go on",
        frozenset({"faulted"}),
        destructive=True,
    ),
    ActionSpec(
        "reset",
        "Reset",
        "Drop its documents and history; the next run rebuilds it from the first event",
        ACTIVE_STATES | {"paused", "faulted", "retired"},
        destructive=True,
    ),
    ActionSpec(
        "retain",
        "Retain…",
        "Keep its history from a position on (earlier points are folded from the log)",
        ACTIVE_STATES | {"paused", "faulted"},
        destructive=True,
    ),
    ActionSpec(
        "retire",
        "Retire",
        "Stop keeping this version: its documents and history are dropped",
        ACTIVE_STATES | {"paused", "faulted"},
        destructive=True,
    ),
)


def action_named(name: str) -> ActionSpec:
    """The action called ``name``.

    Raises:
        KeyError: no such action.
    """
    for action in ACTIONS:
        if action.name == name:
            return action
    raise KeyError(name)


def confirmation_text(
    name: str, status: ProjectionStatus, *, versions: int | None = None, since: int | None = None
) -> str:
    """What a destructive action asks, naming what it drops.

    Args:
        name: ``reset``, ``retire``, ``skip`` or ``retain``.
        status: the version as last shown.
        versions: how many document versions it keeps now (reset, retire).
        since: the position its history is to be kept from (retain).
    """
    reference = status.reference
    stored = "its documents" if versions is None else f"its {versions:,} document versions"
    if name == "reset":
        return (
            f"Reset {reference}? {stored.capitalize()} and their history are dropped, and "
            "it rebuilds from event 1 at its next run."
        )
    if name == "retire":
        return (
            f"Retire {reference}? {stored.capitalize()} and their history are dropped, and "
            "no worker runs it again until it is rebuilt. Other versions are untouched."
        )
    if name == "skip":
        return (
            f"Skip event {status.fault_position} ({status.fault_event_id}) in {reference}? "
            "The read model will never apply that event; it goes on with the next one."
        )
    if name == "retain":
        return (
            f"Keep {reference}'s history from position {since} on? Its document versions "
            f"that ended before {since} are dropped: earlier points are then folded from "
            "the log, more slowly."
        )
    raise KeyError(name)
