"""Fault injection on ``cephaloinit run`` as a true PID 1: every signal in every
state of docs/state-machine.md that has an action, children dying at the worst
moments, a crash-looping health server, a full disk, storms of signals and of
orphans.

Most tests run a scripted stand-in for Squid (programs/scripted_squid.py) so
that the supervisor can be held in VALIDATING (``-k parse`` waits on a gate
file) or STARTING_SQUID (listening waits on a gate file), and so that every
signal that reaches "Squid" is visible as a relayed line. STARTING_HEALTH is
held by occupying the health port: the health server exits 1 and is restarted
with backoff (0.5 s, 1 s, 2 s, 4 s) until the port is freed. A few tests use the
real Squid where its own behaviour is the point.

Signals are sent only after the line or file that proves the state was
reached; the supervisor reads signals in its loop only, so a signal sent after
such a line is handled after everything that line announces.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from cephaloinit import procfs

from .. import proctree
from .conftest import PID_NAMESPACES, REPO, UNPRIVILEGED_UID, Init, poll
from .test_proxy_run import (SQUID, Proxy, basic_config, bump_config, make_ca,  # noqa: F401
                             proxy, run)

pytestmark = pytest.mark.timeout(60)

PROGRAMS = os.path.join(REPO, "tests", "system", "programs")
STOPS = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT]
HELD_STATES = ["VALIDATING", "STARTING_HEALTH", "STARTING_SQUID", "RUNNING"]


class Scripted:
    """The scripted Squid's wrapper, gates and event log for one proxy."""

    def __init__(self, proxy: Proxy):
        self.dir = f"{proxy.root}/fake"
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o777)
        self.log = f"{self.dir}/events"
        # The test UID cannot run a pyenv interpreter under /root: a /bin/sh
        # wrapper execs this venv's Python (Debian's) by absolute path.
        self.binary = f"{proxy.root}/scripted-squid"
        with open(self.binary, "w") as file:
            file.write(f"#!/bin/sh\nexec {sys.executable} {PROGRAMS}/scripted_squid.py \"$@\"\n")
        os.chmod(self.binary, 0o755)
        self.env = {"SQUID_BINARY": self.binary, "FAKE_LOG": self.log}

    def gate(self, name: str) -> str:
        return f"{self.dir}/{name}.open"

    def open(self, name: str) -> None:
        with open(self.gate(name), "w"):
            pass

    def events(self) -> list[str]:
        try:
            with open(self.log) as file:
                return file.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_event(self, text: str, timeout: float = 10) -> None:
        poll(lambda: any(text in line for line in self.events()), timeout, f"event {text!r}")

    def stopped(self) -> bool:
        """Whether "Squid" was stopped by a signal. TERM is always sent first, but
        with no client the drain's INT follows at once, and Python runs pending
        handlers in signal-number order: INT (2) may be handled before TERM (15)."""
        return any(line.startswith("scripted-squid: exiting on SIG") for line in self.events())

    def got(self, signame: str) -> int:
        return sum(1 for line in self.events() if line.endswith(f"got {signame}"))


@pytest.fixture
def fake(proxy):
    made = Scripted(proxy)
    proxy.write_config(basic_config(proxy))
    return made


class HealthPortBlocker:
    """Holds the health port, so the health server cannot listen and the
    supervisor stays in STARTING_HEALTH, restarting it with backoff."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()

    def release(self) -> None:
        self.sock.close()


def hold(state: str, run, proxy: Proxy, fake: Scripted, env: dict | None = None):
    """Start cephaloinit and return (init, release) once it is in ``state``;
    ``release()`` lets the start-up continue."""
    env = {**fake.env, **(env or {})}
    release = lambda: None  # noqa: E731
    if state == "VALIDATING":
        env["FAKE_PARSE_GATE"] = fake.gate("parse")
        init = run(env=env)
        fake.wait_event("parse started")
        release = lambda: fake.open("parse")  # noqa: E731
    elif state == "STARTING_HEALTH":
        blocker = HealthPortBlocker(proxy.health_port)
        init = run(env=env)
        init.wait_for_line("restarting in 0.5s")
        release = blocker.release
        init.blocker = blocker  # closed with the test
    elif state == "STARTING_SQUID":
        env["FAKE_LISTEN_GATE"] = fake.gate("listen")
        init = run(env=env)
        init.wait_for_line("scripted-squid: started as PID")
        release = lambda: fake.open("listen")  # noqa: E731
    else:
        init = run(env=env)
        init.wait_for_line("Container ready")
    assert proxy.state["state"] == state
    return init, release


def host_pid(init: Init, pid: int) -> int:
    """The host PID of a process whose PID inside cephaloinit's namespace is
    ``pid`` (the state file publishes namespace PIDs)."""
    for candidate in [init.pid, *procfs.descendants(init.pid)]:
        nspid = procfs.status(candidate).get("NSpid", "").split()
        if nspid and int(nspid[-1]) == pid:
            return candidate
    raise AssertionError(f"no process with PID {pid} in cephaloinit's namespace")


def error_lines(init: Init) -> list[bytes]:
    """cephaloinit's own ERROR lines (the health server's relayed ones excluded)."""
    return [line for line in init.lines if b"[ERROR]" in line and b"Health server cannot listen" not in line]


def connect_client(proxy: Proxy, fake: Scripted) -> socket.socket:
    """An established client connection to "Squid": what the drain waits for."""
    client = socket.create_connection(("127.0.0.1", proxy.squid_port), timeout=5)
    fake.wait_event("client connected")
    return client


def enter_error_with_squid_draining(run, proxy: Proxy, fake: Scripted, env: dict | None = None):
    """ERROR with Squid alive and still stopping: a reload whose Squid never
    listens again is fatal after STARTUP_TIMEOUT; Squid ignores TERM and has a
    client, so the supervisor keeps draining it."""
    env = {**fake.env, "FAKE_HUP_CLOSES": "1", "FAKE_IGNORE": "TERM", "STARTUP_TIMEOUT": "1",
           **(env or {})}
    init = run(env=env)
    init.wait_for_line("Container ready")
    client = connect_client(proxy, fake)
    init.signal(signal.SIGHUP)
    init.wait_for_line(f"[ERROR] Squid did not accept connections on port {proxy.squid_port} again "
                       "within 1s of a reload")
    assert proxy.state["state"] == "ERROR"
    return init, client


def enter_shutting_down_with_squid_draining(run, proxy: Proxy, fake: Scripted, env: dict | None = None):
    """SHUTTING_DOWN with Squid alive: it ignores TERM and has a client."""
    init = run(env={**fake.env, "FAKE_IGNORE": "TERM", **(env or {})})
    init.wait_for_line("Container ready")
    client = connect_client(proxy, fake)
    init.signal(signal.SIGTERM)
    init.wait_for_line("Received signal SIGTERM, initiating graceful shutdown...")
    poll(lambda: proxy.state["state"] == "SHUTTING_DOWN", what="SHUTTING_DOWN published")
    return init, client


# -- TERM, INT, QUIT (first) ------------------------------------------------------------
@pytest.mark.parametrize("state", HELD_STATES)
@pytest.mark.parametrize("signum", STOPS, ids=lambda s: signal.Signals(s).name)
def test_a_first_stop_signal_in_each_state_stops_every_child_and_exits_0(run, proxy, fake, state, signum):
    init, release = hold(state, run, proxy, fake)
    name = signal.Signals(signum).name
    init.signal(signum)
    assert init.wait(timeout=15) == 0
    text = init.text()
    assert f"Received signal {name}, initiating graceful shutdown..." in text
    assert text.rstrip().endswith("Shutdown complete")
    assert error_lines(init) == []
    assert "Traceback" not in text
    events = fake.events()
    if state == "VALIDATING":  # the running helper got TERM and was reaped
        assert "scripted-squid: parse got SIGTERM" in events
    if state in ("STARTING_SQUID", "RUNNING"):  # Squid was stopped before we exited
        assert fake.stopped()
        assert "Squid exited with code 0" in text
        assert "Health server stopped on SIGTERM" in text
    if state == "STARTING_HEALTH":  # the pending restart was not carried out
        assert "Health check server restarted" not in text
        assert "Starting Squid" not in text


@pytest.mark.parametrize("signum", STOPS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_in_error_interrupts_the_draining_squid_and_keeps_exit_1(run, proxy, fake, signum):
    init, client = enter_error_with_squid_draining(run, proxy, fake)
    name = signal.Signals(signum).name
    init.signal(signum)
    init.wait_for_line("scripted-squid: got SIGINT")
    assert init.wait(timeout=15) == 1
    assert "initiating graceful shutdown" not in init.text()  # ERROR stays ERROR
    assert f"Received {name}" in init.text()
    assert "Shutdown timeout" not in init.text()
    client.close()


# -- TERM, INT, QUIT (again) --------------------------------------------------------------
@pytest.mark.parametrize("signum", STOPS, ids=lambda s: signal.Signals(s).name)
def test_a_second_stop_signal_while_squid_drains_sends_it_sigint(run, proxy, fake, signum):
    init, client = enter_shutting_down_with_squid_draining(run, proxy, fake)
    sent = time.monotonic()
    init.signal(signum)
    name = signal.Signals(signum).name
    init.wait_for_line(f"Received {name} again: Squid stops without waiting for its clients")
    init.wait_for_line("scripted-squid: got SIGINT")
    assert init.wait(timeout=15) == 0
    assert time.monotonic() - sent < 5  # not the 10 s SHUTDOWN_TIMEOUT
    assert "Shutdown timeout" not in init.text()
    client.close()


def test_a_second_stop_signal_in_validating_is_ignored_and_the_deadline_still_ends_it(run, proxy, fake):
    init = run(env={**fake.env, "FAKE_PARSE_GATE": fake.gate("parse"), "FAKE_PARSE_IGNORE": "TERM",
                    "SHUTDOWN_TIMEOUT": "2"})
    fake.wait_event("parse started")
    sent = time.monotonic()
    init.signal(signal.SIGTERM)
    init.wait_for_line("initiating graceful shutdown")
    init.signal(signal.SIGTERM)
    init.signal(signal.SIGINT)
    assert init.wait(timeout=15) == 0
    elapsed = time.monotonic() - sent
    assert 2.0 <= elapsed < 3.0, elapsed
    text = init.text()
    assert text.count("initiating graceful shutdown") == 1
    assert "again" not in text
    assert "Shutdown timeout of 2s passed; sending SIGKILL to every remaining process" in text


# -- HUP ---------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["VALIDATING", "STARTING_HEALTH", "STARTING_SQUID"])
def test_hup_during_start_up_is_logged_ignored_and_start_up_goes_on(run, proxy, fake, state):
    init, release = hold(state, run, proxy, fake)
    init.signal(signal.SIGHUP)
    init.wait_for_line(f"Ignoring SIGHUP in state {state}: a reload is only possible once Squid is running")
    release()
    init.wait_for_line("Container ready")
    assert fake.got("SIGHUP") == 0
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_hup_in_running_reloads_a_valid_config_into_squid(run, proxy, fake):
    init, _ = hold("RUNNING", run, proxy, fake)
    init.signal(signal.SIGHUP)
    init.wait_for_line("Configuration valid; Squid is reloading it")
    init.wait_for_line("Squid reloaded its configuration")
    assert fake.got("SIGHUP") == 1
    poll(lambda: proxy.state["state"] == "RUNNING" and proxy.state["ready"], what="ready again")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_hup_in_running_with_an_invalid_config_is_rejected_and_squid_keeps_running(run, proxy, fake):
    init, _ = hold("RUNNING", run, proxy, fake)
    proxy.write_config(basic_config(proxy, "no_such_directive on\n"))
    init.signal(signal.SIGHUP)
    error = init.wait_for_line("Reload rejected, Squid keeps running on its current configuration")
    assert b"Bungled scripted configuration" in error
    assert fake.got("SIGHUP") == 0
    poll(lambda: proxy.state["ready"], what="ready again")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


# -- USR1, USR2 ----------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["VALIDATING", "STARTING_HEALTH", "STARTING_SQUID"])
@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2], ids=["USR1", "USR2"])
def test_usr_signals_during_start_up_are_ignored_not_forwarded(run, proxy, fake, state, signum):
    init, release = hold(state, run, proxy, fake, env={"LOG_LEVEL": "DEBUG"})
    name = signal.Signals(signum).name
    init.signal(signum)
    init.wait_for_line(f"[DEBUG] Ignoring {name} in state {state}")
    release()
    init.wait_for_line("Container ready")
    assert fake.got(name) == 0
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2], ids=["USR1", "USR2"])
def test_usr_signals_in_running_are_forwarded_to_squid(run, proxy, fake, signum):
    init, _ = hold("RUNNING", run, proxy, fake)
    name = signal.Signals(signum).name
    init.signal(signum)
    init.wait_for_line(f"scripted-squid: got {name}")
    assert proxy.state["state"] == "RUNNING"
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_hup_usr1_usr2_while_shutting_down_are_ignored_and_never_reach_squid(run, proxy, fake):
    init, client = enter_shutting_down_with_squid_draining(run, proxy, fake, env={"LOG_LEVEL": "DEBUG"})
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        init.signal(signum)
    init.wait_for_line("Ignoring SIGHUP in state SHUTTING_DOWN")
    init.wait_for_line("[DEBUG] Ignoring SIGUSR2 in state SHUTTING_DOWN")
    init.signal(signal.SIGINT)  # end the drain
    assert init.wait(timeout=15) == 0
    assert [fake.got(s) for s in ("SIGHUP", "SIGUSR1", "SIGUSR2")] == [0, 0, 0]
    client.close()


def test_hup_usr1_usr2_in_error_are_ignored_and_never_reach_squid(run, proxy, fake):
    init, client = enter_error_with_squid_draining(run, proxy, fake, env={"LOG_LEVEL": "DEBUG"})
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        init.signal(signum)
    init.wait_for_line("Ignoring SIGHUP in state ERROR")
    init.wait_for_line("[DEBUG] Ignoring SIGUSR2 in state ERROR")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 1
    assert fake.got("SIGHUP") == 1  # the reload's, before ERROR
    assert fake.got("SIGUSR1") == 0 and fake.got("SIGUSR2") == 0
    client.close()


# -- Timer: SHUTDOWN_TIMEOUT in ERROR ------------------------------------------------------
def test_in_error_a_squid_ignoring_term_and_int_is_killed_at_the_deadline_and_exit_stays_1(run, proxy, fake):
    env = {"FAKE_IGNORE": "TERM,INT", "SHUTDOWN_TIMEOUT": "2"}
    init, client = enter_error_with_squid_draining(run, proxy, fake, env=env)
    started = time.monotonic()
    assert init.wait(timeout=15) == 1
    assert time.monotonic() - started < 2.6
    assert "[WARNING] Shutdown timeout of 2s passed; sending SIGKILL to every remaining process" in init.text()
    client.close()


# -- CHLD: Squid ------------------------------------------------------------------------------
def test_squid_crashing_during_start_up_is_fatal_with_its_status(run, proxy, fake):
    init = run(env={**fake.env, "FAKE_START_EXIT": "3"})
    assert init.wait(timeout=15) == 1
    assert [line.split(b"[ERROR] ", 1)[1] for line in error_lines(init)] == [
        b"Squid process died: exited with code 3"]
    assert "Container ready" not in init.text()
    assert "Health server stopped on SIGTERM" in init.text()  # the health child was stopped


def test_real_squid_failing_to_bind_its_port_is_fatal_with_squids_reason(run, proxy):
    proxy.write_config(basic_config(proxy))
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("0.0.0.0", proxy.squid_port))
    taken.listen()
    try:
        init = run()
        assert init.wait(timeout=15) == 1
    finally:
        taken.close()
    text = init.text()
    assert "FATAL: Unable to open HTTP Socket" in text  # Squid's own line, relayed
    assert [line.split(b"[ERROR] ", 1)[1] for line in error_lines(init)] == [
        b"Squid process died: exited with code 1"]
    # Readiness wants a listener held by Squid itself, not any socket on the port
    # (finding F5 in docs/reliability.md): start-up was never called done.
    assert "Container ready" not in text


def test_scripted_squid_killed_in_running_is_seen_within_milliseconds(run, proxy, fake):
    init, _ = hold("RUNNING", run, proxy, fake)
    squid_pid = host_pid(init, proxy.state["squid_pid"])
    killed = time.monotonic()
    os.kill(squid_pid, signal.SIGKILL)
    init.wait_for_line("[ERROR] Squid process died: killed by SIGKILL")
    detected = time.monotonic() - killed
    assert init.wait(timeout=15) == 1
    assert detected < 0.5
    print(f"FIGURE squid-crash-detection-scripted {detected * 1000:.1f} ms")


def test_real_squid_killed_in_running_is_seen_within_milliseconds(run, proxy):
    proxy.write_config(basic_config(proxy))
    init = run()
    init.wait_for_line("Container ready")
    samples = []
    squid_pid = host_pid(init, proxy.state["squid_pid"])
    killed = time.monotonic()
    os.kill(squid_pid, signal.SIGKILL)
    init.wait_for_line("[ERROR] Squid process died: killed by SIGKILL")
    samples.append(time.monotonic() - killed)
    assert init.wait(timeout=15) == 1
    assert samples[0] < 0.5
    print(f"FIGURE squid-crash-detection-real {samples[0] * 1000:.1f} ms")


def test_startup_timeout_is_fatal_and_stops_the_squid_that_never_listened(run, proxy, fake):
    init = run(env={**fake.env, "FAKE_LISTEN_GATE": fake.gate("listen"), "STARTUP_TIMEOUT": "1"})
    init.wait_for_line("scripted-squid: started as PID")
    assert init.wait(timeout=15) == 1
    assert [line.split(b"[ERROR] ", 1)[1] for line in error_lines(init)] == [
        f"Squid did not start accepting connections on port {proxy.squid_port} within 1s "
        "(STARTUP_TIMEOUT)".encode()]
    assert fake.stopped()


# -- CHLD: the health server ----------------------------------------------------------------
def kill_health(init: Init, proxy: Proxy) -> int:
    """SIGKILL the health server whose PID is published; return that (namespace) PID."""
    pid = poll(lambda: (proxy.state or {}).get("health_pid"), what="a published health PID")
    os.kill(host_pid(init, pid), signal.SIGKILL)
    return pid


def test_health_server_killed_in_starting_squid_is_restarted(run, proxy, fake):
    init, release = hold("STARTING_SQUID", run, proxy, fake)
    pid = kill_health(init, proxy)
    init.wait_for_line(f"Health check server (PID {pid}) killed by SIGKILL; restarting in 0.5s")
    init.wait_for_line("Health check server restarted (PID: ")
    release()
    init.wait_for_line("Container ready")
    assert proxy.state["health_restarts"] == 1
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_health_server_crash_loop_backs_off_then_is_fatal_on_the_5th_death(run, proxy, fake):
    init, _ = hold("RUNNING", run, proxy, fake)
    killed = time.monotonic()
    pid = kill_health(init, proxy)
    for death, delay in enumerate(["0.5", "1", "2", "4"], start=1):
        init.wait_for_line(f"Health check server (PID {pid}) killed by SIGKILL; restarting in {delay}s")
        init.wait_for_lines("Health check server restarted (PID: ", death, timeout=10)
        assert time.monotonic() - killed >= float(delay)  # the backoff was waited out
        old = pid
        pid = poll(lambda: proxy.state["health_pid"] not in (None, old) and proxy.state["health_pid"],
                   what="the restarted health server's PID")
        killed = time.monotonic()
        os.kill(host_pid(init, pid), signal.SIGKILL)
    assert init.wait(timeout=15) == 1
    assert [line.split(b"[ERROR] ", 1)[1] for line in error_lines(init)] == [
        b"Health check server died 5 times within 60s; last killed by SIGKILL"]
    assert fake.stopped()  # Squid was stopped


def test_health_server_death_while_shutting_down_is_reaped_not_restarted(run, proxy, fake):
    init, client = enter_shutting_down_with_squid_draining(run, proxy, fake)
    health_pid = host_pid(init, proxy.state["health_pid"])
    os.kill(health_pid, signal.SIGKILL)
    poll(lambda: not proctree.is_alive(health_pid), what="health server reaped")
    init.signal(signal.SIGINT)
    assert init.wait(timeout=15) == 0
    assert "restarting in" not in init.text() and "restarted" not in init.text()
    client.close()


# -- orphans, storms ----------------------------------------------------------------------------
def test_orphans_of_squid_are_reaped_while_running(run, proxy, fake):
    init = run(env={**fake.env, "FAKE_ORPHANS": "2000"})
    init.wait_for_line("scripted-squid: left 2000 orphans", timeout=30)
    # An orphan may still be running its last instructions: wait until every
    # one has exited and been reaped, leaving Squid and the health server.
    poll(lambda: proctree.zombie_children(init.pid) == [] and len(init.children()) == 2,
         what="every orphan reaped, no zombie under PID 1")
    assert proxy.state["state"] == "RUNNING"
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_a_storm_of_10000_signals_on_real_squid_is_survived(run, proxy):
    proxy.write_config(basic_config(proxy))
    init = run()
    init.wait_for_line("Container ready")
    pid = init.pid
    squid_pid = proxy.state["squid_pid"]
    storm = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGCHLD)
    started = time.monotonic()
    for i in range(10_000):
        os.kill(pid, storm[i % len(storm)])
    took = time.monotonic() - started
    # Reloads coalesce: the storm ends in RUNNING and ready, the same Squid.
    init.wait_for_line("Squid reloaded its configuration", timeout=30)
    poll(lambda: proxy.state["state"] == "RUNNING" and proxy.state["ready"], timeout=30,
         what="RUNNING and ready after the storm")
    assert proctree.is_alive(pid) and proxy.state["squid_pid"] == squid_pid
    reloads = init.text().count("Squid reloaded its configuration")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=20) == 0
    assert "Traceback" not in init.text()
    assert error_lines(init) == []
    print(f"FIGURE signal-storm 10000 signals in {took:.2f}s, {reloads} reload(s), survived")


def test_a_storm_of_stop_signals_is_one_stop(run, proxy, fake):
    init, _ = hold("RUNNING", run, proxy, fake)
    pid = init.pid
    for i in range(3_000):
        os.kill(pid, STOPS[i % 3])
    assert init.wait(timeout=15) == 0
    text = init.text()
    assert text.count("initiating graceful shutdown") == 1
    assert text.count("Shutdown complete") == 1
    assert fake.got("SIGINT") <= 1  # at most one interrupt, however many stops


# -- a full disk -----------------------------------------------------------------------------
def full_lib_command(proxy: Proxy, command: list[str]) -> list[str]:
    """``command`` as PID 1 of new PID and mount namespaces, as the test UID,
    with SQUID_LIB_DIR a full 8 KiB tmpfs; afterwards the outer shell lists
    what is left on that tmpfs (the namespace disappears with it)."""
    lib = proxy.env["SQUID_LIB_DIR"]
    script = (
        f'mount -t tmpfs -o size=8k,mode=0775 tmpfs {lib} && '
        f'dd if=/dev/zero of={lib}/filler bs=4096 count=2 2>/dev/null; '
        f'unshare --pid --fork --mount-proc --kill-child '
        f'setpriv --reuid={UNPRIVILEGED_UID} --regid=0 --clear-groups "$@"; code=$?; '
        f'echo "LEFT ON TMPFS: $(ls -A {lib} | tr "\\n" " ")"; exit $code'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


class Command(Init):
    """An Init started from a prepared command line."""

    def __init__(self, command: list[str], env: dict[str, str]):
        full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **env}
        full_env.update({k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")})
        import selectors
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=full_env, cwd=REPO)
        self.pid_one = False
        self.lines, self._partial, self._eof = [], b"", False
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)


@pytest.mark.skipif(not PID_NAMESPACES, reason="needs root and unshare(1)")
@pytest.mark.skipif(not os.path.exists("/usr/lib/squid/security_file_certgen"), reason="needs certgen")
def test_a_full_lib_directory_while_merging_the_ca_is_one_error_exit_1_no_temp_file(proxy, fake):
    make_ca(f"{proxy.root}/etc/tls")
    proxy.write_config(bump_config(proxy))
    command = full_lib_command(proxy, [sys.executable, "-m", "cephaloinit", "run"])
    init = Command(command, {**proxy.env, **fake.env})
    try:
        assert init.wait(timeout=30) == 1
    finally:
        init.stop()
    lib = proxy.env["SQUID_LIB_DIR"]
    errors = error_lines(init)
    assert [line.split(b"[ERROR] ", 1)[1] for line in errors] == [
        f"Cannot write {lib}/squid-ca.pem: No space left on device; {lib} needs free space "
        "and must be writable".encode()]
    left = init.wait_for_line("LEFT ON TMPFS:").decode()
    assert left.split(":", 1)[1].split() == ["filler"]  # no squid-ca.pem, no *.tmp
    assert "PRIVATE KEY" not in init.text()
