"""``cephaloinit exec`` against what tini and dumb-init do (docs/exec.md), each
behaviour as a true PID 1 and as a child subreaper outside a namespace."""

import contextlib
import os
import pty
import signal
import stat
import subprocess
import sys
import time

import pytest

from cephaloinit import procfs, signals

from .conftest import REPO, poll

from .. import proctree
from ..signal_state import ignored_in_a_subprocess

PROGRAMS = os.path.join(REPO, "tests", "system", "programs")
PY = sys.executable
MARKER = signal.SIGRTMAX  # forwarded after each signal under test; highest number, so seen last
# docs/exec.md: CHLD is ours; the synchronous ones and the terminal stops are ignored.
NOT_FORWARDED = {signal.SIGCHLD, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS,
                 signal.SIGFPE, signal.SIGSEGV, signal.SIGSYS, signal.SIGTTIN, signal.SIGTTOU}
# glibc keeps 32 and 33 for itself: no program can handle or ignore them
# through Python or libc (docs/exec.md); KILL and STOP cannot be caught.
UNTESTABLE = {32, 33, signal.SIGKILL, signal.SIGSTOP, MARKER}
EVERY_SIGNAL = [s for s in range(1, int(signal.SIGRTMAX) + 1) if s not in UNTESTABLE]


def program(name, *args):
    return [PY, os.path.join(PROGRAMS, name), *map(str, args)]


@pytest.fixture(params=["pid1", "subreaper"])
def mode(request):
    return request.param


@pytest.fixture
def run(start, mode):
    """``start`` in the mode under test. Outside a namespace, what a failed test
    left running is not ended with cephaloinit: end it here."""
    started = []

    def _run(args, env=None):
        init = start(args, env=env, pid_one=(mode == "pid1"))
        started.append(init)
        return init

    yield _run
    for init in started:
        if not init.pid_one and init.process.poll() is None:
            for pid in procfs.descendants(init.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def command_pid(init, name_part: str) -> int:
    """Host PID of the descendant whose comm contains ``name_part``."""
    def find():
        for pid in procfs.descendants(init.pid):
            found = procfs.stat(pid)
            if found and name_part in found.comm:
                return pid
        return None
    return poll(find, what=f"a {name_part} process")


# -- 1. signals ------------------------------------------------------------------------

def test_every_signal_is_survived_and_forwarded_unless_documented_otherwise(run):
    init = run(["exec", "--", *program("signals_seen.py")], env={"SHUTDOWN_TIMEOUT": "60"})
    init.wait_for_line("parent ready")
    markers = 0
    for signum in EVERY_SIGNAL:
        init.signal(signum)
        if signum in NOT_FORWARDED:
            # Only to know that it has been dealt with: two signals pending at
            # once may reach a handler in either order.
            init.signal(MARKER)
            markers += 1
            init.wait_for_lines(f"parent got {int(MARKER)}", markers)
        else:
            init.wait_for_line(f"parent got {signum}")
        assert proctree.is_alive(init.pid), f"died of {signals.name(signum)}"
        assert procfs.stat(init.pid).state != "T", f"stopped by {signals.name(signum)}"
    init.signal(MARKER)
    init.wait_for_lines(f"parent got {int(MARKER)}", markers + 1)
    seen = {int(line.split()[-1]) for line in init.lines if line.startswith(b"parent got ")}
    assert seen & NOT_FORWARDED == set()
    os.kill(command_pid(init, "python"), signal.SIGKILL)
    assert init.wait() == 128 + signal.SIGKILL


def test_tstp_is_forwarded_and_cephaloinit_itself_does_not_stop(run):
    init = run(["exec", "--", *program("signals_seen.py")])
    init.wait_for_line("parent ready")
    init.signal(signal.SIGTSTP)
    init.wait_for_line(f"parent got {int(signal.SIGTSTP)}")
    assert procfs.stat(init.pid).state != "T"
    init.signal(signal.SIGCONT)
    init.wait_for_line(f"parent got {int(signal.SIGCONT)}")
    os.kill(command_pid(init, "python"), signal.SIGKILL)
    assert init.wait() == 128 + signal.SIGKILL


# -- 2. exit codes ---------------------------------------------------------------------

def test_a_command_not_found_exits_127(run):
    init = run(["exec", "--", "/no/such/program"])
    assert init.wait() == 127
    assert init.lines[-1].endswith(
        b"[ERROR] cephaloinit exec: cannot run '/no/such/program': No such file or directory")
    assert b"Traceback" not in b"\n".join(init.lines)


def test_a_command_that_is_not_executable_exits_126(run, tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    init = run(["exec", "--", str(script)])
    assert init.wait() == 126
    assert init.lines[-1].endswith(
        f"[ERROR] cephaloinit exec: cannot run '{script}': Permission denied".encode())


# -- 3. process groups -----------------------------------------------------------------

def test_cmd_leads_a_process_group_of_its_own(run):
    init = run(["exec", "--", "cat", "/proc/self/stat"])
    assert init.wait() == 0
    line = next(line.decode() for line in init.lines if b"(cat)" in line)
    pid, pgrp = int(line.split()[0]), int(line.rsplit(")", 1)[1].split()[2])
    assert pgrp == pid


@pytest.mark.parametrize("how", ["--process-group", "-g", "EXEC_SIGNAL_GROUP=1"])
def test_with_group_signalling_a_forwarded_signal_reaches_the_whole_group(run, how):
    option, env = ([], {"EXEC_SIGNAL_GROUP": "1"}) if "=" in how else ([how], {})
    init = run(["exec", *option, "--", *program("signals_seen.py", "twice")], env=env)
    init.wait_for_line("parent ready")
    init.wait_for_line("child ready")
    init.signal(signal.SIGUSR1)
    init.wait_for_line(f"parent got {int(signal.SIGUSR1)}")
    init.wait_for_line(f"child got {int(signal.SIGUSR1)}")
    os.killpg(command_pid(init, "python"), signal.SIGKILL)
    assert init.wait() == 128 + signal.SIGKILL


def test_without_group_signalling_only_cmd_gets_a_forwarded_signal(run):
    init = run(["exec", "--", *program("signals_seen.py", "twice")])
    init.wait_for_line("parent ready")
    init.wait_for_line("child ready")
    init.signal(signal.SIGUSR1)
    init.wait_for_line(f"parent got {int(signal.SIGUSR1)}")
    # The child reports the lowest pending signal first: had USR1 reached it,
    # it would report USR1 before this USR2.
    os.killpg(command_pid(init, "python"), signal.SIGUSR2)
    init.wait_for_line(f"child got {int(signal.SIGUSR2)}")
    assert f"child got {int(signal.SIGUSR1)}".encode() not in init.lines
    os.killpg(command_pid(init, "python"), signal.SIGKILL)
    assert init.wait() == 128 + signal.SIGKILL


TERMINAL_PROBE = ("import os; print('foreground' if os.tcgetpgrp(0) == os.getpgrp() "
                  "else 'background', flush=True)")


def on_a_terminal(in_foreground: bool) -> str:
    """What CMD says of itself when exec runs on a new pseudo-terminal, in
    the terminal's foreground process group or in a background one."""
    argv = [PY, "-m", "cephaloinit", "exec", "--", PY, "-c", TERMINAL_PROBE]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO}
    pid, terminal = pty.fork()
    if pid == 0:  # a session leader, its group in the foreground
        try:
            if not in_foreground and os.fork() == 0:
                os.setpgid(0, 0)
            elif not in_foreground:
                os._exit(os.waitstatus_to_exitcode(os.wait()[1]))
            os.execve(PY, argv, env)
        finally:
            os._exit(1)
    output = b""
    with contextlib.suppress(OSError):  # EIO once nothing holds the terminal open
        while chunk := os.read(terminal, 4096):
            output += chunk
    os.close(terminal)
    os.waitpid(pid, 0)
    return output.decode().strip()


@pytest.mark.timeout(30)
def test_on_a_terminal_cmd_gets_the_foreground_that_we_had():
    assert on_a_terminal(in_foreground=True) == "foreground"


@pytest.mark.timeout(30)
def test_on_a_terminal_cmd_does_not_take_a_foreground_we_did_not_have():
    assert on_a_terminal(in_foreground=False) == "background"


# -- 4. inherited signal state ---------------------------------------------------------

@contextlib.contextmanager
def started_with(ignored: int, blocked: int):
    """What we start while inside gets ``ignored`` ignored and ``blocked`` blocked."""
    previous = signal.signal(ignored, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {blocked})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {blocked})
        signal.signal(ignored, previous)


def mask_of(signums) -> int:
    return sum(1 << (int(s) - 1) for s in signums)


def test_cmd_inherits_the_ignored_signals_and_mask_we_were_started_with_and_nothing_else(run):
    with started_with(ignored=signal.SIGHUP, blocked=signal.SIGUSR1):
        ours = ignored_in_a_subprocess()  # HUP, and what this test run had ignored when it began
        init = run(["exec", "--", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    assert init.wait() == 0
    fields = dict(line.decode().split(":\t") for line in init.lines if line.startswith(b"Sig"))
    assert ours & mask_of([signal.SIGHUP])
    assert int(fields["SigIgn"], 16) == ours  # not PIPE: Python's own, not ours to pass on
    assert int(fields["SigBlk"], 16) == mask_of([signal.SIGUSR1])


def test_a_signal_blocked_when_we_were_started_is_still_forwarded(run):
    with started_with(ignored=signal.SIGHUP, blocked=signal.SIGUSR2):
        init = run(["exec", "--", *program("signals_seen.py")])
    init.wait_for_line("parent ready")
    init.signal(signal.SIGUSR2)
    init.wait_for_line(f"parent got {int(signal.SIGUSR2)}")
    os.kill(command_pid(init, "python"), signal.SIGKILL)
    assert init.wait() == 128 + signal.SIGKILL


# -- 5. output of processes that outlive CMD -------------------------------------------

def test_a_process_writing_after_cmd_exited_loses_nothing(run):
    init = run(["exec", "--", *program("outlived.py")])
    init.wait_for_line("ready")
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert b"written after the command exited" in init.lines
    assert b"BrokenPipe" not in b"\n".join(init.lines)


def our_stdout(init) -> str:
    return f"pipe:[{os.fstat(init.process.stdout.fileno()).st_ino}]"


def test_by_default_cmd_writes_to_our_stdout_itself(run):
    init = run(["exec", "--", "readlink", "/proc/self/fd/1"])
    assert init.wait() == 0
    assert our_stdout(init).encode() in init.lines


@pytest.mark.parametrize("how", ["--relay-output", "EXEC_RELAY_OUTPUT=1"])
def test_with_relay_output_cmd_writes_to_a_pipe_of_ours(run, how):
    option, env = ([], {"EXEC_RELAY_OUTPUT": "1"}) if "=" in how else ([how], {})
    init = run(["exec", *option, "--", "readlink", "/proc/self/fd/1"], env=env)
    assert init.wait() == 0
    written = [line for line in init.lines if line.startswith(b"pipe:[")]
    assert len(written) == 1 and written[0] != our_stdout(init).encode()


# -- 6. usage conventions are unit tests: tests/unit/test_exec_options.py ---------------

def test_an_unknown_option_is_an_error_and_not_run_as_the_command(run):
    init = run(["exec", "--yolo", "true"])
    assert init.wait() == 1
    assert b"unknown option '--yolo'" in init.lines[-1]


# -- after a stop: everything CMD started gets the deadline (issue 11, item 10) ----------

def test_after_a_stop_a_term_ignoring_grandchild_gets_the_deadline_then_sigkill(run):
    script = (f"{PY} {PROGRAMS}/stubborn.py 0 SIGTERM & "
              f"exec {PY} {PROGRAMS}/stubborn.py 0")
    init = run(["exec", "--", "sh", "-c", script], env={"SHUTDOWN_TIMEOUT": "1"})
    init.wait_for_lines("ready", count=2)
    tree = procfs.descendants(init.pid)
    sent = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait() == 0  # CMD's own code; the grandchild's SIGKILL does not change it
    elapsed = time.monotonic() - sent
    assert 1.0 <= elapsed < 1.5, elapsed
    assert "[WARNING] Shutdown timeout of 1s passed" in init.text()
    assert [pid for pid in tree if proctree.is_alive(pid)] == []


def test_after_a_stop_what_cmd_left_gets_term_and_we_exit_once_it_is_gone(run):
    script = (f"{PY} {PROGRAMS}/stubborn.py 4 & "
              f"exec {PY} {PROGRAMS}/stubborn.py 3")
    init = run(["exec", "--", "sh", "-c", script], env={"SHUTDOWN_TIMEOUT": "30"})
    init.wait_for_lines("ready", count=2)
    tree = procfs.descendants(init.pid)
    sent = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait() == 3
    assert time.monotonic() - sent < 5
    assert "Shutdown timeout" not in init.text()
    assert [pid for pid in tree if proctree.is_alive(pid)] == []


# -- beyond the peers: -p, -w, -e ---------------------------------------------------------

def test_with_warn_on_reap_each_orphan_reaped_is_a_warning(run):
    script = f"{PY} {PROGRAMS}/orphans.py 3 && exec {PY} {PROGRAMS}/stubborn.py 0"
    init = run(["exec", "-w", "--", "sh", "-c", script])
    init.wait_for_line("ready")
    init.wait_for_lines("[WARNING] Reaped orphaned process", count=3)
    init.signal(signal.SIGTERM)
    assert init.wait() == 0


def test_without_warn_on_reap_orphans_are_reaped_silently(run):
    script = f"{PY} {PROGRAMS}/orphans.py 3 && exec {PY} {PROGRAMS}/stubborn.py 0"
    init = run(["exec", "--", "sh", "-c", script])
    init.wait_for_line("ready")
    poll(lambda: len(procfs.children(init.pid)) == 1, what="every orphan reaped")
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert "Reaped orphaned process" not in init.text()


@pytest.mark.parametrize("args, code", [
    (["-e", "3", "--", "sh", "-c", "exit 3"], 0),
    (["--success-exit-code", "3", "--", "sh", "-c", "exit 4"], 4),
    (["-e", "4", "-e", "3", "--", "sh", "-c", "exit 3"], 0),
    (["--success-exit-code=138", "--", "sh", "-c", "kill -USR1 $$"], 0),
])
def test_success_exit_codes_become_0_and_others_pass_unchanged(run, args, code):
    init = run(["exec", *args])
    assert init.wait() == code


@pytest.mark.timeout(30)
def test_the_parent_death_signal_reaches_cmd_when_our_parent_dies(tmp_path):
    """Outside a namespace only: there the parent is ours to kill."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, "LOG_LEVEL": "DEBUG"}
    parent = subprocess.Popen(
        ["sh", "-c", f'{PY} -m cephaloinit exec -p SIGTERM -- {PY} {PROGRAMS}/stubborn.py 5 & '
                     'echo "init $!"; wait'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    init_pid = int(parent.stdout.readline().split()[1])
    try:
        while parent.stdout.readline() != b"ready\n":
            pass
        parent.kill()
        parent.wait()
        rest = parent.stdout.read().decode()  # EOF once cephaloinit and CMD have exited
        assert "Forwarding SIGTERM" in rest
        assert "exited with code 5" in rest
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init_pid, signal.SIGKILL)
        parent.stdout.close()
