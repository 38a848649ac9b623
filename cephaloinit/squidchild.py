"""Squid as the supervisor's child: when it counts as ready, its drain, and
(SMP) its kids' deaths and restarts reported.

Squid has no readiness notification we can use, so start-up, a reload and
the drain are the moments the loop checks on a timer; none of these timers
exists otherwise.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

from . import smp, squid
from .children import Child
from .core import Core
from .logs import Logger
from .loop import Loop
from .squidconf import SquidConfig

READINESS_CHECK_INTERVAL = 0.01
DRAIN_CHECK_INTERVAL = 0.1
RELOAD_CLOSE_WAIT = 1.0  # how long a reload may take to close Squid's ports


def accepting(config: SquidConfig, port: int, pid: int, workers: int, proc: str) -> bool:
    """Ready: the pid file is written and the port is in LISTEN state, held
    by Squid itself or, with SMP, by every one of its workers."""
    if config.pid_file and not os.path.exists(config.pid_file):
        return False
    if workers > 1:
        return squid.listening_workers(port, pid, proc) >= workers
    return squid.listening(port, pid, proc)


class Drain:
    """After TERM, Squid waits its whole shutdown_lifetime even when idle; once
    its last client connection is gone, SIGINT ends that wait (so does a
    second stop signal, at once)."""

    def __init__(self, core: Core):
        self.core = core
        self.interrupted = False

    def start(self, child: Child, ports: tuple[int, ...]) -> None:
        self.core.children.send(child, signal.SIGTERM)
        self.watch(child, ports)

    def watch(self, child: Child, ports: tuple[int, ...]) -> None:
        if not child.running or self.interrupted:
            return
        if squid.established_connections(ports, self.core.host.proc) == 0:
            self.interrupt(child)
        else:
            self.core.loop.call_later(DRAIN_CHECK_INTERVAL, lambda: self.watch(child, ports))

    def interrupt(self, child: Child) -> None:
        self.interrupted = True
        self.core.children.send(child, signal.SIGINT)


class Kids:
    """SMP: the kids of Squid's master as the supervisor reports them. Squid
    restarts a kid that dies but says so only to syslog, which a container
    lacks: each death is logged here, and each restart logged and counted."""

    def __init__(self, loop: Loop, log: Logger, on_restart: Callable[[], None]):
        self.log = log
        self.on_restart = on_restart  # publish: the count is in /metrics
        self.restarts = 0
        self.watch = smp.KidWatch(loop, self.died, self.restarted, self.given_up,
                                  self.cannot_watch)

    def start(self, master: int) -> None:
        try:
            self.watch.start(master)
        except OSError as error:  # no pidfd_open: an old kernel, or a seccomp filter
            self.watch.stop()
            self.cannot_watch(error)

    def cannot_watch(self, error: OSError) -> None:
        self.log.warning(f"Cannot watch Squid's kids (pidfd_open: {error.strerror}); "
                         "Squid still restarts a kid that dies, but that is not logged")

    def stop(self, signum: int | None = None) -> None:
        self.watch.stop(signum)

    def reloaded(self) -> None:
        self.watch.look_again()

    def died(self, kid: smp.Kid) -> None:
        self.log.warning(f"Squid kid {kid.name} (PID {kid.pid}) exited; Squid's master "
                         "restarts it")

    def restarted(self, kid: smp.Kid) -> None:
        self.restarts += 1
        self.log.info(f"Squid restarted its kid {kid.name} (PID {kid.pid})")
        self.on_restart()

    def given_up(self, name: str) -> None:
        self.log.warning(f"Squid did not restart its kid {name} within "
                         f"{smp.KID_RESTART_WAIT:g}s (it gives up on a kid that keeps failing); "
                         "its other kids serve on")
