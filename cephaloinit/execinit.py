"""``cephaloinit exec [OPTIONS] [--] CMD``: the core alone, a small init for any command.

Starts CMD in a process group of its own, with the signal mask and ignored
signals we were started with; forwards every signal it may catch except CHLD
and the synchronous ones (docs/exec.md lists them); reaps every zombie; and
once asked to stop gives CMD and everything it started SHUTDOWN_TIMEOUT
seconds before SIGKILL. Exits with CMD's exit code, or 128+N if signal N
killed it.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import NamedTuple

from . import __version__, signals
from .children import Child, describe_status, exit_code_for
from .core import Core
from .errors import EXIT_FAILURE, EXIT_OK, Fatal
from .host import HOST, Host
from .logs import Logger
from .settings import Settings

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# The shell's codes for a command that could not be run, which Docker and tini use too.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
NOT_FOUND_ERRORS = (errno.ENOENT, errno.ENOTDIR)
NOT_EXECUTABLE_ERRORS = (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR)
EXIT_CODES = range(256)

USAGE = """\
usage: cephaloinit exec [OPTIONS] [--] CMD [ARG...]

Run CMD under this init: forward signals to it, reap every zombie, and after
TERM or INT give everything SHUTDOWN_TIMEOUT seconds before SIGKILL.
Options end at the first word that is not one, or at '--'.

  -g, --process-group           forward signals to CMD's whole process group
                                (also EXEC_SIGNAL_GROUP=1)
      --relay-output            relay CMD's stdout and stderr through pipes, whole
                                lines only (also EXEC_RELAY_OUTPUT=1)
  -p, --parent-death-signal SIG when our parent dies, act as if SIG was sent to us
  -w, --warn-on-reap            log a warning for every orphan reaped
  -e, --success-exit-code N     exit 0 when CMD's exit code is N (0-255; repeatable)
  -h, --help                    show this help and exit
      --version                 show the version and exit
"""


class Options(NamedTuple):
    signal_group: bool = False
    relay_output: bool = False
    parent_death_signal: int | None = None
    warn_on_reap: bool = False
    success_codes: frozenset[int] = frozenset()


class Request(NamedTuple):
    """What the command line asks for: run ``command``, or print ``say`` and exit 0."""

    options: Options
    command: list[str]
    say: str | None = None


def _signal_number(text: str) -> int:
    if text.isascii() and text.isdigit() and int(text) in signal.valid_signals():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError from None


def _exit_code(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) not in EXIT_CODES:
        raise ValueError
    return int(text)


FLAGS = {"-g": "signal_group", "--process-group": "signal_group",
         "--relay-output": "relay_output",
         "-w": "warn_on_reap", "--warn-on-reap": "warn_on_reap"}
WITH_VALUE = {  # option -> (field, parser, what a valid value is)
    "-p": ("parent_death_signal", _signal_number, "a signal name such as SIGTERM, or its number"),
    "--parent-death-signal": ("parent_death_signal", _signal_number,
                              "a signal name such as SIGTERM, or its number"),
    "-e": ("success_codes", _exit_code, "an exit code 0-255"),
    "--success-exit-code": ("success_codes", _exit_code, "an exit code 0-255"),
}


def _set_option(values: dict, name: str, value: str | None) -> None:
    """Parse ``value`` for option ``name`` into ``values`` (None: the command
    line ended before it)."""
    field, parser, expected = WITH_VALUE[name]
    if value is None:
        raise Fatal(f"cephaloinit exec: {name} needs a value: {expected}")
    try:
        parsed = parser(value)
    except ValueError:
        raise Fatal(f"cephaloinit exec: {name} {value!r}: expected {expected}") from None
    if field == "success_codes":  # repeatable
        values[field] = values[field] | {parsed}
    else:
        values[field] = parsed


def parse(args: list[str], settings: Settings) -> Request:
    """The request: options from the command line, over those the settings
    switch on (EXEC_SIGNAL_GROUP, EXEC_RELAY_OUTPUT). Raises Fatal, with one
    line naming the mistake, for a bad command line."""
    values: dict = {"signal_group": settings.exec_signal_group,
                    "relay_output": settings.exec_relay_output, "success_codes": frozenset()}
    say = {"-h": USAGE, "--help": USAGE, "--version": f"cephaloinit {__version__}\n"}
    words = iter(args)
    command: list[str] = []
    for arg in words:
        if arg == "--":
            command = list(words)
            break
        if not arg.startswith("-") or arg == "-":
            command = [arg, *words]
            break
        name, has_value, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in say:
            return Request(Options(), [], say[name])
        if name in FLAGS and not has_value:
            values[FLAGS[name]] = True
        elif name in WITH_VALUE:
            _set_option(values, name, value if has_value else next(words, None))
        else:
            raise Fatal(f"cephaloinit exec: unknown option {arg!r}; "
                        "run 'cephaloinit exec --help' for the options, or put '--' before CMD")
    if not command:
        raise Fatal("cephaloinit exec: no command given; usage: cephaloinit exec [OPTIONS] -- CMD [ARG...]")
    return Request(Options(**values), command)


def main(args: list[str], wakeup_fd: int, settings: Settings, log: Logger) -> int:
    request = parse(args, settings)
    if request.say is not None:
        signals.uninstall()  # printing help is an ordinary program's job
        print(request.say, end="")
        return EXIT_OK
    return ExecInit(wakeup_fd, settings, log, request.options).run(request.command)


def _prctl(option: int, value: int, what: str) -> None:
    import ctypes  # only needed outside a PID namespace or with -p

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({what}) failed")


def become_subreaper() -> None:
    """Outside a PID namespace, orphans of our children would go to the host's
    init; as a child subreaper they come to us and our reaper collects them."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1, "PR_SET_CHILD_SUBREAPER")


def exit_code_for_spawn_error(error: OSError) -> int:
    if error.errno in NOT_FOUND_ERRORS:
        return EXIT_NOT_FOUND
    if error.errno in NOT_EXECUTABLE_ERRORS:
        return EXIT_NOT_EXECUTABLE
    return EXIT_FAILURE


class ExecInit:
    """The core with CMD as its one known child: forward, reap, exit with CMD's code."""

    def __init__(self, wakeup_fd: int, settings: Settings, log: Logger,
                 options: Options = Options(), host: Host = HOST):
        self.log = log
        self.options = options
        self.core = Core(wakeup_fd, log, settings.shutdown_timeout, self.handle_signal,
                         self.handle_exit, self.on_orphan if options.warn_on_reap else None, host)
        self.children = self.core.children
        self.command: Child | None = None
        self.stopping = False
        self.command_code: int | None = None  # CMD's, once reaped

    def run(self, argv: list[str]) -> int:
        try:
            if self.options.parent_death_signal is not None:
                # The signal comes to us, not to CMD, so it is handled like one
                # sent by hand: forwarded, and a stop if it is TERM or INT.
                _prctl(PR_SET_PDEATHSIG, self.options.parent_death_signal, "PR_SET_PDEATHSIG")
            if os.getpid() != 1:
                become_subreaper()
        except OSError as error:
            raise Fatal(f"cephaloinit exec: {error.strerror}: {os.strerror(error.errno)}") from None
        try:
            self.command = self.children.spawn(
                argv[0], argv, os.environ, relay_output=self.options.relay_output,
                process_group=True, inherited=signals.AT_START,
            )
        except OSError as error:
            raise Fatal(f"cephaloinit exec: cannot run {argv[0]!r}: {error.strerror}",
                        exit_code_for_spawn_error(error)) from None
        self.log.debug(f"Started {argv[0]} with PID {self.command.pid}")
        while not self.finished():
            self.core.loop.run_once()
        self.log.debug(f"Reaped {self.children.orphans_reaped} orphaned processes")
        return self.command_code

    def finished(self) -> bool:
        """Without a stop, CMD's exit is the end, as with tini; after a stop,
        the end is when nothing of CMD's is left (or the deadline has passed)."""
        return self.command_code is not None and (not self.stopping or self.children.all_reaped)

    def handle_signal(self, signum: int) -> None:
        if self.command.running:
            self.forward(signum)
        else:
            self.log.debug(f"Not forwarding {signals.name(signum)}: {self.command.name} has exited")

    def forward(self, signum: int) -> None:
        target = "process group" if self.options.signal_group else "PID"
        self.log.debug(f"Forwarding {signals.name(signum)} to {target} {self.command.pid}")
        self.children.send(self.command, signum, group=self.options.signal_group)
        if signum in signals.EXEC_STOP_SIGNALS and not self.stopping:
            self.stopping = True
            self.core.arm_deadline()

    def on_orphan(self, pid: int, status: int) -> None:
        self.log.warning(f"Reaped orphaned process {pid}, which {describe_status(status)}")

    def handle_exit(self, child: Child) -> None:
        if child is not self.command:
            return
        self.log.debug(f"{child.name} (PID {child.pid}) {child.describe()}")
        self.command_code = self.remap(exit_code_for(child.status))
        if self.stopping and not self.children.all_reaped:
            # What CMD started may not have seen the stop: tell it, and
            # the deadline already armed still bounds the wait.
            self.log.debug("Sending SIGTERM to the processes CMD left behind")
            self.children.signal_everything(signal.SIGTERM)

    def remap(self, code: int) -> int:
        if code in self.options.success_codes:
            self.log.debug(f"Exit code {code} counts as success (--success-exit-code)")
            return EXIT_OK
        return code
