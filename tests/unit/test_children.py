import os
import signal

import pytest

from cephaloinit.children import Children, describe_status, exit_code_for
from cephaloinit.loop import Loop


def status_of(code=None, signum=None):
    """A real wait status, produced by a real child."""
    pid = os.fork()
    if pid == 0:
        if signum is not None:
            if signum != signal.SIGKILL:
                signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        os._exit(code or 0)
    return os.waitpid(pid, 0)[1]


def test_exit_codes_are_described_and_passed_on():
    status = status_of(code=3)
    assert describe_status(status) == "exited with code 3"
    assert exit_code_for(status) == 3
    assert describe_status(status_of(code=0)) == "exited with code 0"


def test_death_by_signal_is_described_and_becomes_128_plus_n():
    status = status_of(signum=signal.SIGKILL)
    assert describe_status(status) == "killed by SIGKILL"
    assert exit_code_for(status) == 137
    assert exit_code_for(status_of(signum=signal.SIGTERM)) == 143


def test_core_dumps_are_named():
    core_status = signal.SIGSEGV | 0x80  # WCOREDUMP bit
    assert describe_status(core_status) == "killed by SIGSEGV (core dumped)"


@pytest.fixture
def children():
    """Children on a loop of their own; ``children.orphans`` records each
    orphan reaped as (pid, wait status)."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    loop = Loop(read_end, lambda s: None)
    orphans = []
    found = Children(loop, on_orphan=lambda pid, status: orphans.append((pid, status)))
    found.orphans = orphans
    yield found
    loop.close()
    os.close(read_end)
    os.close(write_end)


def wait_until_reaped(children, child):
    while child.running:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # block without reaping
        children.reap()


def test_the_reaper_records_a_known_child_and_counts_orphans(children):
    orphan = os.fork()  # not spawned through Children: unknown to it, like an orphan
    if orphan == 0:
        os._exit(0)
    os.waitid(os.P_PID, orphan, os.WEXITED | os.WNOWAIT)  # a zombie now, not reaped
    child = children.spawn("true", ["sh", "-c", "exit 4"], os.environ, relay_output=False)
    wait_until_reaped(children, child)
    assert describe_status(child.status) == "exited with code 4"
    assert children.orphans_reaped == 1
    assert children.by_pid == {}


def test_spawn_of_a_missing_program_raises_and_leaks_no_fd(children):
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        children.spawn("missing", ["/no/such/program"], os.environ)
    assert set(os.listdir("/proc/self/fd")) == before


def test_children_get_default_dispositions_and_an_empty_mask(children, tmp_path):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        out = tmp_path / "status"
        child = children.spawn(
            "probe", ["sh", "-c", f"grep -E '^Sig(Blk|Ign)' /proc/self/status > {out}"],
            os.environ, relay_output=False)
        wait_until_reaped(children, child)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    fields = dict(line.split(":\t") for line in out.read_text().splitlines())
    assert int(fields["SigBlk"], 16) == 0
    ignored = int(fields["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGTERM - 1))


def test_notify_pipe_delivers_what_the_child_writes(children):
    received = []
    child = children.spawn("notifier", ["sh", "-c", 'echo READY=1 >&"$NOTIFY_FD"'],
                           os.environ, relay_output=False, notify=received.append)
    while child.notify_fd is not None:
        children.loop.run_once()
    wait_until_reaped(children, child)
    assert b"".join(received) == b"READY=1\n"
