"""Short helper commands (``squid -k parse``, ``squid -z``, certgen) run for
the validators: each is our child like any other, reaped by the one reaper,
its output captured for the error message, bounded by a deadline, and a stop
signal while it runs is still honoured (``wait_until`` raises)."""

from __future__ import annotations

import collections
import os
import signal
from typing import Callable

from . import redact
from .children import Children, exit_code_for
from .errors import Fatal
from .validators import HelperResult

OUTPUT_LINES = 50  # what a helper's error message can quote

WaitUntil = Callable[..., bool]  # Supervisor.wait_until


class Runner:
    def __init__(self, children: Children, wait_until: WaitUntil):
        self.children = children
        self.wait_until = wait_until

    def run(self, name: str, argv: list[str], timeout: float) -> HelperResult:
        """Run ``argv`` as our child, its output captured."""
        output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        try:
            helper = self.children.spawn(
                name, argv, os.environ,
                # Helpers quote what they choke on: never let that be key material.
                capture=lambda line: output.append(redact.line(line.decode("utf-8", "replace").rstrip())))
        except OSError as error:
            raise Fatal(f"Cannot run {name} ({argv[0]}): {error.strerror}") from None
        if not self.wait_until(lambda: not helper.running, self.children.loop.clock() + timeout):
            self.children.send(helper, signal.SIGKILL)
            self.wait_until(lambda: not helper.running, interruptible=False)
            raise Fatal(f"{name} did not finish within {timeout:g}s")
        return HelperResult(exit_code_for(helper.status), list(output))
