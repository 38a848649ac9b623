"""What ``exec`` asks of Children: a process group, inherited signal state,
group signalling, and knowing when no child is left (docs/exec.md)."""

import errno
import os
import signal
import time

import pytest

from cephaloinit import signals

from .. import proctree
from ..signal_state import glibc_internal_ignored
from .test_children import children, wait_until_reaped  # noqa: F401 (children is a fixture)

LEADS_ITS_GROUP = "import os; print(os.getpgrp() == os.getpid())"


def run_and_capture(children, argv, **spawn_options) -> list[bytes]:
    lines = []
    child = children.spawn("probe", argv, os.environ, capture=lines.append, **spawn_options)
    wait_until_reaped(children, child)
    children.drain(child)
    return lines


def status_mask(lines, field) -> int:
    text = b"".join(lines).decode()
    return int(text.split(f"{field}:\t")[1].split()[0], 16)


@pytest.mark.timeout(30)
def test_with_process_group_the_child_leads_its_own_group(children):
    lines = run_and_capture(children, ["python3", "-c", LEADS_ITS_GROUP], process_group=True)
    assert lines[0] == b"True\n"


@pytest.mark.timeout(30)
def test_inherited_ignored_signals_and_mask_are_handed_on_and_nothing_else(children):
    inherited = signals.Inherited(mask=frozenset({signal.SIGUSR1}),
                                  ignored=frozenset({signal.SIGHUP}))
    lines = run_and_capture(children, ["grep", "^Sig", "/proc/self/status"], inherited=inherited)
    # no PIPE, and 32 and 33 only if this test run itself has them ignored
    assert status_mask(lines, "SigIgn") == 1 << (signal.SIGHUP - 1) | glibc_internal_ignored()
    assert status_mask(lines, "SigBlk") == 1 << (signal.SIGUSR1 - 1)


@pytest.mark.timeout(30)
def test_a_program_that_cannot_be_run_raises_its_exec_error(children):
    with pytest.raises(OSError) as raised:
        children.spawn("missing", ["/no/such/program"], os.environ, process_group=True)
    assert raised.value.errno == errno.ENOENT


@pytest.mark.timeout(30)
def test_send_to_the_group_reaches_every_member(children):
    lines = []
    child = children.spawn("group", ["sh", "-c", "sleep 30 & echo $!; wait"], os.environ,
                           capture=lines.append, process_group=True)
    while not lines:
        children.loop.run_once()
    member = int(lines[0])
    children.send(child, signal.SIGTERM, group=True)
    wait_until_reaped(children, child)
    assert os.WTERMSIG(child.status) == signal.SIGTERM
    # The sleep was re-parented to the system's init, which reaps it: poll.
    deadline = time.monotonic() + 10
    while proctree.is_alive(member):
        assert time.monotonic() < deadline, "the group's other member survived"
        time.sleep(0.01)


def test_all_reaped_says_whether_any_child_is_left(children):
    child = children.spawn("true", ["true"], os.environ, relay_output=False)
    wait_until_reaped(children, child)
    children.reap()
    assert children.all_reaped


def test_each_orphan_reaped_is_reported_with_its_status(children):
    orphan = os.fork()  # not spawned through Children: unknown to it, like an orphan
    if orphan == 0:
        os._exit(3)
    os.waitid(os.P_PID, orphan, os.WEXITED | os.WNOWAIT)
    children.reap()
    assert [(pid, os.waitstatus_to_exitcode(status)) for pid, status in children.orphans] == [(orphan, 3)]
