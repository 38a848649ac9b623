"""The CephaloProxy supervisor: the state machine of docs/state-machine.md.

``run`` reads top to bottom like that document: validate, start the health
server, start Squid, monitor; a stop signal in any state ends in
``shut_down`` (exit 0), a fatal event in any state ends in ERROR (exit 1).
Waiting always happens in ``wait_until``, which turns the loop: signals are
seen and children reaped while we wait, whatever we wait for.
"""

from __future__ import annotations

import collections
import enum
import glob
import os
import signal
import sys
import time
from typing import Callable

from . import __version__, children, logs, redact, signals, smp, squid, squidconf, statefile, validators
from .children import Child, Children
from .errors import EXIT_FAILURE, EXIT_OK, Fatal
from .logs import Logger
from .loop import Loop, Timer
from .settings import Settings

HEALTH_START_TIMEOUT = 10.0
HEALTH_CRASH_LIMIT = 5  # deaths within HEALTH_CRASH_WINDOW that make it fatal
HEALTH_CRASH_WINDOW = 60.0
HEALTH_BACKOFF_FIRST = 0.5  # doubled after each death, up to HEALTH_BACKOFF_MAX
HEALTH_BACKOFF_MAX = 8.0
# Squid has no readiness notification we can use, so start-up and the drain are
# the two moments the loop checks on a timer; neither timer exists otherwise.
READINESS_CHECK_INTERVAL = 0.01
DRAIN_CHECK_INTERVAL = 0.1
RELOAD_CLOSE_WAIT = 1.0  # how long a reload may take to close Squid's ports
HELPER_OUTPUT_LINES = 50  # what a helper's error message can quote


class State(enum.Enum):
    INITIALIZING = "INITIALIZING"
    VALIDATING = "VALIDATING"
    STARTING_HEALTH = "STARTING_HEALTH"
    STARTING_SQUID = "STARTING_SQUID"
    RUNNING = "RUNNING"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    ERROR = "ERROR"
    EXITED = "EXITED"


S = State
# Every transition the supervisor may make; ``enter`` refuses any other.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.INITIALIZING: frozenset({S.VALIDATING, S.SHUTTING_DOWN, S.ERROR}),
    S.VALIDATING: frozenset({S.STARTING_HEALTH, S.SHUTTING_DOWN, S.ERROR, S.EXITED}),
    S.STARTING_HEALTH: frozenset({S.STARTING_SQUID, S.SHUTTING_DOWN, S.ERROR}),
    S.STARTING_SQUID: frozenset({S.RUNNING, S.SHUTTING_DOWN, S.ERROR}),
    S.RUNNING: frozenset({S.SHUTTING_DOWN, S.ERROR}),
    S.SHUTTING_DOWN: frozenset({S.EXITED}),
    S.ERROR: frozenset({S.EXITED}),
    S.EXITED: frozenset(),
}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
SQUID_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # log rotation, debug toggle


class StopRequested(Exception):
    """A stop signal arrived: leave whatever we were waiting for."""


def interpreter_command() -> list[str]:
    """How to start another copy of this Python with the same isolation flags."""
    flags = [flag for flag, on in (("-I", sys.flags.isolated), ("-S", sys.flags.no_site)) if on]
    return [sys.executable, *flags]


class Supervisor:
    def __init__(self, wakeup_fd: int, settings: Settings, log: Logger):
        self.settings = settings
        self.log = log
        self.loop = Loop(wakeup_fd, self.handle_signals)
        self.children = Children(self.loop)
        logs.OUTPUT.attach(self.loop)  # from now on, a stalled reader never blocks PID 1
        self.state = State.INITIALIZING
        self.started_at = time.time()
        self.state_since = self.started_at
        self.stop_signal: int | None = None
        self.failure: str | None = None  # a fatal event seen in a callback
        self.reload_requested = False
        self.config: squidconf.SquidConfig | None = None
        self.squid: Child | None = None
        self.health: Child | None = None
        self.health_ready = False
        self.health_deaths: collections.deque[float] = collections.deque()
        self.health_restarts = 0
        self.ready = False  # only ever true in RUNNING; false there during a reload
        self.reason = ""
        self.squid_interrupted = False
        self.workers = 1  # Squid's `workers`: more than one runs its SMP mode (smp.py)
        self.kids = smp.KidWatch(self.loop, self.on_kid_death, self.on_kid_restart,
                                 self.on_kid_given_up)
        self.kid_restarts = 0
        self.mounted = False  # whether Squid runs on the mounted config (not the image's default)
        self.scratch_dir: str | None = None  # `validate` writes only here

    # -- the contract ----------------------------------------------------------
    def run(self) -> int:
        try:
            self.log.info(f"CephaloProxy entrypoint starting (UID: {os.getuid()}, GID: {os.getgid()})")
            self.config = validators.put_in_place(self.validate())
            self.start_health()
            self.start_squid()
            self.enter(State.RUNNING)  # STARTING_SQUID -> RUNNING
            self.log.info("Container ready, entering monitoring loop")
            while True:
                self.wait_until(lambda: self.reload_requested)
                self.reload()
        except StopRequested:
            self.shut_down()  # any state -> SHUTTING_DOWN -> EXITED
            return EXIT_OK
        except Fatal as fatal:
            self.enter(State.ERROR)  # any state -> ERROR -> EXITED
            self.log.error(str(fatal))
            if self.children.by_pid:
                self.stop_children()
            self.enter(State.EXITED)
            return fatal.code

    def validate_only(self) -> int:
        """`cephaloinit validate`: the validators alone, then exit 0 or 1.

        A dry run, also inside a running container (`docker exec ... validate`):
        it renders into a scratch directory of its own, publishes no state,
        and leaves what a running proxy uses alone (its config, pid file,
        merged CA, swap directories). What does not exist yet may be created
        (the directories, a first merged CA and certificate database).
        Interrupted by a stop signal, it gives no verdict: exit 128+N."""
        import shutil
        import tempfile

        try:
            os.makedirs(self.settings.run_dir, exist_ok=True)
            self.scratch_dir = tempfile.mkdtemp(prefix=".validate-", dir=self.settings.run_dir)
        except OSError as error:
            run_dir = self.settings.run_dir
            self.log.error(f"Cannot create a scratch directory in {run_dir}: {error.strerror}; the "
                           f"run directory {run_dir} must be writable by UID {os.getuid()} "
                           f"(GID {os.getgid()}): make it group 0 and group-writable")
            return EXIT_FAILURE
        try:
            self.validate()
        except StopRequested:
            self.stop_children()
            self.log.warning(f"Validation interrupted by {signals.name(self.stop_signal)}: no verdict")
            return 128 + self.stop_signal
        except Fatal as fatal:
            self.log.error(str(fatal))
            self.stop_children()
            return fatal.code
        finally:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
        return EXIT_OK

    def validate(self) -> squidconf.SquidConfig:
        self.enter(State.VALIDATING)  # INITIALIZING -> VALIDATING
        self.log.info("Validating Squid configuration...")
        self.mounted = os.path.lexists(self.settings.squid_config)
        config = validators.validate(self.validator_context())
        self.log.info("Configuration validation passed")
        return config

    def start_health(self) -> None:
        self.enter(State.STARTING_HEALTH)  # VALIDATING -> STARTING_HEALTH
        self.log.info(f"Starting health check server on port {self.settings.health_port}")
        self.spawn_health()
        if not self.wait_until(lambda: self.health_ready, self.loop.clock() + HEALTH_START_TIMEOUT):
            raise Fatal(f"Health check server did not start listening on port "
                        f"{self.settings.health_port} within {HEALTH_START_TIMEOUT:g}s")

    def start_squid(self) -> None:
        self.enter(State.STARTING_SQUID)  # STARTING_HEALTH -> STARTING_SQUID
        self.log.info("Starting Squid proxy...")
        self.remove_stale_shared_memory()
        self.workers = smp.workers(self.config)
        try:
            self.squid = self.children.spawn(
                "squid", squid.run_command(self.settings, self.config.run_path, self.workers),
                os.environ)
        except OSError as error:
            raise Fatal(f"Cannot start Squid {self.settings.squid_binary}: {error.strerror}") from None
        self.log.info(f"Squid started with PID {self.squid.pid}")
        self.publish()
        timeout = self.settings.startup_timeout
        if not self.wait_until(self.squid_accepting, self.loop.clock() + timeout,
                               poll=READINESS_CHECK_INTERVAL):
            raise Fatal(f"Squid did not start accepting connections on port "
                        f"{self.squid_port} within {timeout:g}s (STARTUP_TIMEOUT)")
        if self.workers > 1:
            self.log.info(f"Squid serves with {self.workers} workers (SMP)")
            try:
                self.kids.start(self.squid.pid)
            except OSError as error:  # no pidfd_open: an old kernel, or a seccomp filter
                self.kids.stop()
                self.log.warning(f"Cannot watch Squid's kids (pidfd_open: {error.strerror}); "
                                 "Squid still restarts a kid that dies, but that is not logged")

    def reload(self) -> None:
        """HUP in RUNNING: validate the config again; only a valid one reaches Squid."""
        self.reload_requested = False
        self.log.info("Received signal SIGHUP, validating the configuration before reloading Squid")
        self.set_ready(False, "reloading")
        try:
            config = validators.validate(self.validator_context()._replace(reload=True,
                                                                           mounted=self.mounted))
            if config.pid_file != self.config.pid_file:
                # Squid writes its pid file when it starts, not when it reconfigures.
                raise Fatal(f"pid_filename changed from {self.config.pid_file} to "
                            f"{config.pid_file}; Squid applies it only when it starts: restart "
                            "the container to apply it")
            if smp.workers(config) != self.workers:
                # Squid's master starts its kids once; a reconfigure cannot change how many.
                raise Fatal(f"workers changed from {self.workers} to {smp.workers(config)}; "
                            "Squid applies it only when it starts: restart the container to "
                            "apply it")
            config = validators.put_in_place(config)
        except Fatal as fatal:
            if self.failure is not None:  # Squid died meanwhile: not a config problem
                raise
            self.log.error(f"Reload rejected, Squid keeps running on its current configuration: {fatal}")
        else:
            self.config = config
            self.children.send(self.squid, signal.SIGHUP)
            self.log.info("Configuration valid; Squid is reloading it")
            # Squid closes its listening ports while it reconfigures and opens
            # them again: ready only once they are back (and no later).
            now = self.loop.clock()
            self.wait_until(lambda: not self.squid_accepting(), now + RELOAD_CLOSE_WAIT,
                            poll=READINESS_CHECK_INTERVAL)
            if not self.wait_until(self.squid_accepting, now + self.settings.startup_timeout,
                                   poll=READINESS_CHECK_INTERVAL):
                raise Fatal(f"Squid did not accept connections on port {self.squid_port} again "
                            f"within {self.settings.startup_timeout:g}s of a reload")
            self.log.info("Squid reloaded its configuration")
        self.set_ready(True, "")

    def shut_down(self) -> None:
        was_running = self.state is State.RUNNING
        self.enter(State.SHUTTING_DOWN)  # any state -> SHUTTING_DOWN
        deadline = self.start_deadline()
        drain = self.settings.readiness_drain
        if was_running and drain > 0:
            self.log.info(f"Readiness set to 503; Squid keeps serving for {drain:g}s (READINESS_DRAIN)")
            self.wait_until(lambda: not self.squid.running, self.loop.clock() + drain,
                            interruptible=False)
        self.stop_children(deadline)
        self.log.info("Shutdown complete")
        self.enter(State.EXITED)  # SHUTTING_DOWN -> EXITED

    # -- stopping ------------------------------------------------------------------
    def start_deadline(self) -> Timer:
        return self.loop.call_later(self.settings.shutdown_timeout, self.on_deadline)

    def on_deadline(self) -> None:
        self.log.warning(f"Shutdown timeout of {self.settings.shutdown_timeout:g}s passed; "
                         "sending SIGKILL to every remaining process")
        self.children.kill_everything()

    def stop_children(self, deadline=None) -> None:
        """Squid first (draining its clients), then every other child; all reaped.
        Bounded by the SHUTDOWN_TIMEOUT deadline, after which SIGKILL."""
        deadline = deadline or self.start_deadline()
        self.kids.stop()  # from here on, a kid that exits is Squid stopping
        if self.squid is not None and self.squid.running:
            self.children.send(self.squid, signal.SIGTERM)
            self.watch_drain()
            self.wait_until(lambda: not self.squid.running, interruptible=False)
        for child in list(self.children.by_pid.values()):
            self.children.send(child, signal.SIGTERM)
        self.wait_until(lambda: not self.children.by_pid, interruptible=False)
        deadline.cancel()

    def watch_drain(self) -> None:
        """After TERM, Squid waits its whole shutdown_lifetime even when idle; once
        its last client connection is gone, a second signal ends that wait."""
        if not self.squid.running or self.squid_interrupted:
            return
        if squid.established_connections(self.config.ports) == 0:
            self.interrupt_squid()
        else:
            self.loop.call_later(DRAIN_CHECK_INTERVAL, self.watch_drain)

    def interrupt_squid(self) -> None:
        self.squid_interrupted = True
        self.children.send(self.squid, signal.SIGINT)

    # -- waiting -------------------------------------------------------------------
    def wait_until(self, predicate: Callable[[], bool], deadline: float | None = None,
                   interruptible: bool = True, poll: float | None = None) -> bool:
        """Turn the loop until ``predicate`` holds (True) or ``deadline`` passes
        (False). Interruptible waits raise StopRequested or Fatal as soon as a
        stop signal or a fatal event has been seen."""
        wake = self.loop.call_at(deadline, lambda: None) if deadline is not None else None
        try:
            while True:
                if interruptible and self.stop_signal is not None:
                    raise StopRequested()
                if interruptible and self.failure is not None:
                    raise Fatal(self.failure)
                if predicate():
                    return True
                if deadline is not None and self.loop.clock() >= deadline:
                    return False
                tick = self.loop.call_later(poll, lambda: None) if poll else None
                self.loop.run_once()
                if tick:
                    tick.cancel()
        finally:
            if wake:
                wake.cancel()

    def run_helper(self, name: str, argv: list[str], timeout: float) -> validators.HelperResult:
        """Run a short helper command as our child, its output captured."""
        output: collections.deque[str] = collections.deque(maxlen=HELPER_OUTPUT_LINES)
        try:
            helper = self.children.spawn(
                name, argv, os.environ,
                # Helpers quote what they choke on: never let that be key material.
                capture=lambda line: output.append(redact.line(line.decode("utf-8", "replace").rstrip())))
        except OSError as error:
            raise Fatal(f"Cannot run {name} ({argv[0]}): {error.strerror}") from None
        if not self.wait_until(lambda: not helper.running, self.loop.clock() + timeout):
            self.children.send(helper, signal.SIGKILL)
            self.wait_until(lambda: not helper.running, interruptible=False)
            raise Fatal(f"{name} did not finish within {timeout:g}s")
        return validators.HelperResult(children.exit_code_for(helper.status), list(output))

    # -- events ----------------------------------------------------------------------
    def handle_signals(self, signums: list[int]) -> None:
        for signum in signums:
            if signum == signal.SIGCHLD:
                self.reap()
            elif signum in STOP_SIGNALS:
                self.handle_stop(signum)
            elif signum == signal.SIGHUP:
                if self.state is State.RUNNING:
                    self.reload_requested = True
                else:
                    self.log.info(f"Ignoring SIGHUP in state {self.state.value}: "
                                  "a reload is only possible once Squid is running")
            elif signum in SQUID_SIGNALS and self.state is State.RUNNING:
                self.children.send(self.squid, signum)  # USR1 rotate logs, USR2 debug
            else:
                self.log.debug(f"Ignoring {signals.name(signum)} in state {self.state.value}")

    def handle_stop(self, signum: int) -> None:
        if self.stop_signal is None and self.state not in (State.ERROR, State.EXITED):
            self.stop_signal = signum
            self.log.info(f"Received signal {signals.name(signum)}, initiating graceful shutdown...")
        elif self.squid is not None and self.squid.running and not self.squid_interrupted:
            again = "again" if self.stop_signal is not None else "while stopping after an error"
            self.log.info(f"Received {signals.name(signum)} {again}: Squid stops without "
                          "waiting for its clients")
            self.interrupt_squid()

    def reap(self) -> None:
        for child in self.children.reap():
            self.children.drain(child)
            if child is self.squid:
                self.on_squid_exit(child)
            elif child is self.health:
                self.on_health_exit(child)

    def on_squid_exit(self, child: Child) -> None:
        # Kids outliving their master would serve on unsupervised, as our orphans.
        self.kids.stop(signal.SIGKILL)
        self.publish()
        if self.state in (State.STARTING_SQUID, State.RUNNING):
            self.failure = f"Squid process died: {child.describe()}"
        else:
            self.log.info(f"Squid {child.describe()}")

    def on_health_exit(self, child: Child) -> None:
        self.health_ready = False
        if self.state not in (State.STARTING_HEALTH, State.STARTING_SQUID, State.RUNNING):
            return
        now = self.loop.clock()
        self.health_deaths.append(now)
        while self.health_deaths[0] < now - HEALTH_CRASH_WINDOW:
            self.health_deaths.popleft()
        deaths = len(self.health_deaths)
        if deaths >= HEALTH_CRASH_LIMIT:
            self.failure = (f"Health check server died {deaths} times within "
                            f"{HEALTH_CRASH_WINDOW:g}s; last {child.describe()}")
            return
        delay = min(HEALTH_BACKOFF_MAX, HEALTH_BACKOFF_FIRST * 2 ** (deaths - 1))
        self.log.warning(f"Health check server (PID {child.pid}) {child.describe()}; "
                         f"restarting in {delay:g}s")
        self.loop.call_later(delay, self.restart_health)

    # -- the health server -------------------------------------------------------------
    def spawn_health(self) -> None:
        argv = [*interpreter_command(), "-m", "cephaloinit", "health-server"]
        try:
            self.health = self.children.spawn("health server", argv, os.environ,
                                              notify=self.on_health_notify)
        except OSError as error:
            raise Fatal(f"Cannot start the health check server: {error.strerror}") from None

    def restart_health(self) -> None:
        if self.stop_signal is None and self.failure is None and self.state is not State.ERROR:
            self.health_restarts += 1
            try:
                self.spawn_health()
            except Fatal as fatal:
                self.failure = str(fatal)
            self.publish()

    def on_health_notify(self, data: bytes) -> None:
        if self.state in (State.SHUTTING_DOWN, State.ERROR, State.EXITED):
            return
        if b"READY=1" in data and not self.health_ready:
            self.health_ready = True
            verb = "restarted" if self.health_restarts else "started"
            self.log.info(f"Health check server {verb} (PID: {self.health.pid})")
            self.publish()

    # -- Squid --------------------------------------------------------------------------
    @property
    def squid_port(self) -> int:
        return self.config.ports[0] if self.config and self.config.ports else self.settings.squid_port

    def squid_accepting(self) -> bool:
        """Ready: the pid file is written and the port is in LISTEN state, held
        by Squid itself or, with SMP, by every one of its workers."""
        if self.config.pid_file and not os.path.exists(self.config.pid_file):
            return False
        if self.workers > 1:
            return squid.listening_workers(self.squid_port, self.squid.pid) >= self.workers
        return squid.listening(self.squid_port, self.squid.pid)

    def on_kid_death(self, kid: smp.Kid) -> None:
        self.log.warning(f"Squid kid {kid.name} (PID {kid.pid}) exited; Squid's master "
                         "restarts it")

    def on_kid_restart(self, kid: smp.Kid) -> None:
        self.kid_restarts += 1
        self.log.info(f"Squid restarted its kid {kid.name} (PID {kid.pid})")
        self.publish()

    def on_kid_given_up(self, name: str) -> None:
        self.log.warning(f"Squid did not restart its kid {name} within "
                         f"{smp.KID_RESTART_WAIT:g}s (it gives up on a kid that keeps failing); "
                         "its other kids serve on")

    def remove_stale_shared_memory(self) -> None:
        """Squid keeps shared memory segments in /dev/shm; after a SIGKILL they
        survive a container restart and the next Squid refuses to start ("File
        exists"). As PID 1 nothing else of ours can own them: they are stale."""
        if os.getpid() != 1:
            return
        for path in glob.glob("/dev/shm/squid-*.shm"):
            try:
                os.unlink(path)
            except OSError:
                pass

    # -- state ----------------------------------------------------------------------------
    def enter(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise AssertionError(f"no transition {self.state.value} -> {state.value}")
        self.log.debug(f"State {self.state.value} -> {state.value}")
        self.state = state
        self.state_since = time.time()
        # Readiness follows the state; only a reload takes it away inside RUNNING.
        self.ready, self.reason = state is State.RUNNING, ""
        self.publish()

    def set_ready(self, ready: bool, reason: str) -> None:
        self.ready, self.reason = ready, reason
        self.publish()

    def publish(self) -> None:
        """Tell the health server where we are; before the run directory has been
        validated there may be nowhere to write, and nobody to read it yet. A
        dry run publishes nothing: the state file may be a running supervisor's."""
        if self.scratch_dir is not None:
            return
        config = self.config
        state = {
            "state": self.state.value,
            "ready": self.ready,
            "reason": self.reason,
            "supervisor_pid": os.getpid(),
            "squid_pid": self.squid.pid if self.squid and self.squid.running else None,
            "health_pid": self.health.pid if self.health and self.health.running else None,
            "health_restarts": self.health_restarts,
            "squid_kid_restarts": self.kid_restarts,
            "started_at": self.started_at,
            "state_since": self.state_since,
            "squid_port": self.squid_port,
            "config": config.path if config else None,
            "cache_dirs": [c.path for c in config.cache_dirs] if config else [],
            "version": __version__,
            "squid_version": None,
        }
        try:
            statefile.publish(self.settings.state_file, state)
        except OSError:
            if self.state not in (State.INITIALIZING, State.VALIDATING, State.ERROR, State.EXITED):
                self.log.warning(f"Cannot write {self.settings.state_file}; /ready and /status "
                                 "may be stale")

    def validator_context(self) -> validators.Context:
        return validators.Context(self.settings, self.run_helper, self.log, os.getuid(), os.getgid(),
                                  scratch_dir=self.scratch_dir)
