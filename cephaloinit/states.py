"""The supervisor's states and the transitions between them, on their own so
that both sides of the state file (the supervisor writing it, the health
server reading it) name them from one place without importing each other.
docs/state-machine.md is their contract."""

from __future__ import annotations

import enum


class State(enum.Enum):
    INITIALIZING = "INITIALIZING"
    VALIDATING = "VALIDATING"
    STARTING_HEALTH = "STARTING_HEALTH"
    STARTING_SQUID = "STARTING_SQUID"
    RUNNING = "RUNNING"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    ERROR = "ERROR"
    EXITED = "EXITED"


S = State
# Every transition the supervisor may make; ``Supervisor.enter`` refuses any other.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.INITIALIZING: frozenset({S.VALIDATING, S.SHUTTING_DOWN, S.ERROR}),
    S.VALIDATING: frozenset({S.STARTING_HEALTH, S.SHUTTING_DOWN, S.ERROR, S.EXITED}),
    S.STARTING_HEALTH: frozenset({S.STARTING_SQUID, S.SHUTTING_DOWN, S.ERROR}),
    S.STARTING_SQUID: frozenset({S.RUNNING, S.SHUTTING_DOWN, S.ERROR}),
    S.RUNNING: frozenset({S.SHUTTING_DOWN, S.ERROR}),
    S.SHUTTING_DOWN: frozenset({S.EXITED}),
    S.ERROR: frozenset({S.EXITED}),
    S.EXITED: frozenset(),
}
