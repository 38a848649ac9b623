"""The event loop: one selector, the signal wakeup pipe, and a heap of monotonic timers.

``select`` sleeps until the next timer is due or a file descriptor is ready.
Nothing polls at a fixed interval: with no timer armed, an idle loop blocks in
``select`` indefinitely and makes no wakeups at all.
"""

from __future__ import annotations

import heapq
import itertools
import os
import selectors
import time
from typing import Callable

from . import signals

# select()/epoll take at most about 24.8 days (2**31 ms); a timer further away
# (a huge SHUTDOWN_TIMEOUT or READINESS_DRAIN) costs one wakeup a day instead.
MAX_SLEEP = 86400.0


def _nothing() -> None:
    pass


class Timer:
    """A callback due at a monotonic time; ``cancel`` makes it a no-op."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        # The entry stays in the heap until it is due: let go of whatever the
        # callback refers to now, not then.
        self.callback = _nothing


class Loop:
    def __init__(self, wakeup_fd: int, on_signals: Callable[[list[int]], None],
                 clock: Callable[[], float] = time.monotonic,
                 selector: selectors.BaseSelector | None = None):
        self.selector = selector or selectors.DefaultSelector()
        self.clock = clock
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()  # keeps heap order stable for equal deadlines
        self._wakeup_fd = wakeup_fd
        self._on_signals = on_signals
        self.add_reader(wakeup_fd, self._read_signals)

    # -- file descriptors -------------------------------------------------
    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self.selector.register(fd, selectors.EVENT_READ, callback)

    def remove_reader(self, fd: int) -> None:
        self.selector.unregister(fd)

    def watch(self, fd: int, events: int, callback: Callable[[], None] | None = None) -> None:
        """Watch ``fd`` for ``events`` (selectors.EVENT_READ, EVENT_WRITE or
        both), replacing what it was watched for; ``events`` 0 stops watching."""
        registered = fd in self.selector.get_map()
        if events == 0:
            if registered:
                self.selector.unregister(fd)
        elif registered:
            self.selector.modify(fd, events, callback)
        else:
            self.selector.register(fd, events, callback)

    # -- timers -----------------------------------------------------------
    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.clock() + delay, callback)

    def next_timeout(self) -> float | None:
        """Seconds until the next live timer, or None when there is none."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            return None
        return min(MAX_SLEEP, max(0.0, self._timers[0][0] - self.clock()))

    def run_due_timers(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                timer.callback()

    # -- the loop ---------------------------------------------------------
    def run_once(self) -> None:
        """Wait for one batch of events or the next timer, and dispatch them."""
        for key, _ in self.selector.select(self.next_timeout()):
            # An earlier callback in this batch may have closed this fd (a child's
            # exit drains and closes its pipes); never call a stale registration.
            if self.selector.get_map().get(key.fd) is key:
                key.data()
        self.run_due_timers()

    def _read_signals(self) -> None:
        data = b""
        while True:
            try:
                chunk = os.read(self._wakeup_fd, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        if data:
            self._on_signals(signals.decode(data))

    def close(self) -> None:
        self.selector.close()
