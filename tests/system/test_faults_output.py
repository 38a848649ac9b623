"""Fault injection on the core (``cephaloinit exec`` as a true PID 1): floods of
output, an endless line, our own stdout blocked or closed, 10,000 orphans.

The core is the same code ``run`` uses for Squid's pipes (children.LineRelay,
logs.write_line, Children.reap); ``exec`` is the simplest vehicle for it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from cephaloinit import procfs
from cephaloinit.children import MAX_LINE, SPLIT_MARKER

from .. import proctree
from .conftest import REPO, poll

pytestmark = pytest.mark.timeout(90)

PROGRAMS = os.path.join(REPO, "tests", "system", "programs")
PY = sys.executable
MiB = 1024 * 1024


def pid_of(init) -> int:
    """cephaloinit's host PID, once unshare has forked it."""
    def found():
        try:
            return init.pid
        except (IndexError, FileNotFoundError):
            return None
    return poll(found, what="cephaloinit started")


def kib(status: dict, field: str) -> int:
    return int(status[field].split()[0])


class StreamCheck:
    """Reassembles what the init relayed (stdout and stderr merged, as a
    container log is) and checks it against what flood.py wrote, without
    keeping 130 MB of lines in memory."""

    LENGTHS = [79] * 500 + [0, 1, 4086, 4087, 20000, 65525, 65526, 65527, 100000, 300000, 999]

    def __init__(self):
        self.partial = b""
        self.numbered = 0  # stdout lines seen whole and in order
        self.numbered_bytes = 0
        self.pieces: dict[bytes, bytearray] = {}  # first byte -> pieces of a split line so far
        self.endless = 0  # bytes of the stderr line
        self.endless_pieces = 0
        self.done = False
        self.problems: list[str] = []

    def feed(self, data: bytes) -> None:
        *complete, self.partial = (self.partial + data).split(b"\n")
        for line in complete:
            self.line(line)

    def line(self, line: bytes) -> None:
        if line in (b"flood done", b"flood ready"):
            self.done = True
            return
        endless = line[:1] == b"~"  # stderr's line; stdout's are digits and a-z
        if line.endswith(SPLIT_MARKER):
            piece = line[: -len(SPLIT_MARKER)]
            if len(piece) != MAX_LINE:
                self.problems.append(f"a split piece of {len(piece)} bytes")
            if endless:
                self.endless += len(piece)
                self.endless_pieces += 1
            else:
                self.pieces.setdefault(b"n", bytearray()).extend(piece)
            return
        if endless:
            self.endless += len(line)
            return
        whole = bytes(self.pieces.pop(b"n", b"")) + line
        self.check_numbered(whole)

    def check_numbered(self, line: bytes) -> None:
        number = self.numbered
        length = self.LENGTHS[number % len(self.LENGTHS)]
        expected_head = f"{number:09d} ".encode()
        if (not line.startswith(expected_head) or len(line) != 10 + length
                or line[10:] != bytes([97 + number % 26]) * length):
            if len(self.problems) < 5:
                self.problems.append(f"line {number}: got {line[:40]!r}... ({len(line)} bytes)")
        self.numbered += 1
        self.numbered_bytes += len(line) + 1


def test_a_100_mb_flood_and_a_32_mb_line_keep_memory_bounded_and_lose_no_line(start):
    stdout_bytes, endless_bytes = 100 * MiB, 32 * MiB + 1000
    init = start(["exec", "--relay-output", "--", PY, f"{PROGRAMS}/flood.py", str(stdout_bytes), str(endless_bytes)])
    init.wait_for_line("flood ready")
    pid = init.pid
    baseline = kib(procfs.status(pid), "VmHWM")  # start-up included
    check = StreamCheck()
    fd = init.process.stdout.fileno()
    init.signal(signal.SIGUSR1)  # forwarded: the flood starts
    started = time.monotonic()
    while not check.done:
        assert time.monotonic() - started < 60, "flood not relayed within 60 s (deadlock?)"
        data = os.read(fd, MiB)
        assert data, f"EOF before the end of the flood: {init.process.poll()}"
        check.feed(data)
    took = time.monotonic() - started
    status = procfs.status(pid)
    hwm, rss = kib(status, "VmHWM"), kib(status, "VmRSS")
    init.signal(signal.SIGTERM)
    while data := os.read(fd, MiB):  # stderr's last bytes may come after stdout's "flood done"
        check.feed(data)
    assert init.process.wait(timeout=10) == 0
    assert check.problems == []
    assert check.numbered_bytes >= stdout_bytes
    assert check.endless == endless_bytes  # every byte, in 64 KiB pieces
    assert check.endless_pieces == endless_bytes // MAX_LINE
    # Per pipe: at most 64 KiB pending plus one 64 KiB read; the interpreter
    # itself is ~10 MiB. 100 MB went through; the peak stays within a few MiB of idle.
    assert hwm - baseline < 8 * 1024, (baseline, hwm)
    assert hwm < 32 * 1024, hwm
    print(f"FIGURE flood {stdout_bytes // MiB} MiB + {endless_bytes // MiB} MiB endless line in "
          f"{took:.1f}s: cephaloinit VmHWM before {baseline} KiB, VmHWM {hwm} KiB, VmRSS after {rss} KiB, "
          f"{check.numbered} lines")


def stdout_full(init) -> bool:
    """Whether the pipe that is cephaloinit's stdout is full: it cannot write
    more until we read (whatever it waits in: write() or select())."""
    import fcntl
    import termios
    available = fcntl.ioctl(init.process.stdout.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(available, sys.byteorder) >= 64 * 1024 - 4096


def test_term_while_our_stdout_is_blocked_is_forwarded_and_no_line_is_lost(start, tmp_path):
    record = tmp_path / "signals"
    os.chmod(tmp_path, 0o777)
    init = start(["exec", "--relay-output", "--", PY, f"{PROGRAMS}/chatter.py", str(record), "7"])
    pid = pid_of(init)
    # We read nothing: the pipe fills. The init queues what it cannot write and
    # stops reading the child (back-pressure), but its loop keeps running.
    poll(lambda: stdout_full(init), what="cephaloinit's stdout full")
    init.signal(signal.SIGTERM)
    poll(lambda: record.exists(), what="TERM forwarded while stdout is blocked")
    assert record.read_text() == "got SIGTERM\n"
    assert proctree.is_alive(pid) and stdout_full(init)  # waiting for the reader, not gone
    assert init.wait(timeout=10) == 7  # the reader resumes: the rest comes, the code passed on
    assert b"chatter ready" in init.lines[0]
    numbers = [int(line.split()[0]) for line in init.lines[1:] if line]
    assert numbers == list(range(len(numbers)))  # every line the child wrote, in order, whole
    assert all(len(line) == 1010 for line in init.lines[1:] if line)


def test_term_while_our_stdout_is_blocked_is_acted_on_by_the_deadline(start, tmp_path):
    record = tmp_path / "signals"
    os.chmod(tmp_path, 0o777)
    init = start(["exec", "--relay-output", "--", PY, f"{PROGRAMS}/chatter.py", str(record), "7", "--ignore-term"],
                 env={"SHUTDOWN_TIMEOUT": "1"})
    pid = pid_of(init)
    poll(lambda: stdout_full(init), what="cephaloinit's stdout full")
    child = procfs.children(pid)[0].pid
    init.signal(signal.SIGTERM)
    try:
        # The reader never comes back: within a 5 s stall limit + SHUTDOWN_TIMEOUT the
        # command must have been told (TERM) and then killed (SIGKILL).
        poll(lambda: not proctree.is_alive(child), timeout=8, what="command killed at the deadline")
        assert record.read_text() == "got SIGTERM\n"
    finally:
        init.wait(timeout=10)  # resume reading, so the run ends either way


def test_with_our_stdout_closed_signals_are_still_forwarded_and_the_exit_code_passed_on(start, tmp_path):
    record = tmp_path / "signals"
    os.chmod(tmp_path, 0o777)
    init = start(["exec", "--relay-output", "--", PY, f"{PROGRAMS}/chatter.py", str(record), "5"])
    init.wait_for_line("chatter ready")
    pid = pid_of(init)
    init._selector.unregister(init.process.stdout)
    init.process.stdout.close()  # every write of the init now fails with EPIPE
    init.signal(signal.SIGHUP)
    poll(lambda: record.exists() and "got SIGHUP" in record.read_text(), what="HUP forwarded")
    assert proctree.is_alive(pid)  # no SIGPIPE death, no exception
    init.signal(signal.SIGUSR1)
    poll(lambda: "got SIGUSR1" in record.read_text(), what="USR1 forwarded")
    init.signal(signal.SIGTERM)
    assert init.process.wait(timeout=10) == 5
    assert record.read_text() == "got SIGHUP\ngot SIGUSR1\ngot SIGTERM\n"


def test_10000_orphans_are_all_reaped(start):
    # dash forks cheaply: each (:&) is a subshell that backgrounds ':' and exits,
    # leaving the background process to be re-parented to PID 1.
    script = ("i=0; while [ $i -lt 10000 ]; do (:&); i=$((i+1)); done; echo orphans made; "
              f"exec {PY} {PROGRAMS}/stubborn.py 0")
    init = start(["exec", "--", "sh", "-c", script], env={"LOG_LEVEL": "DEBUG"})
    started = time.monotonic()
    init.wait_for_line("orphans made", timeout=60)
    init.wait_for_line("ready")
    took = time.monotonic() - started
    poll(lambda: proctree.zombie_children(init.pid) == [], what="no zombie under PID 1")
    assert len(procfs.children(init.pid)) == 1  # only the command
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert "Reaped 10000 orphaned processes" in init.text()
    print(f"FIGURE orphans 10000 made and reaped in {took:.1f}s")
