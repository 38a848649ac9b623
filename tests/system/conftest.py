"""cephaloinit as a true PID 1: each test gets its own PID namespace via unshare."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time

import pytest

from cephaloinit import procfs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pid_namespaces_usable() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, timeout=10)
    return probe.returncode == 0


PID_NAMESPACES = _pid_namespaces_usable()


def poll(predicate, timeout: float = 10, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; for facts that have
    no event to wait on (a file appearing, a process state in /proc)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.01)


UNPRIVILEGED_UID = 1234567  # an arbitrary UID in group 0, as OpenShift assigns


def pid_one_command(command: list[str], uid: int | None = None) -> list[str]:
    """``command`` as PID 1 of a new PID namespace. With ``uid``, also with a
    private /dev/shm (Squid's shared memory) and /var/run/squid (Squid SMP's
    sockets), and run as that UID in group 0."""
    if uid is None:
        return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *command]
    privileged_setup = ("mount -t tmpfs -o mode=1777 tmpfs /dev/shm && "
                        # Squid SMP's sockets: writable by group 0, as in the image
                        "mkdir -p /var/run/squid && mount -t tmpfs -o mode=0775,gid=0 tmpfs /var/run/squid && "
                        "exec \"$@\"")
    return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
            "sh", "-c", privileged_setup, "sh",
            "setpriv", f"--reuid={uid}", "--regid=0", "--clear-groups", *command]


class Init:
    """A running cephaloinit; stdout and stderr merged, read as lines with deadlines."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, pid_one: bool = True,
                 uid: int | None = None, wrapper: list[str] | None = None):
        # wrapper: a command that execs the rest (e.g. to start it with a descriptor closed)
        command = [*(wrapper or []), sys.executable, "-m", "cephaloinit", *args]
        if pid_one:
            command = pid_one_command(command, uid)
        full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **(env or {})}
        # coverage's subprocess patch finds its settings through COVERAGE_* variables
        full_env.update({k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")})
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=full_env, cwd=REPO)
        self.pid_one = pid_one
        self.lines: list[bytes] = []
        self._partial = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)
        self._eof = False

    @property
    def pid(self) -> int:
        """Host PID of cephaloinit (inside its namespace it is 1)."""
        if not self.pid_one:
            return self.process.pid
        with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as file:
            return int(file.read().split()[0])

    def children(self) -> list[procfs.Stat]:
        return procfs.children(self.pid)

    def _read_some(self, timeout: float) -> bool:
        if self._eof or not self._selector.select(timeout):
            return False
        data = os.read(self.process.stdout.fileno(), 1 << 20)
        if not data:
            self._eof = True
            if self._partial:
                self.lines.append(self._partial)
            return False
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines.extend(complete)
        return True

    def wait_for_line(self, text: str, timeout: float = 10) -> bytes:
        return self.wait_for_lines(text, 1, timeout)[0]

    def wait_for_lines(self, text: str, count: int, timeout: float = 10) -> list[bytes]:
        """Wait until ``count`` lines contain ``text``; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if text.encode() in line]
            if len(found) >= count:
                return found[:count]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self._read_some(remaining) and self._eof):
                raise AssertionError(f"{text!r} not seen; output so far: {self.text()[-2000:]}")

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 10) -> int:
        """Read everything until EOF, then return the exit code."""
        deadline = time.monotonic() + timeout
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("cephaloinit did not exit in time")
            self._read_some(remaining)
        return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))

    def text(self) -> str:
        return b"\n".join(self.lines + [self._partial]).decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            # Kill PID 1 itself: that ends its namespace. unshare's --kill-child
            # alone is not enough, since setpriv's UID change clears the
            # parent-death signal.
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._selector.close()
        self.process.stdout.close()


@pytest.fixture
def start():
    if not PID_NAMESPACES:
        pytest.skip("needs root and unshare(1) for PID namespaces")
    started: list[Init] = []

    def _start(args, env=None, pid_one=True, uid=None, wrapper=None) -> Init:
        init = Init(args, env, pid_one, uid, wrapper)
        started.append(init)
        return init

    yield _start
    for init in started:
        init.stop()
