"""Squid's SMP mode: `workers N` with N > 1.

Under `squid -N` Squid ignores `workers` and runs one process. With more
than one worker it runs as `squid --foreground`: the master stays our child
and forks its kids (the workers `squid-1` .. `squid-N`, a coordinator
`squid-coord-K`, and a `squid-disk-K` per rock cache_dir), restarts a kid
that dies, and passes HUP, TERM and INT on to every kid. The kids are the
master's children, not ours: we find them in /proc by the name Squid gives
them as argv[0] ("(squid-1)"; their comm stays "squid"), and learn of a
kid's death through a pidfd, which works for a process that is not our
child. Measured facts and the reasons: docs/state-machine.md ("SMP").
"""

from __future__ import annotations

import os
import re
import signal
from typing import Callable, NamedTuple

from . import procfs
from .loop import Loop, Timer
from .squidconf import SquidConfig, c_integer

# Where Squid SMP binds its UNIX sockets: compiled in (Debian's
# --localstatedir=/var), not configurable. Its shared memory is in /dev/shm.
IPC_DIR = "/var/run/squid"
SHM_DIR = "/dev/shm"
# We never pass -n, so every kid's name starts with Squid's default service name.
WORKER_NAME = re.compile(r"squid-[0-9]+")
KID_CHECK_INTERVAL = 0.05  # how often to look for the kid Squid restarts
KID_RESTART_WAIT = 60.0  # Squid gives up on a kid that fails 5 times in a row quickly


def workers(config: SquidConfig) -> int:
    """The number of workers Squid's master starts: the last `workers` line
    as the master reads the config (``${process_number}`` is 0 for it, as
    squidconf reads it). A value Squid would refuse counts as 1: `squid -k
    parse` names it."""
    found = config.named("workers")
    if not found or not found[-1].args:
        return 1
    try:  # Squid's own reading: strtoll with base 0 (0x2 is 2, 010 is 8)
        return max(1, c_integer(found[-1].args[0]))
    except ValueError:
        return 1


def is_smp(config: SquidConfig) -> bool:
    return workers(config) > 1


def writable_directories(config: SquidConfig) -> list[tuple[str, str]]:
    """(directory, what needs it) that SMP mode adds to the writable ones."""
    if not is_smp(config):
        return []
    where = f"workers, {config.named('workers')[-1].where}"
    return [(IPC_DIR, where), (SHM_DIR, where)]


# -- finding the kids ----------------------------------------------------------
class Kid(NamedTuple):
    pid: int
    name: str  # squid-1, squid-coord-3, squid-disk-2

    @property
    def is_worker(self) -> bool:
        return WORKER_NAME.fullmatch(self.name) is not None


def kid_name(argv: list[str]) -> str | None:
    """The name Squid's master gives a kid as its argv[0]: "(squid-1)"."""
    if argv and len(argv[0]) > 2 and argv[0][0] == "(" and argv[0][-1] == ")":
        return argv[0][1:-1]
    return None


def kids(master: int, proc: str = procfs.PROC) -> list[Kid]:
    """The live kids of Squid's master process ``master``."""
    found = []
    for stat in procfs.all_stats(proc):
        if stat.ppid == master and stat.state not in ("Z", "X"):
            name = kid_name(procfs.cmdline(stat.pid, proc))
            if name is not None:
                found.append(Kid(stat.pid, name))
    return found


def serving_workers(master: int, listeners: set[int], proc: str = procfs.PROC) -> int:
    """How many workers hold one of the ``listeners`` (socket inodes). The
    coordinator opens a listening socket and hands it to each worker, so a
    worker that holds it is one that serves."""
    if not listeners:
        return 0
    return sum(1 for kid in kids(master, proc)
               if kid.is_worker and listeners & procfs.socket_inodes(kid.pid, proc))


# -- watching the kids -----------------------------------------------------------
class KidWatch:
    """Learns, without polling, when one of the master's kids dies (a pidfd
    turns readable), then looks every KID_CHECK_INTERVAL for the kid Squid
    starts in its place, for at most KID_RESTART_WAIT."""

    def __init__(self, loop: Loop, on_death: Callable[[Kid], None],
                 on_restart: Callable[[Kid], None], on_given_up: Callable[[str], None],
                 on_failure: Callable[[OSError], None]):
        self.loop = loop
        self.on_death = on_death
        self.on_restart = on_restart
        self.on_given_up = on_given_up
        self.on_failure = on_failure  # a successor cannot be watched: the watch ends
        self.master: int | None = None
        self.watched: dict[int, tuple[Kid, int]] = {}  # pid -> (kid, pidfd)
        self.missing: dict[str, float] = {}  # kid name -> when we stop waiting for it
        self.given_up: set[str] = set()  # kid names Squid stopped restarting
        self.check: Timer | None = None

    def start(self, master: int) -> None:
        self.master = master
        for kid in kids(master):
            self._watch(kid)
        if self.missing:
            self._schedule()

    def _watch(self, kid: Kid) -> bool:
        """Watch the kid; False if it is gone already (Squid will start it
        again, so it is missing). The caller schedules the next look."""
        try:
            pidfd = os.pidfd_open(kid.pid)
        except ProcessLookupError:
            self._gone(kid)
            return False
        # The kid may have died, and its PID gone to another process, since
        # we read /proc: the pidfd holds whichever process had the PID, so
        # what /proc shows now is that process.
        try:
            is_kid = self._is_kid(kid)
        except BaseException:  # out of descriptors, say: /proc cannot be read
            os.close(pidfd)
            raise
        if not is_kid:
            os.close(pidfd)
            self._gone(kid)
            return False
        self.watched[kid.pid] = (kid, pidfd)
        self.loop.add_reader(pidfd, lambda: self._died(kid.pid))
        return True

    def _gone(self, kid: Kid) -> None:
        self.missing.setdefault(kid.name, self.loop.clock() + KID_RESTART_WAIT)

    def _is_kid(self, kid: Kid) -> bool:
        found = procfs.stat(kid.pid)
        return (found is not None and found.ppid == self.master
                and kid_name(procfs.cmdline(kid.pid)) == kid.name)

    def _died(self, pid: int) -> None:
        kid, pidfd = self.watched.pop(pid)
        self.loop.remove_reader(pidfd)
        os.close(pidfd)
        self.missing[kid.name] = self.loop.clock() + KID_RESTART_WAIT
        self.on_death(kid)
        self._schedule()

    def _schedule(self) -> None:
        if self.check is None and self.master is not None:
            self.check = self.loop.call_later(KID_CHECK_INTERVAL, self._look)

    def _look(self) -> None:
        self.check = None
        watched = {kid.pid for kid, _ in self.watched.values()}
        for kid in kids(self.master):
            if kid.name not in self.missing or kid.pid in watched:
                continue
            try:
                if not self._watch(kid):
                    continue  # it died as we looked: still missing
            except OSError as error:  # out of fds, say: nothing more can be reported
                self.stop()
                self.on_failure(error)
                return
            del self.missing[kid.name]
            self.on_restart(kid)
        now = self.loop.clock()
        for name, until in list(self.missing.items()):
            if now >= until:
                del self.missing[name]
                self.given_up.add(name)
                self.on_given_up(name)
        if self.missing:
            self._schedule()

    def look_again(self) -> None:
        """After a reload: on HUP Squid's master forgets its kids' failures and
        starts again the kids it had given up on; look for them as for any
        kid that died."""
        deadline = self.loop.clock() + KID_RESTART_WAIT
        for name in self.given_up:
            self.missing.setdefault(name, deadline)
        self.given_up.clear()
        if self.missing:
            self._schedule()

    def stop(self, signum: int | None = None) -> None:
        """Stop watching (Squid is stopping or gone): nothing is reported any
        more. With ``signum``, send it to every kid still watched: through the
        pidfd, so never to another process that got a kid's PID."""
        for _, pidfd in self.watched.values():
            if signum is not None:
                try:
                    signal.pidfd_send_signal(pidfd, signum)
                except ProcessLookupError:
                    pass
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
        self.watched.clear()
        self.missing.clear()
        self.given_up.clear()
        if self.check is not None:
            self.check.cancel()
            self.check = None
        self.master = None
