"""The core both ``run`` and ``exec`` are built on: one loop, one set of
children, our output, the shutdown deadline, and the dispatch of what the
loop reads.

What the core decides on its own: SIGCHLD means reap, and each exited
child's pipes are drained before its exit is acted on, so its last lines come
first. What it leaves to its owner: every other signal (``on_signal``) and
every exit of a child it knows (``on_exit``). It knows nothing of Squid.
"""

from __future__ import annotations

import signal
from typing import Callable

from . import logs
from .children import Child, Children
from .host import HOST, Host
from .logs import Logger
from .loop import Loop, Timer


def _nothing() -> None:
    """A timer that only wakes the loop."""


class Core:
    def __init__(self, wakeup_fd: int, log: Logger, shutdown_timeout: float,
                 on_signal: Callable[[int], None], on_exit: Callable[[Child], None],
                 on_orphan: Callable[[int, int], None] | None = None, host: Host = HOST):
        self.log = log
        self.host = host
        self.shutdown_timeout = shutdown_timeout
        self.on_signal = on_signal
        self.on_exit = on_exit
        self.loop = Loop(wakeup_fd, self.dispatch, clock=host.clock, selector=host.selector())
        self.children = Children(self.loop, on_orphan=on_orphan, host=host)
        # From now on a stalled reader never blocks PID 1, and the children's
        # pipes paused while our output was congested are read again once it is not.
        logs.OUTPUT.attach(self.loop, on_drained=self.children.resume_reading)

    def dispatch(self, signums: list[int]) -> None:
        for signum in signums:
            if signum == signal.SIGCHLD:
                self.reap()
            else:
                self.on_signal(signum)

    def reap(self) -> None:
        for child in self.children.reap():
            self.children.drain(child)
            self.on_exit(child)

    def wait_until(self, predicate: Callable[[], bool], deadline: float | None = None,
                   poll: float | None = None, check: Callable[[], None] | None = None) -> bool:
        """The one way to wait: turn the loop until ``predicate`` holds (True)
        or the monotonic ``deadline`` passes (False); signals are seen and
        children reaped meanwhile. ``check`` runs before each turn and may
        raise to leave the wait; with ``poll``, the predicate is also checked
        every ``poll`` seconds, for what no event announces."""
        wake = self.loop.call_at(deadline, _nothing) if deadline is not None else None
        try:
            while True:
                if check is not None:
                    check()
                if predicate():
                    return True
                if deadline is not None and self.loop.clock() >= deadline:
                    return False
                tick = self.loop.call_later(poll, _nothing) if poll else None
                self.loop.run_once()
                if tick:
                    tick.cancel()
        finally:
            if wake:
                wake.cancel()

    # -- the deadline ----------------------------------------------------------------
    def arm_deadline(self) -> Timer:
        """SHUTDOWN_TIMEOUT from now (monotonic), everything left gets SIGKILL."""
        return self.loop.call_later(self.shutdown_timeout, self.on_deadline)

    def on_deadline(self) -> None:
        self.log.warning(f"Shutdown timeout of {self.shutdown_timeout:g}s passed; "
                         "sending SIGKILL to every remaining process")
        self.children.kill_everything()

    def close(self) -> None:
        """Give our output back to blocking writes and close the loop (tests that
        run the core in-process call this; PID 1 simply exits)."""
        logs.OUTPUT.attach(None)
        self.loop.close()
