"""``cephaloinit exec`` as a true PID 1 in its own PID namespace."""

import os
import signal
import sys
import time

from cephaloinit import procfs

from .. import proctree
from .conftest import REPO, poll

PROGRAMS = os.path.join(REPO, "tests", "system", "programs")
PY = sys.executable


def program(name, *args):
    return [PY, os.path.join(PROGRAMS, name), *map(str, args)]


def test_orphaned_grandchildren_are_all_reaped(start):
    script = f"{PY} {PROGRAMS}/orphans.py 1000 && exec {PY} {PROGRAMS}/stubborn.py 0"
    init = start(["exec", "--", "sh", "-c", script], env={"LOG_LEVEL": "DEBUG"})
    init.wait_for_line("left 1000 orphans")
    init.wait_for_line("ready")
    # orphans exit on their own schedule: only the command itself remains
    poll(lambda: len(procfs.children(init.pid)) == 1, what="every orphan reaped")
    assert proctree.zombie_children(init.pid) == []
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert "Reaped 1000 orphaned processes" in init.text()


def test_sigterm_is_forwarded_and_the_exit_code_passed_on(start):
    init = start(["exec", "--", *program("stubborn.py", 7)])
    init.wait_for_line("ready")
    init.signal(signal.SIGTERM)
    assert init.wait() == 7


def test_death_by_signal_becomes_128_plus_n(start):
    init = start(["exec", "--", "sh", "-c", "echo ready; kill -USR1 $$"])
    assert init.wait() == 128 + signal.SIGUSR1


def test_forwarded_signals_reach_the_child(start):
    # Printing from a handler could interrupt the print of 'ready': wait for signals instead.
    child = ("import signal,sys; wanted={signal.SIGHUP,signal.SIGUSR2};"
             "signal.pthread_sigmask(signal.SIG_BLOCK,wanted); print('ready', flush=True);"
             "[print('HUP', flush=True) if signal.sigwaitinfo(wanted).si_signo == signal.SIGHUP"
             " else sys.exit(5) for _ in iter(int, 1)]")
    init = start(["exec", "--", PY, "-c", child])
    init.wait_for_line("ready")
    init.signal(signal.SIGHUP)
    init.wait_for_line("HUP")
    init.signal(signal.SIGUSR2)
    assert init.wait() == 5


def test_child_ignoring_sigterm_is_killed_at_the_shutdown_timeout(start):
    init = start(["exec", "--", *program("stubborn.py", 0, "SIGTERM")],
                 env={"SHUTDOWN_TIMEOUT": "1"})
    init.wait_for_line("ready")
    sent = time.monotonic()
    init.signal(signal.SIGTERM)
    code = init.wait()
    elapsed = time.monotonic() - sent
    assert code == 128 + signal.SIGKILL
    assert 1.0 <= elapsed < 1.5, elapsed
    assert "[WARNING] Shutdown timeout of 1s passed" in init.text()


def test_with_relay_output_lines_from_two_sources_arrive_whole(start):
    script = (f"{PY} {PROGRAMS}/writer.py a 20000 200 stdout & "
              f"{PY} {PROGRAMS}/writer.py b 30000 200 stderr & wait")
    init = start(["exec", "--relay-output", "--", "sh", "-c", script])
    assert init.wait(timeout=30) == 0
    lines = [line for line in init.lines if line]
    assert sorted(set(lines)) == [b"a" * 20000, b"b" * 30000]
    assert lines.count(b"a" * 20000) == 200
    assert lines.count(b"b" * 30000) == 200


def test_a_storm_of_signals_neither_crashes_nor_hangs_it(start):
    init = start(["exec", "--", *program("stubborn.py", 3, "SIGUSR1", "SIGUSR2", "SIGHUP")])
    init.wait_for_line("ready")
    pid = init.pid
    storm = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGCHLD)
    for i in range(10_000):
        os.kill(pid, storm[i % len(storm)])
    assert proctree.is_alive(pid)
    init.signal(signal.SIGTERM)
    assert init.wait() == 3


def test_idle_pid_one_makes_no_voluntary_context_switches(start):
    init = start(["exec", "--", *program("stubborn.py", 0)])
    init.wait_for_line("ready")
    # Going to sleep is itself a voluntary switch: count from once it sleeps.
    poll(lambda: procfs.stat(init.pid).state == "S", what="PID 1 asleep")
    before = int(procfs.status(init.pid)["voluntary_ctxt_switches"])
    time.sleep(5)  # the measurement window itself
    after = int(procfs.status(init.pid)["voluntary_ctxt_switches"])
    assert after - before == 0
    init.signal(signal.SIGTERM)
    assert init.wait() == 0


def test_as_subreaper_outside_a_namespace_orphans_are_still_reaped(start):
    script = f"{PY} {PROGRAMS}/orphans.py 100 && exec {PY} {PROGRAMS}/stubborn.py 0"
    init = start(["exec", "--", "sh", "-c", script], env={"LOG_LEVEL": "DEBUG"}, pid_one=False)
    init.wait_for_line("ready")
    assert init.pid != 1
    poll(lambda: len(procfs.children(init.pid)) == 1, what="every orphan reaped")
    assert proctree.zombie_children(init.pid) == []
    init.signal(signal.SIGTERM)
    assert init.wait() == 0
    assert "Reaped 100 orphaned processes" in init.text()


def test_outside_a_namespace_the_deadline_kills_the_whole_tree(start):
    script = f"{PY} {PROGRAMS}/stubborn.py 0 SIGTERM & exec {PY} {PROGRAMS}/stubborn.py 0 SIGTERM"
    init = start(["exec", "--", "sh", "-c", script], env={"SHUTDOWN_TIMEOUT": "0.5"}, pid_one=False)
    init.wait_for_lines("ready", count=2)
    tree = procfs.descendants(init.pid)
    assert len(tree) == 2
    init.signal(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    assert [pid for pid in tree if proctree.is_alive(pid)] == []
