"""The operating system as the core sees it: one thin seam.

Everything the core does to processes and time goes through a ``Host``: the
clock, the wait for events (a selector), starting a program, signalling one
process or all of them, and ``waitpid``. ``HOST`` is the real one; a unit test
hands the supervisor a stand-in and drives a whole run without a process
(tests/unit/fakehost.py), the way Supervisor's tests use DummyOptions. Only
these calls go through the seam; pipes, files and /proc (below ``proc``) stay
real.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import time
from typing import Mapping, NoReturn

from . import procfs, signals

EXEC_FAILED = 127  # a forked child that could not exec leaves with this

# (posix_spawn's file action, source fd, target fd): only dup2 actions are used.
FileActions = list[tuple[int, int, int]]


def _take_process_group() -> None:
    """In the child: lead a process group of its own, and the terminal's
    foreground when our group had it, so that CMD may read its terminal."""
    try:
        foreground = os.tcgetpgrp(0) == os.getpgrp()
    except OSError:  # no terminal on stdin
        foreground = False
    os.setpgid(0, 0)
    if foreground:
        os.tcsetpgrp(0, os.getpgrp())


def _exec_in_child(argv: list[str], env: Mapping[str, str], actions: FileActions,
                   process_group: bool, inherited: signals.Inherited | None,
                   error_write: int) -> NoReturn:
    """The forked child: only exec or _exit leave this function."""
    try:
        signal.set_wakeup_fd(-1)
        ignored = inherited.ignored if inherited is not None else frozenset()
        for signum in signals.RESET_IN_CHILDREN:
            signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)
        if process_group:
            _take_process_group()
        for _, source, target in actions:
            os.dup2(source, target)
        signal.pthread_sigmask(signal.SIG_SETMASK, inherited.mask if inherited is not None else ())
        os.execvpe(argv[0], argv, env)
    except OSError as error:
        os.write(error_write, str(error.errno or errno.EINVAL).encode())
    except BaseException:  # the parent must hear of any failure, or it waits for nothing
        os.write(error_write, str(errno.EINVAL).encode())
    finally:
        os._exit(EXEC_FAILED)


def _fork_exec(argv: list[str], env: Mapping[str, str], actions: FileActions,
               process_group: bool, inherited: signals.Inherited | None) -> int:
    """Start ``argv`` by fork and exec; return its pid or raise its exec's OSError.

    posix_spawn cannot do this job: glibc's leaves its internal signals 32 and
    33 ignored in the child, and the child cannot make itself the terminal's
    foreground group. Every signal stays blocked from before the fork until
    the child's dispositions are set, so no handler of ours ever runs in it.
    """
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            _exec_in_child(argv, env, actions, process_group, inherited, error_write)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(error_write)
    with open(error_read, "rb") as errors:
        reported = errors.read()  # EOF at the child's exec: the pipe is close-on-exec
    if reported:
        # The child has exited; the reaper collects it as an orphan.
        number = int(reported)
        raise OSError(number, os.strerror(number), argv[0])
    return pid


class Host:
    """The real operating system."""

    proc = procfs.PROC

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    def selector(self) -> selectors.BaseSelector:
        return selectors.DefaultSelector()

    def spawn(self, argv: list[str], env: Mapping[str, str], actions: FileActions,
              process_group: bool = False, inherited: signals.Inherited | None = None) -> int:
        """Start ``argv`` with ``actions`` applied; return its pid, or raise
        OSError when it cannot be run. Without a process group or an inherited
        signal state, posix_spawn: default dispositions and an empty mask."""
        if inherited is None and not process_group:
            return os.posix_spawnp(argv[0], argv, env, file_actions=actions,
                                   setsigmask=(), setsigdef=signals.RESET_IN_CHILDREN)
        return _fork_exec(argv, env, actions, process_group, inherited)

    def kill(self, pid: int, signum: int) -> None:
        """Signal ``pid`` (a process group when negative); one that has
        exited but is not yet reaped is no error."""
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def kill_all(self, signum: int) -> None:
        """Signal every process below us. As PID 1, kill(-1) does exactly that
        (the caller is spared); elsewhere, walk the process tree."""
        if os.getpid() == 1:
            self.kill(-1, signum)
            return
        for pid in procfs.descendants(os.getpid(), self.proc):
            self.kill(pid, signum)

    def waitpid(self) -> tuple[int, int]:
        """One exited child as (pid, wait status), (0, 0) when none has exited
        yet; raises ChildProcessError when there is no child at all."""
        return os.waitpid(-1, os.WNOHANG)


HOST = Host()
