"""The health server as the supervisor's child: how it is started, how its
readiness is recognised, and the restart policy after it dies (backoff, and
the crash loop that is fatal). When each of these applies is the state
machine's decision (supervisor.py); this is the arithmetic and the argv."""

from __future__ import annotations

import collections
import os
import sys
from typing import Callable

from .children import Child, Children
from .errors import Fatal

START_TIMEOUT = 10.0
CRASH_LIMIT = 5  # deaths within CRASH_WINDOW that make it fatal
CRASH_WINDOW = 60.0
BACKOFF_FIRST = 0.5  # doubled after each death: at most 4 s, since the 5th is fatal
READY = b"READY=1"  # what it writes on its notification pipe once it listens


def interpreter_command() -> list[str]:
    """How to start another copy of this Python with the same isolation flags."""
    flags = [flag for flag, on in (("-I", sys.flags.isolated), ("-S", sys.flags.no_site)) if on]
    return [sys.executable, *flags]


def spawn(children: Children, on_notify: Callable[[bytes], None]) -> Child:
    argv = [*interpreter_command(), "-m", "cephaloinit", "health-server"]
    try:
        return children.spawn("health server", argv, os.environ, notify=on_notify)
    except OSError as error:
        raise Fatal(f"Cannot start the health check server: {error.strerror}") from None


class CrashWindow:
    """The deaths of the last CRASH_WINDOW seconds (monotonic)."""

    def __init__(self) -> None:
        self.deaths: collections.deque[float] = collections.deque()

    def record(self, now: float) -> int:
        """Count a death at ``now``; return how many the window holds."""
        self.deaths.append(now)
        while self.deaths[0] < now - CRASH_WINDOW:
            self.deaths.popleft()
        return len(self.deaths)


def backoff(deaths: int) -> float:
    """Seconds before the restart after the ``deaths``-th death in the window."""
    return BACKOFF_FIRST * 2 ** (deaths - 1)
