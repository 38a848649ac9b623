"""Log lines for people reading ``docker logs``, and the single writer of our output.

Text format: ``YYYY-MM-DD HH:MM:SS [LEVEL] message``; JSON format: one object
per line. DEBUG, INFO and WARNING go to stdout, ERROR to stderr. Every line,
ours or relayed from a child, is written whole by ``write_line`` from the one
thread there is, so two sources never interleave within a line.
"""

from __future__ import annotations

import json
import os
import select
import time

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
STDOUT = 1
STDERR = 2


def write_line(fd: int, line: bytes) -> None:
    """Write all of ``line`` to ``fd``, waiting if the reader is slow.

    Blocking here is deliberate back-pressure: children then block on their own
    full pipes, and nothing is dropped. A reader that has gone away (EPIPE,
    EBADF) cannot be told anything, so the line is abandoned quietly.
    """
    view = memoryview(line)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # someone made our stdout non-blocking
            select.select([], [fd], [])
            continue
        except (BrokenPipeError, OSError):
            return
        view = view[written:]


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
        write_line(STDERR if level == "ERROR" else STDOUT, self.format(level, message))

    def debug(self, message: str) -> None:
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def warning(self, message: str) -> None:
        self.log("WARNING", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)
