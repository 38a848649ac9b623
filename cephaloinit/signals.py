"""Signal handling for a PID 1: handlers that do nothing, and a wakeup pipe.

The kernel drops a signal sent to PID 1 when PID 1 has no handler for it, so
``install`` must run before anything slow (it is the first thing __main__ does).
Handlers do no work at all: ``signal.set_wakeup_fd`` writes each signal number
into a non-blocking pipe, and the event loop reads the pipe like any other file.
This module imports only ``os`` and ``_signal`` so that it is cheap to load:
``_signal`` is the C module that ``signal`` wraps in enums, and the enum
machinery alone costs some 4 ms of imports before the first handler exists.
"""

import _signal
import os

# The stop signals of `run` and of the health server. QUIT is one too:
# nothing in a container wants a core dump from PID 1.
STOP_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT)
# `exec` forwards every signal; these also arm its shutdown deadline, as tini
# and dumb-init treat them. QUIT is left to CMD, whose default is a core dump.
EXEC_STOP_SIGNALS = (_signal.SIGTERM, _signal.SIGINT)

# Raised by the CPU or the C library for the faulting thread itself. Sent by
# someone else they are ignored; raised by a real fault the kernel overrides
# SIG_IGN and the process still dies, where a Python handler would return to
# the faulting instruction forever.
SYNCHRONOUS = (
    _signal.SIGILL,
    _signal.SIGTRAP,
    _signal.SIGABRT,
    _signal.SIGBUS,
    _signal.SIGFPE,
    _signal.SIGSEGV,
    _signal.SIGSYS,
)
# A background process reading from or writing to its terminal gets these and
# stops by default; an init that stops can neither reap nor forward.
TERMINAL_STOPS = (_signal.SIGTTIN, _signal.SIGTTOU)
IGNORED = SYNCHRONOUS + TERMINAL_STOPS
UNCATCHABLE = (_signal.SIGKILL, _signal.SIGSTOP)

# Every other signal gets a handler, so that no signal someone sends can kill
# us by its default action; `exec` forwards all of them except CHLD.
HANDLED = tuple(sorted(
    set(_signal.valid_signals()) - set(IGNORED) - set(UNCATCHABLE),
    key=int,
))
FORWARDED_BY_EXEC = tuple(s for s in HANDLED if s != _signal.SIGCHLD)

# Ignored dispositions survive exec (ours, and PYTHON_IGNORES), so children get
# every one of these back to default explicitly.
RESET_IN_CHILDREN = HANDLED + IGNORED


# The interpreter ignores these before any of our code runs.
PYTHON_IGNORES = (_signal.SIGPIPE, _signal.SIGXFSZ)


class Inherited:
    """The signal state this process was started with: tini-style inits hand it
    on to the command (nohup's ignored HUP, a blocked signal)."""

    __slots__ = ("mask", "ignored")

    def __init__(self, mask: frozenset, ignored: frozenset):
        self.mask = mask
        self.ignored = ignored


def _read_inherited() -> Inherited:
    # The interpreter has already ignored PIPE and XFSZ by now, so what we were
    # started with is lost for those two: they count as default.
    ignored = frozenset(s for s in _signal.valid_signals() - set(PYTHON_IGNORES)
                        if _signal.getsignal(s) == _signal.SIG_IGN)
    return Inherited(frozenset(_signal.pthread_sigmask(_signal.SIG_BLOCK, [])), ignored)


# Read when this module is first imported, which __main__ does before install().
AT_START = _read_inherited()


def _do_nothing(signum, frame):
    """The work happens in the loop, which reads the number from the wakeup pipe."""


def ensure_standard_fds() -> None:
    """Open /dev/null on whichever of fds 0, 1 and 2 we were started without.

    Otherwise the next descriptor we open (the wakeup pipe) takes that number,
    and a line written to "stdout" lands in the signal pipe. Must run before
    anything else opens a file.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            # The lowest free number is fd itself: the smaller ones are open.
            os.open(os.devnull, os.O_RDWR)


def install() -> int:
    """Install the wakeup pipe, then the handlers; return the pipe's read end.

    In that order: a signal that arrives once its handler exists always finds
    the pipe to write its number into, so none is lost between the two steps.
    The handlers stay for the life of the process; nothing of ours resets them.
    """
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for signum in HANDLED:
        _signal.signal(signum, _do_nothing)
    for signum in IGNORED:
        _signal.signal(signum, _signal.SIG_IGN)
    # A signal blocked by whoever started us would never reach its handler.
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, HANDLED)
    return read_fd


def uninstall() -> None:
    """Back to default dispositions (used by tests that run the core in-process)."""
    _signal.set_wakeup_fd(-1)
    for signum in HANDLED + IGNORED:
        _signal.signal(signum, _signal.SIG_DFL)
    for signum in PYTHON_IGNORES:  # as the interpreter had them: EPIPE, not death
        _signal.signal(signum, _signal.SIG_IGN)


def decode(data: bytes) -> list[int]:
    """Signal numbers read from the wakeup pipe, first occurrence order, duplicates merged.

    Standard signals do not queue in the kernel either: two TERMs in one read
    mean the same as one.
    """
    return list(dict.fromkeys(data))


def name(signum: int) -> str:
    import signal  # the names live in its enum; never needed before install()

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
