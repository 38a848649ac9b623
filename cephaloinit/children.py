"""Children: spawning, relaying their output line by line, and the one reaper.

Children are started with ``os.posix_spawnp``, not ``subprocess``: a ``Popen``
object would call ``waitpid`` on its own pid, race with the reaper, and turn the
resulting ECHILD into a made-up exit code 0. Here only ``reap`` ever waits.
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Mapping

from . import logs, signals
from .host import HOST, Host
from .loop import Loop

MAX_LINE = 64 * 1024
SPLIT_MARKER = b" [cephaloinit: line longer than 64 KiB, continued on the next line]"
READ_SIZE = 64 * 1024
NOTIFY_FD = 3  # where a child finds its readiness pipe; also named in $NOTIFY_FD


def describe_status(status: int) -> str:
    """A wait status as text: 'exited with code 3', 'killed by SIGKILL'."""
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        text = f"killed by {signals.name(os.WTERMSIG(status))}"
        return text + " (core dumped)" if os.WCOREDUMP(status) else text
    return f"wait status {status}"


def exit_code_for(status: int) -> int:
    """The shell convention: the exit code, or 128+N for death by signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class LineRelay:
    """Turns a byte stream into whole lines, holding at most MAX_LINE bytes.

    A line longer than MAX_LINE is cut and the piece ends with SPLIT_MARKER, so
    a reader sees that it was split. At EOF a last line without a newline is
    completed with one.
    """

    def __init__(self, emit: Callable[[bytes], None], batch: bool = False):
        self.emit = emit
        # With batch, all whole lines of one read go out in one emit: one write
        # for a burst of access-log lines instead of one per line.
        self.batch = batch
        self.pending = bytearray()

    def feed(self, data: bytes) -> None:
        self.pending += data
        if self.batch and len(self.pending) <= MAX_LINE:  # then no line can be too long
            last = self.pending.rfind(b"\n")
            if last != -1:
                self.emit(bytes(self.pending[:last + 1]))
                del self.pending[:last + 1]
            return
        start = 0
        while True:
            newline = self.pending.find(b"\n", start)
            if newline == -1 or newline - start > MAX_LINE:
                if len(self.pending) - start <= MAX_LINE:
                    break
                self.emit(bytes(self.pending[start:start + MAX_LINE]) + SPLIT_MARKER + b"\n")
                start += MAX_LINE
                continue
            self.emit(bytes(self.pending[start:newline + 1]))
            start = newline + 1
        del self.pending[:start]

    def close(self) -> None:
        if self.pending:
            self.emit(bytes(self.pending) + b"\n")
            self.pending.clear()


class Child:
    """A process we started. ``status`` is set by the reaper, and only there."""

    def __init__(self, name: str, pid: int):
        self.name = name
        self.pid = pid
        self.status: int | None = None
        self.pipes: dict[int, LineRelay] = {}  # read fd -> its relay
        self.notify_fd: int | None = None

    @property
    def running(self) -> bool:
        return self.status is None

    def describe(self) -> str:
        return describe_status(self.status) if self.status is not None else "running"


def _spawn_fd(fd: int, target: int) -> int:
    """An fd that is not ``target`` itself: dup2 onto the same number would
    keep its close-on-exec flag and the child would never see it."""
    return os.dup(fd) if fd == target else fd


class Children:
    """The set of children, their output relays and the single reaper."""

    def __init__(self, loop: Loop, on_orphan: Callable[[int, int], None] | None = None,
                 host: Host = HOST):
        self.loop = loop
        self.host = host
        self.by_pid: dict[int, Child] = {}
        self.orphans_reaped = 0
        self.on_orphan = on_orphan  # called with (pid, wait status) of each orphan reaped
        self.all_reaped = False  # no child of ours, known or orphan, is left
        self.readers: dict[int, Callable[[], None]] = {}  # output pipe -> its read callback
        self.paused: set[int] = set()  # output pipes not read while our output is congested

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str],
              relay_output: bool = True, capture: Callable[[bytes], None] | None = None,
              notify: Callable[[bytes], None] | None = None, process_group: bool = False,
              inherited: signals.Inherited | None = None) -> Child:
        """Start ``argv`` with default signal dispositions and an empty mask.

        With ``relay_output`` its stdout and stderr are pipes relayed line by
        line to ours, or to ``capture`` when given; otherwise it shares our
        descriptors (for a terminal). With ``notify`` it gets a pipe on fd
        NOTIFY_FD, and ``notify`` receives what it writes there. With
        ``process_group`` it leads a process group of its own (and the
        terminal's foreground, when our group had it). With ``inherited`` it gets that
        signal mask and those ignored signals instead of the clean slate.
        Raises OSError when the program cannot be run.
        """
        env = dict(env)
        actions = []
        parent_ends: list[tuple[int, int]] = []  # (read end, our output fd or -1)
        child_ends: list[int] = []

        def give(target: int, our_fd: int) -> None:
            read_end, write_end = os.pipe()
            child_ends.append(write_end)
            actions.append((os.POSIX_SPAWN_DUP2, _spawn_fd(write_end, target), target))
            parent_ends.append((read_end, our_fd))

        if relay_output:
            give(1, logs.STDOUT)
            give(2, logs.STDERR)
        if notify is not None:
            give(NOTIFY_FD, -1)
            env["NOTIFY_FD"] = str(NOTIFY_FD)
        try:
            pid = self.host.spawn(argv, env, actions, process_group, inherited)
        except OSError:
            for read_end, _ in parent_ends:
                os.close(read_end)
            raise
        finally:
            for write_end in child_ends:
                os.close(write_end)
            for _, source, target in actions:
                if source not in child_ends:
                    os.close(source)

        child = Child(name, pid)
        self.by_pid[pid] = child
        for read_end, our_fd in parent_ends:
            os.set_blocking(read_end, False)
            if our_fd == -1:
                child.notify_fd = read_end
                self.loop.add_reader(read_end, lambda fd=read_end: self._read_notify(child, fd, notify))
            else:
                if capture is not None:
                    relay = LineRelay(capture)
                else:
                    relay = LineRelay(lambda lines, out=our_fd: logs.write_line(out, lines), batch=True)
                child.pipes[read_end] = relay
                self.readers[read_end] = lambda fd=read_end: self._read_output(child, fd)
                self.loop.add_reader(read_end, self.readers[read_end])
        return child

    # -- pipes ---------------------------------------------------------------
    def _read_output(self, child: Child, fd: int) -> None:
        if logs.OUTPUT.congested:  # back-pressure: the child blocks on its full pipe
            self.loop.watch(fd, 0)
            self.paused.add(fd)
            return
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        if data:
            child.pipes[fd].feed(data)
        else:
            self._close_pipe(child, fd)

    def _close_pipe(self, child: Child, fd: int) -> None:
        child.pipes.pop(fd).close()
        del self.readers[fd]
        self.paused.discard(fd)
        self.loop.watch(fd, 0)
        os.close(fd)

    def resume_reading(self) -> None:
        """Our output has room again: read the pipes paused while it had none."""
        for fd in self.paused:
            self.loop.add_reader(fd, self.readers[fd])
        self.paused.clear()

    def _read_notify(self, child: Child, fd: int, notify: Callable[[bytes], None]) -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        if data:
            notify(data)
        else:
            self._close_notify(child)

    def _close_notify(self, child: Child) -> None:
        if child.notify_fd is not None:
            self.loop.remove_reader(child.notify_fd)
            os.close(child.notify_fd)
            child.notify_fd = None

    def drain(self, child: Child) -> None:
        """Relay everything the child's pipes hold now, then close them.

        Called once the child has exited, so its last lines are never lost;
        a grandchild still holding a pipe open does not keep us waiting.
        """
        for fd in list(child.pipes):
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                if not data:
                    break
                child.pipes[fd].feed(data)
            self._close_pipe(child, fd)
        self._close_notify(child)

    # -- the reaper ----------------------------------------------------------
    def reap(self) -> list[Child]:
        """Collect every exited child, ours or an orphan; return ours.

        The only ``waitpid`` in the program. SIGCHLD is a hint, not a count:
        one wakeup may stand for many exits, so loop until nothing is left.
        """
        exited = []
        while True:
            try:
                pid, status = self.host.waitpid()
            except ChildProcessError:
                self.all_reaped = True
                break
            if pid == 0:
                self.all_reaped = False
                break
            child = self.by_pid.pop(pid, None)
            if child is None:
                self.orphans_reaped += 1
                if self.on_orphan is not None:
                    self.on_orphan(pid, status)
                continue
            child.status = status
            exited.append(child)
        return exited

    # -- signals -------------------------------------------------------------
    def send(self, child: Child, signum: int, group: bool = False) -> None:
        """Signal ``child``, or with ``group`` the process group it leads."""
        if child.running:
            self.host.kill(-child.pid if group else child.pid, signum)

    def kill_everything(self) -> None:
        self.signal_everything(signal.SIGKILL)

    def signal_everything(self, signum: int) -> None:
        """Signal every process below us, ours and orphans alike."""
        self.host.kill_all(signum)
