"""Subcommands. ``Fatal`` is caught here and nowhere else."""

from __future__ import annotations

import os

from . import __version__, logs, signals
from .errors import EXIT_OK, Fatal
from .logs import Logger
from .settings import Settings, load

USAGE = """\
usage: cephaloinit [run]                 supervise Squid as PID 1 (the default)
       cephaloinit validate              run the configuration validators, exit 0 or 1
       cephaloinit status                print the state the supervisor last published
       cephaloinit exec [OPTIONS] [--] CMD [ARG...]
                                         run any command under this init
       cephaloinit check [--url URL] [--timeout SECONDS]
                                         probe the health server (HEALTHCHECK)
       cephaloinit --version
"""

def main(args: list[str], wakeup_fd: int) -> int:
    settings, warnings = load(os.environ)
    log = Logger(settings.log_level, settings.log_format)
    for warning in warnings:
        log.warning(warning)
    command, rest = (args[0], args[1:]) if args else ("run", [])
    try:
        return dispatch(command, rest, settings, log, wakeup_fd)
    except Fatal as fatal:
        log.error(str(fatal))
        return fatal.code
    finally:
        logs.OUTPUT.finish()  # what a stalled reader has not taken yet, within a bound


def dispatch(command: str, rest: list[str], settings: Settings, log: Logger,
             wakeup_fd: int) -> int:
    if command in ("run", "validate"):
        from .dryrun import validate_only
        from .supervisor import Supervisor

        if command == "run" and settings.log_format == "json":
            from .squidlog import Relay

            logs.OUTPUT.relayed = Relay().convert  # Squid's lines become JSON too

        supervisor = Supervisor(wakeup_fd, settings, log)
        return supervisor.run() if command == "run" else validate_only(supervisor)
    if command == "exec":
        from . import execinit

        return execinit.main(rest, wakeup_fd, settings, log)
    if command == "health-server":
        # A long-lived child of ours: it keeps the handlers and the wakeup pipe
        # installed at start. Resetting them, even briefly, would let a stop
        # signal in that window be lost.
        from .health.server import serve

        return serve(settings, log, wakeup_fd)
    signals.uninstall()  # the other subcommands are ordinary programs: TERM ends them
    if command == "check":
        from .health.probe import check

        return check(rest, settings)
    if command == "status":
        return status(settings)
    if command in ("--version", "version"):
        print(f"cephaloinit {__version__}")
        return EXIT_OK
    if command in ("-h", "--help", "help"):
        print(USAGE, end="")
        return EXIT_OK
    raise Fatal(f"cephaloinit: unknown command {command!r}; run 'cephaloinit --help' for the list")


def status(settings: Settings) -> int:
    """`cephaloinit status`: what /status answers, from the state file."""
    import json
    import time

    from . import statefile
    from .health.checks import status_document

    state = statefile.read(settings.state_file)
    if state is None:
        raise Fatal(f"No state published at {settings.state_file}: is cephaloinit running "
                    "with this SQUID_RUN_DIR?")
    print(json.dumps(status_document(state, time.time(), state.health_pid), indent=2, sort_keys=True))
    return EXIT_OK
