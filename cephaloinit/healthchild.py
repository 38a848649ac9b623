"""The health server as the supervisor's child: how it is started, how its
readiness is heard, and the restart policy after it dies (backoff, and the
crash loop that is fatal). When each of these applies is the state machine's
decision (supervisor.py); this is the mechanics."""

from __future__ import annotations

import collections
import os
import sys
from typing import Callable

from .children import Child, Children
from .errors import Fatal
from .loop import Loop

START_TIMEOUT = 10.0
CRASH_LIMIT = 5  # deaths within CRASH_WINDOW that make it fatal
CRASH_WINDOW = 60.0
BACKOFF_FIRST = 0.5  # doubled after each death: at most 4 s, since the 5th is fatal
READY = b"READY=1"  # what it writes on its notification pipe once it listens


def interpreter_command() -> list[str]:
    """How to start another copy of this Python with the same isolation flags."""
    flags = [flag for flag, on in (("-I", sys.flags.isolated), ("-S", sys.flags.no_site)) if on]
    return [sys.executable, *flags]


class HealthChild:
    """The current health server process, whether it has said READY=1, and
    its deaths of the last CRASH_WINDOW seconds (monotonic)."""

    def __init__(self, children: Children, loop: Loop, on_notify: Callable[[bytes], None]):
        self.children = children
        self.loop = loop
        self.on_notify = on_notify  # what READY=1 means depends on the supervisor's state
        self.child: Child | None = None
        self.ready = False
        self.restarts = 0
        self.deaths: collections.deque[float] = collections.deque()

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child else None

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.running

    def start(self) -> None:
        argv = [*interpreter_command(), "-m", "cephaloinit", "health-server"]
        try:
            self.child = self.children.spawn("health server", argv, os.environ,
                                             notify=self.on_notify)
        except OSError as error:
            raise Fatal(f"Cannot start the health check server: {error.strerror}") from None

    def heard_ready(self, data: bytes) -> bool:
        """Whether ``data`` from its notification pipe makes it ready now."""
        if READY in data and not self.ready:
            self.ready = True
            return True
        return False

    def died(self) -> float | None:
        """Count a death; the backoff before the restart, or None when this
        death completes a crash loop."""
        now = self.loop.clock()
        self.deaths.append(now)
        while self.deaths[0] < now - CRASH_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) >= CRASH_LIMIT:
            return None
        return BACKOFF_FIRST * 2 ** (len(self.deaths) - 1)
