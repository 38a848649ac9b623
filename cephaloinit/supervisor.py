"""The CephaloProxy supervisor: the state machine of docs/state-machine.md.

``run`` reads top to bottom like that document: validate, start the health
server, start Squid, monitor; a stop signal in any state ends in
``shut_down`` (exit 0), a fatal event in any state ends in ERROR (exit 1).
Then one ``handle_<event>`` method per row of its Events × states table.
Waiting always happens in ``wait_until``, which turns the core's loop:
signals are seen and children reaped while we wait, whatever we wait for.
The mechanics live beside it: the core (core.py), the health server's
start and restart arithmetic (healthchild.py), Squid's readiness and drain
(squidchild.py), helper commands (helpers.py).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable

from . import __version__, helpers, signals, smp, squid, squidconf, statefile, validators
from .children import Child
from .core import Core
from .errors import EXIT_OK, Fatal
from .health import cachemgr
from .healthchild import CRASH_WINDOW, START_TIMEOUT, HealthChild
from .host import HOST, Host
from .logs import Logger
from .settings import Settings
from .squidchild import READINESS_CHECK_INTERVAL, RELOAD_CLOSE_WAIT, Drain, Kids, accepting
from .states import TRANSITIONS, State


SQUID_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # log rotation, debug toggle


class StopRequested(Exception):
    """A stop signal arrived: leave whatever we were waiting for."""


class Supervisor:
    def __init__(self, wakeup_fd: int, settings: Settings, log: Logger, host: Host = HOST):
        self.settings = settings
        self.log = log
        self.core = Core(wakeup_fd, log, settings.shutdown_timeout, self.handle_signal,
                         self.handle_exit, host=host)
        self.loop = self.core.loop
        self.children = self.core.children
        self.state = State.INITIALIZING
        self.started_at = time.time()
        self.state_since = self.started_at
        self.stop_signal: int | None = None
        self.failure: str | None = None  # a fatal event seen in a callback
        self.reload_requested = False
        self.config: squidconf.SquidConfig | None = None
        self.squid: Child | None = None
        self.drain = Drain(self.core)
        self.health = HealthChild(self.children, self.loop, self.handle_health_notify)
        self.ready = False  # only ever true in RUNNING; false there during a reload
        self.reason = ""
        self.workers = 1  # Squid's `workers`: more than one runs its SMP mode (smp.py)
        self.kids = Kids(self.loop, self.log, self.publish)  # SMP: Squid's own children
        self.mounted = False  # whether Squid runs on the mounted config (not the image's default)
        self.scratch_dir: str | None = None  # `validate` writes only here
        self.squid_version = ""  # from `squid -v`, once validated
        self.run_helper = helpers.Runner(self.children, self.wait_until).run

    # -- the contract ----------------------------------------------------------
    def run(self) -> int:
        try:
            self.log.info(f"CephaloProxy entrypoint starting (UID: {os.getuid()}, GID: {os.getgid()})")
            self.config = validators.put_in_place(self.validate())
            self.squid_version = squid.version(self.run_helper, self.settings, self.log)
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
        self.health.start()
        if not self.wait_until(lambda: self.health.ready, self.loop.clock() + START_TIMEOUT):
            raise Fatal(f"Health check server did not start listening on port "
                        f"{self.settings.health_port} within {START_TIMEOUT:g}s")

    def start_squid(self) -> None:
        self.enter(State.STARTING_SQUID)  # STARTING_HEALTH -> STARTING_SQUID
        self.log.info("Starting Squid proxy...")
        squid.remove_stale_shared_memory()
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
            self.kids.start(self.squid.pid)

    def reload(self) -> None:
        """HUP in RUNNING: validate the config again; only a valid one reaches Squid."""
        self.reload_requested = False
        self.log.info("Received signal SIGHUP, validating the configuration before reloading Squid")
        self.set_ready(False, "reloading")
        try:
            config = validators.for_reload(self.validator_context()._replace(mounted=self.mounted),
                                           self.config)
        except Fatal as fatal:
            if self.failure is not None:  # Squid died meanwhile: not a config problem
                raise
            self.log.error(f"Reload rejected, Squid keeps running on its current configuration: {fatal}")
        else:
            self.config = config
            self.children.send(self.squid, signal.SIGHUP)
            self.log.info("Configuration valid; Squid is reloading it")
            self.kids.reloaded()  # Squid starts again the kids it had given up on
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
        deadline = self.core.arm_deadline()
        drain = self.settings.readiness_drain
        if was_running and drain > 0:
            self.log.info(f"Readiness set to 503; Squid keeps serving for {drain:g}s (READINESS_DRAIN)")
            self.wait_until(lambda: not self.squid.running, self.loop.clock() + drain,
                            interruptible=False)
        self.stop_children(deadline)
        self.log.info("Shutdown complete")
        self.enter(State.EXITED)  # SHUTTING_DOWN -> EXITED

    # -- stopping ------------------------------------------------------------------
    def stop_children(self, deadline=None) -> None:
        """Squid first (draining its clients), then every other child; all reaped.
        Bounded by the SHUTDOWN_TIMEOUT deadline, after which SIGKILL."""
        deadline = deadline or self.core.arm_deadline()
        self.kids.stop()  # from here on, a kid that exits is Squid stopping
        if self.squid is not None and self.squid.running:
            self.drain.start(self.squid, self.config.ports)
            self.wait_until(lambda: not self.squid.running, interruptible=False)
        for child in list(self.children.by_pid.values()):
            self.children.send(child, signal.SIGTERM)
        self.wait_until(lambda: not self.children.by_pid, interruptible=False)
        deadline.cancel()

    # -- waiting -------------------------------------------------------------------
    def wait_until(self, predicate: Callable[[], bool], deadline: float | None = None,
                   interruptible: bool = True, poll: float | None = None) -> bool:
        """``Core.wait_until``; interruptible waits raise StopRequested or Fatal
        as soon as a stop signal or a fatal event has been seen."""
        return self.core.wait_until(predicate, deadline, poll,
                                    self.raise_if_interrupted if interruptible else None)

    def raise_if_interrupted(self) -> None:
        if self.stop_signal is not None:
            raise StopRequested()
        if self.failure is not None:
            raise Fatal(self.failure)

    # -- events: the rows of the Events × states table ---------------------------------
    def handle_signal(self, signum: int) -> None:
        """Every signal but CHLD (the core reaps, then calls ``handle_exit``)."""
        if signum in signals.STOP_SIGNALS:
            self.handle_stop(signum)
        elif signum == signal.SIGHUP:
            self.handle_hup()
        elif signum in SQUID_SIGNALS and self.state is State.RUNNING:
            self.children.send(self.squid, signum)  # USR1 rotate logs, USR2 debug
        else:
            self.log.debug(f"Ignoring {signals.name(signum)} in state {self.state.value}")

    def handle_stop(self, signum: int) -> None:
        if self.stop_signal is None and self.state not in (State.ERROR, State.EXITED):
            self.stop_signal = signum
            self.log.info(f"Received signal {signals.name(signum)}, initiating graceful shutdown...")
        elif self.squid is not None and self.squid.running and not self.drain.interrupted:
            again = "again" if self.stop_signal is not None else "while stopping after an error"
            self.log.info(f"Received {signals.name(signum)} {again}: Squid stops without "
                          "waiting for its clients")
            self.drain.interrupt(self.squid)

    def handle_hup(self) -> None:
        if self.state is State.RUNNING:
            self.reload_requested = True
        else:
            self.log.info(f"Ignoring SIGHUP in state {self.state.value}: "
                          "a reload is only possible once Squid is running")

    def handle_exit(self, child: Child) -> None:
        """A child of ours was reaped (a helper's exit ends its own wait)."""
        if child is self.squid:
            self.on_squid_exit(child)
        elif child is self.health.child:
            self.handle_health_exit(child)

    def on_squid_exit(self, child: Child) -> None:
        # Kids outliving their master would serve on unsupervised, as our orphans.
        self.kids.stop(signal.SIGKILL)
        self.publish()
        if self.state in (State.STARTING_SQUID, State.RUNNING):
            self.failure = f"Squid process died: {child.describe()}"
        else:
            self.log.info(f"Squid {child.describe()}")

    def handle_health_exit(self, child: Child) -> None:
        self.health.ready = False
        if self.state not in (State.STARTING_HEALTH, State.STARTING_SQUID, State.RUNNING):
            return  # reaped, not restarted
        delay = self.health.died()
        if delay is None:
            self.failure = (f"Health check server died {len(self.health.deaths)} times within "
                            f"{CRASH_WINDOW:g}s; last {child.describe()}")
            return
        self.log.warning(f"Health check server (PID {child.pid}) {child.describe()}; "
                         f"restarting in {delay:g}s")
        self.loop.call_later(delay, self.restart_health)

    def restart_health(self) -> None:
        if self.stop_signal is None and self.failure is None and self.state is not State.ERROR:
            self.health.restarts += 1
            try:
                self.health.start()
            except Fatal as fatal:
                self.failure = str(fatal)
            self.publish()

    def handle_health_notify(self, data: bytes) -> None:
        if self.state in (State.SHUTTING_DOWN, State.ERROR, State.EXITED):
            return
        if self.health.heard_ready(data):
            verb = "restarted" if self.health.restarts else "started"
            self.log.info(f"Health check server {verb} (PID: {self.health.pid})")
            self.publish()

    # -- Squid --------------------------------------------------------------------------
    @property
    def squid_port(self) -> int:
        return self.config.ports[0] if self.config and self.config.ports else self.settings.squid_port

    def squid_accepting(self) -> bool:
        return accepting(self.config, self.squid_port, self.squid.pid, self.workers,
                         self.core.host.proc)

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
        record = statefile.Published(
            state=self.state,
            ready=self.ready,
            reason=self.reason,
            supervisor_pid=os.getpid(),
            squid_pid=self.squid.pid if self.squid and self.squid.running else None,
            health_pid=self.health.pid if self.health and self.health.running else None,
            health_restarts=self.health.restarts,
            squid_kid_restarts=self.kids.restarts,
            started_at=self.started_at,
            state_since=self.state_since,
            squid_port=self.squid_port,
            **published_config(self.config),
            version=__version__,
            squid_version=self.squid_version or None,
        )
        try:
            statefile.publish(self.settings.state_file, record)
        except OSError:
            if self.state not in (State.INITIALIZING, State.VALIDATING, State.ERROR, State.EXITED):
                self.log.warning(f"Cannot write {self.settings.state_file}; /ready and /status "
                                 "may be stale")

    def validator_context(self) -> validators.Context:
        return validators.Context(self.settings, self.run_helper, self.log, os.getuid(), os.getgid(),
                                  scratch_dir=self.scratch_dir)


def published_config(config: squidconf.SquidConfig | None) -> dict:
    """The state file's fields that come from the config Squid runs."""
    if config is None:
        return {}
    host, port = cachemgr.address(config.directives) or (None, None)
    return {"config": config.path, "cache_dirs": tuple(c.path for c in config.cache_dirs),
            "ports": config.ports, "cachemgr_host": host, "cachemgr_port": port}
