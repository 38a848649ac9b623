"""``cephaloinit exec -- CMD``: the core alone, a small init for any command.

Forwards TERM, INT, HUP, QUIT, USR1 and USR2 to the command, reaps every
zombie, and once asked to stop gives everything SHUTDOWN_TIMEOUT seconds before
SIGKILL. Exits with the command's exit code, or 128+N if signal N killed it.
"""

from __future__ import annotations

import os
import signal

from . import logs, signals
from .errors import Fatal
from .children import Child, Children, exit_code_for
from .logs import Logger
from .loop import Loop
from .settings import Settings

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Outside a PID namespace, orphans of our children would go to the host's
    init; as a child subreaper they come to us and our reaper collects them."""
    import ctypes  # only needed when not PID 1

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


class ExecInit:
    def __init__(self, wakeup_fd: int, settings: Settings, log: Logger):
        self.settings = settings
        self.log = log
        self.loop = Loop(wakeup_fd, self.handle_signals)
        self.children = Children(self.loop)
        logs.OUTPUT.attach(self.loop)  # from now on, a stalled reader never blocks PID 1
        self.command: Child | None = None
        self.deadline = None
        self.exit_code: int | None = None

    def run(self, argv: list[str]) -> int:
        if os.getpid() != 1:
            become_subreaper()
        try:
            self.command = self.children.spawn(
                argv[0], argv, os.environ, relay_output=not os.isatty(1)
            )
        except OSError as error:
            raise Fatal(f"cephaloinit exec: cannot run {argv[0]!r}: {error.strerror}") from None
        self.log.debug(f"Started {argv[0]} with PID {self.command.pid}")
        while self.exit_code is None:
            self.loop.run_once()
        self.log.debug(f"Reaped {self.children.orphans_reaped} orphaned processes")
        return self.exit_code

    def handle_signals(self, signums: list[int]) -> None:
        for signum in signums:
            if signum == signal.SIGCHLD:
                self.reap()
            else:
                self.forward(signum)

    def forward(self, signum: int) -> None:
        self.log.debug(f"Forwarding {signals.name(signum)} to PID {self.command.pid}")
        self.children.send(self.command, signum)
        if signum in signals.STOPPING and self.deadline is None:
            timeout = self.settings.shutdown_timeout
            self.deadline = self.loop.call_later(timeout, self.on_deadline)

    def on_deadline(self) -> None:
        self.log.warning(
            f"Shutdown timeout of {self.settings.shutdown_timeout:g}s passed; "
            "sending SIGKILL to every remaining process"
        )
        self.children.kill_everything()

    def reap(self) -> None:
        for child in self.children.reap():
            self.children.drain(child)
            if child is self.command:
                self.log.debug(f"{child.name} (PID {child.pid}) {child.describe()}")
                self.exit_code = exit_code_for(child.status)
