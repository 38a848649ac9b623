"""Log lines for people reading ``docker logs``, and the single writer of our output.

Text format: ``YYYY-MM-DD HH:MM:SS [LEVEL] message``; JSON format: one object
per line. DEBUG, INFO and WARNING go to stdout, ERROR to stderr. Every line,
ours or relayed from a child, goes into one ordered queue (``OUTPUT``), from
the one thread there is, so two sources never interleave within a line and
lines keep their order across stdout and stderr. Children's lines come in
through ``write_line``, where ``OUTPUT.relayed`` may rewrite them first
(``run`` with LOG_FORMAT=json turns Squid's into JSON: ``squidlog``).
"""

from __future__ import annotations

import collections
import json
import os
import select
import selectors
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .loop import Loop

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
STDOUT = 1
STDERR = 2
PIPE_BUF = 4096  # a pipe that select() reports writable takes this much without blocking
QUEUE_LIMIT = 1 << 20  # queued bytes beyond which children's pipes are not read
FINAL_FLUSH = 2.0  # seconds a reader gets, at exit, to take what is still queued


def _writable(fd: int, timeout: float | None) -> bool:
    try:
        return bool(select.select([], [fd], [], timeout)[1])
    except (OSError, ValueError):
        return True  # let the write itself report the problem


class Output:
    """Our stdout and stderr, written as fast as their reader takes them.

    Before ``attach``, a write waits for a slow reader like any program's.
    Once a loop is attached (PID 1), a write never blocks: lines wait in a
    queue that the loop flushes whenever the fd is writable, so signals, the
    reaper and the shutdown deadline keep working while ``docker logs`` (or
    whatever reads us) is stalled. Nothing is dropped: when the queue passes
    QUEUE_LIMIT, children's pipes stop being read (``congested``), so children
    block on their own full pipes — back-pressure instead of loss. A reader
    that has gone away (EPIPE, EBADF) cannot be told anything: its lines are
    dropped quietly.
    """

    def __init__(self) -> None:
        self.queue: collections.deque[tuple[int, memoryview]] = collections.deque()
        self.queued = 0
        self.loop: Loop | None = None
        self.watched: int | None = None
        self.on_drained: Callable[[], None] | None = None
        # Rewrites children's lines (fd, whole lines) -> lines; None: as they are.
        self.relayed: Callable[[int, bytes], bytes] | None = None

    @property
    def congested(self) -> bool:
        return self.queued > QUEUE_LIMIT

    def attach(self, loop: Loop | None, on_drained: Callable[[], None] | None = None) -> None:
        """Flush through ``loop`` from now on (None: back to blocking writes);
        ``on_drained`` is called whenever the queue is no longer congested."""
        self.loop = loop
        self.watched = None
        self.on_drained = on_drained

    def write_line(self, fd: int, line: bytes) -> None:
        self.queue.append((fd, memoryview(line)))
        self.queued += len(line)
        self.flush()
        if self.loop is None:
            self.finish(None)

    def flush(self) -> None:
        """Write what the readers take now, without blocking."""
        while self.queue:
            fd, view = self.queue[0]
            if not _writable(fd, 0):
                break
            try:
                written = os.write(fd, view[:PIPE_BUF])
            except BlockingIOError:
                break
            except OSError:  # the reader is gone
                self._drop(fd)
                continue
            self.queued -= written
            if written == len(view):
                self.queue.popleft()
            else:
                self.queue[0] = (fd, view[written:])
        self._watch()
        if self.on_drained is not None and not self.congested:
            self.on_drained()

    def finish(self, timeout: float | None = FINAL_FLUSH) -> None:
        """Wait (up to ``timeout``, None for ever) until everything is written."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.queue:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            if _writable(self.queue[0][0], remaining):
                self.flush()

    def _drop(self, fd: int) -> None:
        kept = collections.deque(entry for entry in self.queue if entry[0] != fd)
        self.queued = sum(len(view) for _, view in kept)
        self.queue = kept

    def _watch(self) -> None:
        """Have the loop call ``flush`` when the fd at the head of the queue can
        take more; watch nothing when the queue is empty."""
        if self.loop is None:
            return
        wanted = self.queue[0][0] if self.queue else None
        if wanted != self.watched:
            if self.watched is not None:
                self.loop.watch(self.watched, 0)
            if wanted is not None:
                self.loop.watch(wanted, selectors.EVENT_WRITE, self.flush)
            self.watched = wanted


# fds 1 and 2 belong to the whole process, and so does the one queue in front of them.
OUTPUT = Output()


def write_line(fd: int, line: bytes) -> None:
    """A child's whole line(s), relayed."""
    if OUTPUT.relayed is not None:
        line = OUTPUT.relayed(fd, line)
    OUTPUT.write_line(fd, line)


class Logger:
    def __init__(self, level: str = "INFO", fmt: str = "text"):
        self.threshold = LEVELS[level]
        self.json = fmt == "json"

    def format(self, level: str, message: str, now: float | None = None) -> bytes:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        if self.json:
            text = json.dumps({"time": stamp, "level": level, "message": message})
        else:
            # One entry, one line: a reader (or grep) must never see half an entry.
            text = f"{stamp} [{level}] " + " ".join(message.splitlines())
        return text.encode("utf-8", "replace") + b"\n"

    def log(self, level: str, message: str) -> None:
        if LEVELS[level] < self.threshold:
            return
        OUTPUT.write_line(STDERR if level == "ERROR" else STDOUT, self.format(level, message))

    def debug(self, message: str) -> None:
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def warning(self, message: str) -> None:
        self.log("WARNING", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)
