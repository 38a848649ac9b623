"""docs/state-machine.md's Events × states table, cell by cell, against the supervisor.

The table is parsed from the document; each cell has a check here: a whole
``Supervisor.run`` on a made-up operating system (tests/unit/fakehost.py),
brought into the cell's state, given the row's event, and held to what the
cell says. A cell's ``phrase`` must stand in the document's text for it, so
that a changed document fails here until its check is changed too; a cell
that the document adds has no check and fails. A dash (the event cannot
happen in that state) is checked too: the child is never alive there, or,
for a timer, time runs out in that state and what the timer does is never
seen (in RUNNING the loop would sleep with no timer armed at all).

Signals arriving in INITIALIZING are first read at the first wait, which is
VALIDATING's: the column "INITIALIZING / VALIDATING" is checked there.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Callable, NamedTuple

import pytest

from cephaloinit import healthchild, smp
from cephaloinit import supervisor as supervisor_module
from cephaloinit.logs import Logger
from cephaloinit.settings import Settings
from cephaloinit.supervisor import State, Supervisor
from cephaloinit.validators import cache, config, tls

from .fakehost import FakeHost, Stuck, World

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCUMENT = f"{REPO}/docs/state-machine.md"
V, SH, SS, R, SD, E = ("INITIALIZING / VALIDATING", "STARTING_HEALTH", "STARTING_SQUID", "RUNNING",
                       "SHUTTING_DOWN", "ERROR")
STATE_OF = {V: State.VALIDATING, SH: State.STARTING_HEALTH, SS: State.STARTING_SQUID,
            R: State.RUNNING, SD: State.SHUTTING_DOWN, E: State.ERROR}
STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


# -- the document ---------------------------------------------------------------------
def parse_table(text: str) -> dict[tuple[str, str], str]:
    """{(event, column): cell text} of the table under "## Events × states";
    a cell reading "same" (or blank) says what the cell to its left says."""
    section = text.split("## Events × states", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header[0] == "Event" and rows[1].startswith("|---")
    cells = {}
    for line in rows[2:]:
        event, *texts = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(texts) == len(header) - 1, f"row {event!r} has {len(texts)} cells"
        left = None
        for column, cell in zip(header[1:], texts):
            cell = left if cell in ("same", "") else cell
            cells[(event, column)] = left = cell
    return cells


with open(DOCUMENT, encoding="utf-8") as _file:
    TABLE = parse_table(_file.read())


# -- one run of the supervisor on the made-up OS -----------------------------------------
class RecordingLogger(Logger):
    """Every line, with the state it belongs to: a fatal event's message is
    logged once in ERROR, and belongs to the state the event happened in."""

    def __init__(self) -> None:
        super().__init__("DEBUG")
        self.lines: list[tuple[str, str]] = []
        self.states: list[State] = []  # the state of each line
        self.state = State.INITIALIZING
        self.before_error = State.INITIALIZING

    def log(self, level: str, message: str) -> None:
        if message.startswith("State "):
            before, after = (State(name) for name in message[6:].split(" -> "))
            self.state = after
            if after is State.ERROR:
                self.before_error = before
        fatal = level == "ERROR" and self.state is State.ERROR
        self.lines.append((level, message))
        self.states.append(self.before_error if fatal else self.state)


class Run:
    def __init__(self, tmp_path, **settings):
        self.tmp = tmp_path
        paths = {name: str(tmp_path / name) for name in ("run_dir", "log_dir", "lib_dir", "spool_dir",
                                                         "cache_dir", "tls_dir")}
        (tmp_path / "etc").mkdir(parents=True)
        (tmp_path / "etc" / "squid.conf").write_text("http_port 3128\nhttp_access allow all\n")
        self.settings = Settings(squid_config=str(tmp_path / "etc" / "squid.conf"),
                                 squid_default_config=f"{REPO}/container/squid.conf.default",
                                 squid_binary="/nonexistent/squid",
                                 # Squid's readiness is polled every 10 ms: a short
                                 # STARTUP_TIMEOUT keeps the runs that reach it short.
                                 **{**paths, "startup_timeout": 2.0, **settings})
        self.wakeup_read, self.wakeup_write = os.pipe2(os.O_NONBLOCK)
        self.world = World()
        self.host = FakeHost(self.world, str(tmp_path / "proc"), self.wakeup_write)
        self.world.host = self.host
        self.log = RecordingLogger()
        self.supervisor = Supervisor(self.wakeup_read, self.settings, self.log, self.host)
        self.world.supervisor = self.supervisor
        self.world.context = self
        self.code: int | None = None

    def start(self) -> int:
        try:
            self.code = self.supervisor.run()
        finally:
            self.supervisor.core.close()
            os.close(self.wakeup_read)
            os.close(self.wakeup_write)
        assert not self.world.pending, "steps never reached: the run took another path"
        assert self.host.unreaped == set(), "a child was left unreaped"
        return self.code

    # -- what happened -----------------------------------------------------------------
    def logged(self, text: str, level: str | None = None) -> bool:
        return any(text in message for lvl, message in self.log.lines if level in (None, lvl))

    def states(self) -> list[str]:
        return [m.split(" -> ")[1] for lvl, m in self.log.lines if m.startswith("State ")]

    def sent_to(self, kind: str) -> list[int]:
        return self.host.signals_to(kind)

    def when_sent(self, kind: str, signum: int) -> list[float]:
        pids = {p.pid for p in self.host.processes.values() if p.kind == kind}
        return [when for when, pid, sig in self.host.sent if pid in pids and sig == signum]

    def one(self, kind: str):
        (found,) = self.host.alive(kind)
        return found


# -- bringing a run into a column's state, then the event ---------------------------------
Event = Callable[[Run], None]


def signal_event(*signums: int) -> Event:
    return lambda run: run.host.signal_us(*signums)


def in_state(state: State, also: Callable[[Supervisor], bool] = lambda s: True):
    return lambda s: s.state is state and also(s)


def crash_health(run: Run) -> None:
    run.host.exit(run.one("health"), signum=signal.SIGKILL)


def enter(run: Run, column: str, event: Event, keep_going: bool = True) -> None:
    """Steps that bring ``run`` into ``column`` at a wait, deliver ``event``
    there, then (``keep_going``) let start-up go on and stop it in RUNNING."""
    world, host = run.world, run.host
    when = world.when
    if column == V:  # `squid -k parse` runs until the event has been seen
        world.parse_hangs = True
        when(in_state(State.VALIDATING, lambda s: bool(host.alive("helper"))), event)
        when(lambda s: True, lambda run: [host.exit(p, world.parse_code) for p in host.alive("helper")])
    elif column == SH:  # the health server has not reported READY=1 yet
        world.health_ready = False
        when(in_state(State.STARTING_HEALTH, lambda s: bool(host.alive("health"))),
             event)
        when(lambda s: True, lambda run: [p.write(3, b"READY=1\n") for p in host.alive("health")])
    elif column == SS:  # Squid runs but does not listen yet
        world.squid_listens = False
        when(in_state(State.STARTING_SQUID, lambda s: bool(host.alive("squid"))),
             event)
        when(lambda s: True, lambda run: [world.listen(p) for p in host.alive("squid")])
    elif column == R:
        when(in_state(State.RUNNING), event)
    elif column == SD:  # a client keeps Squid draining after its TERM
        world.squid_clients = 1
        when(in_state(State.RUNNING), signal_event(signal.SIGTERM))
        when(in_state(State.SHUTTING_DOWN, lambda s: signal.SIGTERM in run.sent_to("squid")),
             event)
        keep_going = False  # the drain ends at SHUTDOWN_TIMEOUT, or by the event
    elif column == E:  # a reload after which Squid never listens again; it drains a client
        world.squid_clients = 1

        def reload_without_ports(run):
            world.reload_listens = False
            host.signal_us(signal.SIGHUP)
        when(in_state(State.RUNNING), reload_without_ports)
        when(in_state(State.ERROR, lambda s: signal.SIGTERM in run.sent_to("squid")),
             event)
        keep_going = False
    if keep_going:  # once RUNNING and ready (not inside a reload)
        when(in_state(State.RUNNING, lambda s: s.stop_signal is None and s.ready
                      and not s.reload_requested),
             signal_event(signal.SIGTERM))


def finish_drain(run: Run) -> None:
    """The client of a drain goes away (an ERROR or SHUTTING_DOWN run ends sooner)."""
    run.world.clients(0)


# -- the checks, row by row ----------------------------------------------------------------
class Cell(NamedTuple):
    phrase: str  # what the document's cell must say
    check: Callable[[object], None]  # given tmp_path


def stop_first(column: str) -> Callable:
    def check(tmp_path):
        for signum in STOPS:
            run = Run(tmp_path / signum.name)
            enter(run, column, signal_event(signum), keep_going=False)
            assert run.start() == 0
            assert run.logged(f"Received signal {signum.name}, initiating graceful shutdown...")
            assert run.states()[-2:] == ["SHUTTING_DOWN", "EXITED"]
            if column == V:
                assert run.sent_to("helper") == [signal.SIGTERM]
    return check


def stop_first_running_with_drain(tmp_path):
    stop_first(R)(tmp_path)
    run = Run(tmp_path / "drain", readiness_drain=5.0)
    stopped_at: list[float] = []
    enter(run, R, lambda run: (stopped_at.append(run.host.now), run.host.signal_us(signal.SIGTERM)),
          keep_going=False)
    assert run.start() == 0
    assert run.logged("Readiness set to 503; Squid keeps serving for 5s (READINESS_DRAIN)")
    assert [ready for state, _, ready in run.world.seen if state is State.SHUTTING_DOWN] != []
    assert not any(ready for state, _, ready in run.world.seen if state is State.SHUTTING_DOWN)
    assert run.when_sent("squid", signal.SIGTERM) == [stopped_at[0] + 5.0]


def only_stopping_enters_shutting_down(tmp_path):
    """SHUTTING_DOWN is entered by a stop only: a stop there is never the first."""
    run = Run(tmp_path)
    enter(run, SD, lambda run: None)
    run.start()
    assert all(state is not State.SHUTTING_DOWN or run.supervisor.stop_signal is not None
               for state, _, _ in run.world.seen)
    assert run.logged("Received signal SIGTERM, initiating graceful shutdown...")


def stop_in_error(tmp_path):
    for signum in STOPS:
        run = Run(tmp_path / signum.name)
        enter(run, E, signal_event(signum))
        assert run.start() == 1
        assert run.sent_to("squid") == [signal.SIGHUP, signal.SIGTERM, signal.SIGINT]
        assert run.logged(f"Received {signum.name} while stopping after an error: Squid stops "
                          "without waiting for its clients")
        assert not run.logged("initiating graceful shutdown")


def stop_again_ignored(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        enter(run, column, signal_event(signal.SIGTERM, signal.SIGINT), keep_going=False)
        assert run.start() == 0
        assert run.logged("Received signal SIGTERM, initiating graceful shutdown...")
        assert not run.logged("SIGINT")
        assert signal.SIGINT not in run.sent_to("squid")
    return check


def stop_again_interrupts_squid(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        if column == SD:
            enter(run, SD, signal_event(signal.SIGINT))
            expected = ["Received signal SIGTERM", "Received SIGINT again"]
        elif column == E:
            enter(run, E, signal_event(signal.SIGTERM, signal.SIGINT))
            expected = ["Received SIGTERM while stopping after an error"]
        else:
            enter(run, column, signal_event(signal.SIGTERM, signal.SIGINT), keep_going=False)
            expected = ["Received signal SIGTERM", "Received SIGINT again"]
        assert run.start() == (1 if column == E else 0)
        assert run.sent_to("squid").count(signal.SIGINT) == 1
        assert all(run.logged(text) for text in expected)
        assert run.logged("Squid stops without waiting for its clients")
        assert not run.logged("Shutdown timeout")  # Squid did not wait for its client
    return check


def hup_ignored(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        enter(run, column, signal_event(signal.SIGHUP))
        if column in (SD, E):
            run.world.when(lambda s: True, finish_drain)
        run.start()
        state = STATE_OF[column].value
        # (the ERROR run gets there by a reload: that HUP is the only one Squid gets)
        assert run.sent_to("squid").count(signal.SIGHUP) == (1 if column == E else 0)
        if column in (V, SH, SS):
            assert run.logged(f"Ignoring SIGHUP in state {state}: a reload is only possible once "
                              "Squid is running")
            assert "RUNNING" in run.states() and run.code == 0
        else:
            assert run.logged(f"Ignoring SIGHUP in state {state}", "INFO")
    return check


def hup_reloads(tmp_path):
    # valid: /ready 503 while validating, HUP to Squid, /ready 200 once it listens again
    run = Run(tmp_path / "valid")
    looked_again = []  # SMP: the kids Squid had given up on, looked for while it reloads
    run.supervisor.kids.reloaded = lambda: looked_again.append(
        (run.sent_to("squid") == [signal.SIGHUP], run.logged("Squid reloaded its configuration")))
    enter(run, R, signal_event(signal.SIGHUP))
    assert run.start() == 0
    assert run.sent_to("squid")[0] == signal.SIGHUP
    assert looked_again == [(True, False)]  # once the HUP is sent, before the reload ends
    assert len([p for p in run.host.processes.values() if p.kind == "helper"]) == 2
    running = [ready for state, _, ready in run.world.seen if state is State.RUNNING]
    assert False in running and running[-1] is True
    assert run.logged("Configuration valid; Squid is reloading it")
    assert run.logged("Squid reloaded its configuration")
    # invalid: rejected before Squid sees it
    run = Run(tmp_path / "invalid")

    def reject(run):
        run.world.parse_code, run.world.parse_output = 1, b"FATAL: Bungled http_port\n"
        run.host.signal_us(signal.SIGHUP)
    run.supervisor.kids.reloaded = lambda: looked_again.append("rejected")
    enter(run, R, reject)
    assert run.start() == 0
    assert signal.SIGHUP not in run.sent_to("squid")
    assert "rejected" not in looked_again
    assert run.logged("Reload rejected, Squid keeps running on its current configuration: ", "ERROR")
    assert run.logged("Bungled", "ERROR")
    # a deleted mounted config is rejected, not replaced by the image's default
    run = Run(tmp_path / "deleted")

    def delete(run):
        os.unlink(run.settings.squid_config)
        run.host.signal_us(signal.SIGHUP)
    enter(run, R, delete)
    assert run.start() == 0
    assert signal.SIGHUP not in run.sent_to("squid")
    assert run.logged("Reload rejected, Squid keeps running on its current configuration: "
                      f"The mounted Squid configuration {run.settings.squid_config} is gone", "ERROR")


def usr_ignored(column: str) -> Callable:
    def check(tmp_path):
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            run = Run(tmp_path / signum.name)
            enter(run, column, signal_event(signum))
            if column in (SD, E):
                run.world.when(lambda s: True, finish_drain)
            run.start()
            assert signum not in run.sent_to("squid")
            assert run.logged(f"Ignoring {signum.name} in state {STATE_OF[column].value}", "DEBUG")
    return check


def usr_forwarded(tmp_path):
    for signum in (signal.SIGUSR1, signal.SIGUSR2):
        run = Run(tmp_path / signum.name)
        enter(run, R, signal_event(signum))
        assert run.start() == 0
        assert run.sent_to("squid")[0] == signum


def helper_exit(tmp_path):
    run = Run(tmp_path / "ok")
    enter(run, R, lambda run: None)
    assert run.start() == 0 and run.states()[:2] == ["VALIDATING", "STARTING_HEALTH"]
    run = Run(tmp_path / "failed")
    run.world.parse_code, run.world.parse_output = 1, b"FATAL: Bungled http_port\n"
    assert run.start() == 1
    assert run.states() == ["VALIDATING", "ERROR", "EXITED"]
    assert run.logged("FATAL: Bungled http_port", "ERROR")
    assert run.logged("is invalid", "ERROR")


def no_such_child(kind: str, column: str) -> Callable:
    """A dash: the child does not exist at any wait in that state."""
    def check(tmp_path):
        run = Run(tmp_path)
        enter(run, column, lambda run: None)
        if column in (SD, E):
            run.world.when(lambda s: True, finish_drain)
        run.start()
        # in RUNNING, outside a reload (during one, /ready is 503 and its helper runs)
        seen = [live for state, live, ready in run.world.seen
                if state is STATE_OF[column] and (ready or state is not State.RUNNING)]
        assert seen and all(kind not in live for live in seen)
    return check


def helper_reaped_in(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        if column == SD:  # a stop while `squid -k parse` runs
            enter(run, V, signal_event(signal.SIGTERM), keep_going=False)
            assert run.start() == 0
        else:  # Squid dies during a reload's `squid -k parse`: ERROR with the helper running
            def reload_then_squid_dies(run):
                run.world.parse_hangs = True
                run.host.signal_us(signal.SIGHUP)
            enter(run, R, reload_then_squid_dies, keep_going=False)
            run.world.when(lambda s: bool(run.host.alive("helper")),
                           lambda run: run.host.exit(run.one("squid"), 1))
            assert run.start() == 1
            assert run.states()[-2:] == ["ERROR", "EXITED"]
        assert signal.SIGTERM in run.sent_to("helper")
        assert not run.host.alive("helper")  # and start() found nothing unreaped
    return check


def health_restarts(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path, startup_timeout=60.0)  # 5 deaths take 7.5 s
        deaths: list[float] = []

        def crash(run):
            deaths.append(run.host.now)
            crash_health(run)
        if column == SH:  # it dies before it is ever ready
            run.world.health_ready = False
        elif column == SS:  # Squid never listens: the health server's deaths come first
            run.world.squid_listens = False
        for _ in range(healthchild.CRASH_LIMIT):
            run.world.when(in_state(STATE_OF[column], lambda s: bool(run.host.alive("health"))
                                    and (column == SH or s.health.ready)), crash)
        assert run.start() == 1
        starts = [when for when, kind in run.world.spawn_times if kind == "health"]
        assert [round(b - a, 3) for a, b in zip(deaths, starts[1:])] == [0.5, 1.0, 2.0, 4.0]
        assert run.logged("Health check server died 5 times within 60s", "ERROR")
        assert run.states()[-2:] == ["ERROR", "EXITED"]
    return check


def health_not_restarted(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        enter(run, column, crash_health)
        run.world.when(lambda s: True, finish_drain)
        run.start()
        assert len([p for p in run.host.processes.values() if p.kind == "health"]) == 1
        assert not run.logged("restarting in")
    return check


def squid_dies_fatal(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        died: list[float] = []

        def die(run):
            died.append(run.host.now)
            run.host.exit(run.one("squid"), 3)
        enter(run, column, die, keep_going=False)
        assert run.start() == 1
        assert run.logged("Squid process died: exited with code 3", "ERROR")
        assert run.states()[-3:] == [STATE_OF[column].value, "ERROR", "EXITED"]
        # seen at once: the health server is stopped at the very time Squid died
        assert run.when_sent("health", signal.SIGTERM) == died
    return check


def squid_exits_while_stopping(tmp_path):
    run = Run(tmp_path)
    enter(run, SD, lambda run: run.host.exit(run.one("squid"), 0))
    assert run.start() == 0
    assert run.logged("Squid exited with code 0", "INFO")
    squid_gone = [p for p in run.host.processes.values() if p.kind == "squid"][0]
    assert signal.SIGINT not in squid_gone.signals
    assert run.sent_to("health") == [signal.SIGTERM]


def squid_reaped_in_error(tmp_path):
    run = Run(tmp_path)
    enter(run, E, lambda run: run.host.exit(run.one("squid"), 0))
    assert run.start() == 1
    assert not run.host.alive("squid")
    assert run.sent_to("squid") == [signal.SIGHUP, signal.SIGTERM]  # the reload's HUP, the stop's TERM


def orphan_reaped(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        enter(run, column, lambda run: run.host.orphan_exits())
        if column in (SD, E):
            run.world.when(lambda s: True, finish_drain)
        run.start()
        assert run.supervisor.children.orphans_reaped == 1
    return check


def output_relayed(column: str) -> Callable:
    def check(tmp_path, capfd):
        run = Run(tmp_path)
        kind = {SH: "health", SS: "health"}.get(column, "squid")

        def write(run):
            run.one(kind).write(1, f"a line from {kind} in {column}\n".encode())
        enter(run, column, write)
        if column in (SD, E):
            run.world.when(lambda s: True, finish_drain)
        run.start()
        assert f"a line from {kind} in {column}\n" in capfd.readouterr().out
    return check


def helper_output_kept(tmp_path, capfd):
    helper_exit(tmp_path)
    assert "Bungled" not in capfd.readouterr().out


def pipe_eof(column: str) -> Callable:
    def check(tmp_path, capfd):
        run = Run(tmp_path)
        kind = "helper" if column == V else {SH: "health", SS: "health"}.get(column, "squid")

        def partial_then_eof(run):
            process = run.one(kind)
            process.write(1, b"the last words, no newline")
            process.close(1)
        # V: a helper's lines are kept, not relayed; it fails to show them, so
        # there is no RUNNING to go on to
        enter(run, column, partial_then_eof, keep_going=column != V)
        if column in (SD, E):
            run.world.when(lambda s: True, finish_drain)
        if column == V:
            run.world.parse_code = 1
        run.start()
        if column == V:
            assert run.logged("the last words, no newline", "ERROR")
        else:
            assert "the last words, no newline\n" in capfd.readouterr().out
    return check


def health_ready_starts(tmp_path):
    run = Run(tmp_path)
    enter(run, R, lambda run: None)
    run.start()
    health = [p for p in run.host.processes.values() if p.kind == "health"][0]
    assert run.logged(f"Health check server started (PID: {health.pid})", "INFO")
    assert run.states()[1:3] == ["STARTING_HEALTH", "STARTING_SQUID"]


def health_ready_after_restart(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        world, host, state = run.world, run.host, STATE_OF[column]
        if column == SS:
            world.squid_listens = False
        world.when(in_state(state, lambda s: s.health.ready), crash_health)
        world.when(in_state(state, lambda s: s.health.ready), lambda run: None)  # READY=1 again
        if column == SS:
            world.when(lambda s: True, lambda run: world.listen(run.one("squid")))
        world.when(in_state(State.RUNNING, lambda s: s.ready), lambda run: host.signal_us(signal.SIGTERM))
        assert run.start() == 0
        first, second = [p for p in host.processes.values() if p.kind == "health"]
        assert run.logged(f"Health check server started (PID: {first.pid})", "INFO")
        assert run.logged(f"Health check server restarted (PID: {second.pid})", "INFO")
        assert [s for (_, m), s in zip(run.log.lines, run.log.states) if "restarted (PID" in m] == [state]
    return check


def health_ready_ignored(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        enter(run, column, lambda run: run.one("health").write(3, b"READY=1\n"))
        run.world.when(lambda s: True, finish_drain)
        run.start()
        assert len([m for _, m in run.log.lines if m.startswith("Health check server")]) == 1
    return check


def helper_deadline(column: str) -> Callable:
    def check(tmp_path):
        assert (config.PARSE_TIMEOUT, tls.CERTGEN_TIMEOUT, cache.INIT_TIMEOUT) == (30, 30, 120)
        run = Run(tmp_path)
        if column == V:
            run.world.parse_hangs = True
            assert run.start() == 1
            assert run.sent_to("helper") == [signal.SIGKILL]
            assert run.logged("squid -k parse did not finish within 30s", "ERROR")
        else:
            def hanging_reload(run):
                run.world.parse_hangs = True
                run.host.signal_us(signal.SIGHUP)
            enter(run, R, hanging_reload)
            assert run.start() == 0
            assert run.sent_to("helper") == [signal.SIGKILL]
            assert run.logged("Reload rejected, Squid keeps running on its current configuration: "
                              "squid -k parse did not finish within 30s", "ERROR")
            assert signal.SIGHUP not in run.sent_to("squid")
    return check


def health_start_deadline(tmp_path):
    run = Run(tmp_path)
    run.world.health_ready = False
    assert run.start() == 1
    assert run.logged("Health check server did not start listening on port 8080 within 10s", "ERROR")
    assert run.states()[-3:] == ["STARTING_HEALTH", "ERROR", "EXITED"]


def readiness_check_starting(tmp_path):
    run = Run(tmp_path)
    run.world.squid_listens = False
    times: dict[str, float] = {}

    def at(name: str, then: Event) -> Event:
        return lambda run: (times.setdefault(name, run.host.now), then(run))
    run.world.when(in_state(State.STARTING_SQUID, lambda s: run.host.now >= 1000.5),
                   at("listening", lambda run: run.world.listen(run.one("squid"))))
    run.world.when(in_state(State.RUNNING), at("running", signal_event(signal.SIGTERM)))
    assert run.start() == 0
    # checked every 10 ms until then, and RUNNING within one interval of it
    waits = [state for state, _, _ in run.world.seen if state is State.STARTING_SQUID]
    assert len(waits) >= 50
    assert 0 <= times["running"] - times["listening"] <= 0.01 + 1e-6


def readiness_check_after_reload(tmp_path):
    hup_reloads(tmp_path)


def startup_timeout(tmp_path):
    run = Run(tmp_path, startup_timeout=7.0)
    run.world.squid_listens = False
    assert run.start() == 1
    assert run.logged("Squid did not start accepting connections on port 3128 within 7s", "ERROR")


def drain_ends(tmp_path):
    run = Run(tmp_path, readiness_drain=3.0)
    stopped: list[float] = []
    enter(run, R, lambda run: (stopped.append(run.host.now), run.host.signal_us(signal.SIGTERM)),
          keep_going=False)
    assert run.start() == 0
    assert run.when_sent("squid", signal.SIGTERM) == [stopped[0] + 3.0]


def drain_check(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path)
        left: list[float] = []

        def client_leaves_a_second_later(run):
            start = run.host.now
            run.world.when(lambda s: run.host.now >= start + 1.0,
                           lambda run: (left.append(run.host.now), finish_drain(run)))
        enter(run, column, client_leaves_a_second_later)
        assert run.start() == (1 if column == E else 0)
        (term,) = run.when_sent("squid", signal.SIGTERM)
        (interrupt,) = run.when_sent("squid", signal.SIGINT)
        assert term < left[0] <= interrupt <= left[0] + 0.1 + 1e-6
    return check


def shutdown_timeout(column: str) -> Callable:
    def check(tmp_path):
        run = Run(tmp_path, shutdown_timeout=12.0)
        run.world.helper_ignores_term = True
        enter(run, column, lambda run: None)  # the client never leaves
        assert run.start() == (1 if column == E else 0)
        assert run.logged("Shutdown timeout of 12s passed; sending SIGKILL to every remaining "
                          "process", "WARNING")
        (term,) = run.when_sent("squid", signal.SIGTERM)
        assert [(when - term, sig) for when, pid, sig in run.host.sent if pid == 0] == \
            [(12.0, signal.SIGKILL)]
    return check


def smp_run(tmp_path, monkeypatch) -> Run:
    """A run as with two workers. The fake Squid listens as one process;
    telling its workers apart in /proc, and the directories SMP needs, are
    smp's (tests/unit/test_smp.py)."""
    run = Run(tmp_path)
    real = supervisor_module.accepting
    monkeypatch.setattr(smp, "workers", lambda config: 2)
    monkeypatch.setattr(smp, "writable_directories", lambda config: [])
    monkeypatch.setattr(supervisor_module, "accepting",
                        lambda config, port, pid, workers, proc: real(config, port, pid, 1, proc))
    return run


def kids_watched_once_ready(tmp_path, monkeypatch):
    """SMP's kids are watched (their deaths seen, their successors looked for)
    only from the moment Squid counts as ready, never earlier in STARTING_SQUID."""
    run = smp_run(tmp_path, monkeypatch)
    supervisor = run.supervisor
    answers: list[bool] = []
    accepting = supervisor.squid_accepting
    supervisor.squid_accepting = lambda: answers.append(accepting()) or answers[-1]
    watched: list[tuple[State, list[bool]]] = []
    supervisor.kids.start = lambda master: watched.append((supervisor.state, list(answers)))
    enter(run, SS, lambda run: None)
    assert run.start() == 0
    ((state, answered),) = watched
    assert state is State.STARTING_SQUID and answered[-1] is True and answered.count(True) == 1


def kids_unwatched_before_squid_stops(column: str) -> Callable:
    """Stopping Squid ends the watch first: the kids exit because their master
    stops, which is neither reported nor waited for as a restart."""
    def check(tmp_path, monkeypatch):
        run = smp_run(tmp_path, monkeypatch)
        supervisor = run.supervisor
        stopped: list[tuple[State, bool]] = []
        stop = supervisor.kids.stop

        def recorded(signum=None):
            stopped.append((supervisor.state, signal.SIGTERM in run.sent_to("squid")))
            stop(signum)
        supervisor.kids.start = lambda master: None
        supervisor.kids.stop = recorded
        enter(run, column, lambda run: None)
        assert run.start() == (1 if column == E else 0)
        assert (STATE_OF[column], False) in stopped
    return check


def checked_by(path: str, test: str) -> Callable:
    """A cell the made-up OS cannot reach (Squid's SMP kids are its children,
    seen through pidfds): the named test checks it on real processes; here,
    that the test is still there."""
    def check(tmp_path):
        with open(f"{REPO}/{path}", encoding="utf-8") as source:
            assert f"def {test}(" in source.read(), f"{path} has no {test}"
    return check


DASH = "—"
CHECKS: dict[tuple[str, str], Cell] = {}


def row(event: str, *cells: Cell) -> None:
    for column, cell in zip((V, SH, SS, R, SD, E), cells):
        CHECKS[(event, column)] = cell


row("TERM, INT, QUIT (first)",
    Cell("Stop (a running helper gets TERM, is reaped)", stop_first(V)),
    Cell("Stop", stop_first(SH)),
    Cell("Stop", stop_first(SS)),
    Cell("with READINESS_DRAIN > 0, /ready turns 503 first and Squid serves on",
         stop_first_running_with_drain),
    Cell(DASH, only_stopping_enters_shutting_down),
    Cell("SIGINT to Squid if it is still stopping; exit code stays 1", stop_in_error))
row("TERM, INT, QUIT (again)",
    Cell("ignored", stop_again_ignored(V)),
    Cell("ignored", stop_again_ignored(SH)),
    Cell("SIGINT to Squid: it stops without waiting for clients", stop_again_interrupts_squid(SS)),
    Cell("SIGINT to Squid", stop_again_interrupts_squid(R)),
    Cell("SIGINT to Squid", stop_again_interrupts_squid(SD)),
    Cell("SIGINT to Squid", stop_again_interrupts_squid(E)))
row("HUP",
    Cell("ignored, logged", hup_ignored(V)),
    Cell("ignored, logged", hup_ignored(SH)),
    Cell("ignored, logged", hup_ignored(SS)),
    Cell("invalid → `[ERROR] Reload rejected, Squid keeps running on its current configuration: …`",
         hup_reloads),
    Cell("ignored", hup_ignored(SD)),
    Cell("ignored", hup_ignored(E)))
row("USR1, USR2",
    Cell("ignored (DEBUG line)", usr_ignored(V)),
    Cell("ignored", usr_ignored(SH)),
    Cell("ignored", usr_ignored(SS)),
    Cell("forwarded to Squid", usr_forwarded),
    Cell("ignored", usr_ignored(SD)),
    Cell("ignored", usr_ignored(E)))
row("CHLD: helper exited",
    Cell("exit 0 → next validator; else Fatal naming the helper and quoting its output", helper_exit),
    Cell(DASH, no_such_child("helper", SH)),
    Cell(DASH, no_such_child("helper", SS)),
    Cell("— (a reload's `squid -k parse` is a helper too)", no_such_child("helper", R)),
    Cell("reaped", helper_reaped_in(SD)),
    Cell("reaped", helper_reaped_in(E)))
row("CHLD: health server exited",
    Cell(DASH, no_such_child("health", V)),
    Cell("restart after backoff 0.5 s, 1 s, 2 s, 4 s; the 5th death within 60 s is Fatal "
         "`Health check server died 5 times within 60s`", health_restarts(SH)),
    Cell("the 5th death within 60 s is Fatal", health_restarts(SS)),
    Cell("the 5th death within 60 s is Fatal", health_restarts(R)),
    Cell("reaped, not restarted", health_not_restarted(SD)),
    Cell("reaped", health_not_restarted(E)))
row("CHLD: Squid exited",
    Cell(DASH, no_such_child("squid", V)),
    Cell(DASH, no_such_child("squid", SH)),
    Cell("Fatal `Squid process died: <status>`", squid_dies_fatal(SS)),
    Cell("Fatal `Squid process died: <status>` (seen within milliseconds", squid_dies_fatal(R)),
    Cell("`Squid exited with code N`; next: stop the other children", squid_exits_while_stopping),
    Cell("reaped", squid_reaped_in_error))
row("SMP: a kid of Squid's master exited (its pidfd turns readable)",
    Cell(DASH, no_such_child("squid", V)),
    Cell(DASH, no_such_child("squid", SH)),
    Cell("— (watched once Squid is ready)", kids_watched_once_ready),
    Cell("`[WARNING] Squid kid squid-N (PID P) exited; Squid's master restarts it`",
         checked_by("tests/system/test_smp.py",
                    "test_a_killed_kid_is_logged_counted_and_the_container_stays_up")),
    Cell("not watched: the kids exit because Squid stops", kids_unwatched_before_squid_stops(SD)),
    Cell("not watched", kids_unwatched_before_squid_stops(E)))
row("CHLD: orphan (re-parented to PID 1)", *(Cell("reaped, counted", orphan_reaped(c))
                                              for c in (V, SH, SS, R, SD, E)))
row("Output line on a child's pipe",
    Cell("relayed whole to our stdout/stderr (helpers: kept for the error message)", helper_output_kept),
    *(Cell("relayed whole to our stdout/stderr", output_relayed(c)) for c in (SH, SS, R, SD, E)))
row("Pipe EOF", *(Cell("last partial line relayed, pipe closed", pipe_eof(c))
                  for c in (V, SH, SS, R, SD, E)))
row("Health `READY=1` on its notify pipe",
    Cell(DASH, no_such_child("health", V)),
    Cell("`Health check server started (PID: N)` → STARTING_SQUID", health_ready_starts),
    Cell("after a restart: `Health check server restarted (PID: N)`", health_ready_after_restart(SS)),
    Cell("after a restart: `Health check server restarted (PID: N)`", health_ready_after_restart(R)),
    Cell("ignored", health_ready_ignored(SD)),
    Cell("ignored", health_ready_ignored(E)))
def quiet(column: str, row: str) -> Callable:
    """A timer's dash: with every child holding still, time runs out in that
    state (or, in RUNNING, the loop would sleep for ever: no timer is armed at
    all), and what the row's timer does is never seen in that state."""
    def check(tmp_path):
        run = Run(tmp_path, readiness_drain=5.0)
        state = STATE_OF[column]
        calls: list[tuple[str, State]] = []
        supervisor = run.supervisor
        for owner, name in ((supervisor, "squid_accepting"), (supervisor.drain, "watch")):
            method = getattr(owner, name)

            def counted(*args, name=name, method=method):
                calls.append((name, supervisor.state))
                return method(*args)
            setattr(owner, name, counted)
        world = run.world
        if column == V:
            world.parse_hangs = True
        elif column == SH:
            world.health_ready = False
        elif column == SS:
            world.squid_listens = False
        else:
            enter(run, column, lambda run: None, keep_going=False)
        if column == R:
            with pytest.raises(Stuck, match="no timer armed"):
                run.start()
            assert run.supervisor.state is State.RUNNING
        else:
            run.start()
        kind, signature = TIMER_SIGNATURES[row]
        if kind == "log":
            assert not [m for (lvl, m), s in zip(run.log.lines, run.log.states)
                        if signature in m and s is state]
        else:
            assert (signature, state) not in calls
        assert [s for s in run.log.states if s is state]  # the run was there
    return check


TIMER_SIGNATURES = {
    "helper": ("log", "did not finish within"),
    "health": ("log", "Health check server did not start listening"),
    "readiness": ("call", "squid_accepting"),
    "startup": ("log", "did not start accepting connections"),
    "drain ends": ("log", "Readiness set to 503"),
    "drain check": ("call", "watch"),
    "shutdown": ("log", "Shutdown timeout"),
}

row("Timer: helper deadline (parse 30 s, certgen 30 s, `squid -z` 120 s)",
    Cell("helper SIGKILLed, reaped; Fatal `… did not finish within Ns`", helper_deadline(V)),
    Cell(DASH, quiet(SH, "helper")),
    Cell(DASH, quiet(SS, "helper")),
    Cell("— (reload: rejected, Squid keeps running)", helper_deadline(R)),
    Cell(DASH, quiet(SD, "helper")),
    Cell(DASH, quiet(E, "helper")))
row("Timer: health start deadline (10 s)",
    Cell(DASH, quiet(V, "health")),
    Cell("Fatal `Health check server did not start listening…`", health_start_deadline),
    *(Cell(DASH, quiet(c, "health")) for c in (SS, R, SD, E)))
row("Timer: readiness check (every 10 ms, start-up and reload only)",
    Cell(DASH, quiet(V, "readiness")),
    Cell(DASH, quiet(SH, "readiness")),
    Cell("pid file present and Squid's own socket listening on its port",
         readiness_check_starting),
    Cell("after a reload: port back → /ready 200", readiness_check_after_reload),
    Cell(DASH, quiet(SD, "readiness")),
    Cell(DASH, quiet(E, "readiness")))
row("Timer: kid check (SMP, every 50 ms, only while a kid is missing)",
    Cell(DASH, no_such_child("squid", V)),
    Cell(DASH, no_such_child("squid", SH)),
    Cell(DASH, kids_watched_once_ready),
    Cell("successor found → logged, counted; none after 60 s",
         checked_by("tests/unit/test_smp.py", "test_a_kid_squid_does_not_restart_is_given_up_on")),
    Cell(DASH, kids_unwatched_before_squid_stops(SD)),
    Cell(DASH, kids_unwatched_before_squid_stops(E)))
row("Timer: STARTUP_TIMEOUT",
    Cell(DASH, quiet(V, "startup")),
    Cell(DASH, quiet(SH, "startup")),
    Cell("Fatal `Squid did not start accepting connections on port P within Ns`", startup_timeout),
    *(Cell(DASH, quiet(c, "startup")) for c in (R, SD, E)))
row("Timer: READINESS_DRAIN ends",
    *(Cell(DASH, quiet(c, "drain ends")) for c in (V, SH, SS, R)),
    Cell("TERM to Squid", drain_ends),
    Cell(DASH, quiet(E, "drain ends")))
row("Timer: drain check (every 100 ms, only while Squid drains)",
    *(Cell(DASH, quiet(c, "drain check")) for c in (V, SH, SS, R)),
    Cell("no established client connection on Squid's ports", drain_check(SD)),
    Cell("no established client connection on Squid's ports", drain_check(E)))
row("Timer: SHUTDOWN_TIMEOUT",
    *(Cell(DASH, quiet(c, "shutdown")) for c in (V, SH, SS, R)),
    Cell("`[WARNING] Shutdown timeout of Ns passed; sending SIGKILL to every remaining process`; "
         "everything reaped; exit 0", shutdown_timeout(SD)),
    Cell("same; exit 1", shutdown_timeout(E)))


# -- the tests -------------------------------------------------------------------------
def test_the_table_has_every_state_as_a_column_and_a_check_for_every_cell():
    assert {column for _, column in TABLE} == {V, SH, SS, R, SD, E}
    assert sorted(TABLE) == sorted(CHECKS), "the document's cells and the checks differ"


@pytest.mark.parametrize("event,column", sorted(TABLE), ids=lambda value: re.sub(r"\W+", "_", value))
def test_cell(event, column, tmp_path, request):
    cell = CHECKS[(event, column)]
    text = TABLE[(event, column)]
    if cell.phrase == DASH:
        assert text == DASH, f"the document says {text!r}"
    else:
        assert cell.phrase in text, f"the document says {text!r}"
    code = cell.check.__code__
    fixtures = code.co_varnames[1:code.co_argcount]  # after tmp_path: capfd, monkeypatch
    cell.check(tmp_path, *(request.getfixturevalue(name) for name in fixtures))
