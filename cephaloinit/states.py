"""The supervisor's states, on their own so that both sides of the state file
(the supervisor writing it, the health server reading it) name them from one
place without importing each other. docs/state-machine.md is their contract."""

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
