"""Signal handling for a PID 1: handlers that do nothing, and a wakeup pipe.

The kernel drops a signal sent to PID 1 when PID 1 has no handler for it, so
``install`` must run before anything slow (it is the first thing __main__ does).
Handlers do no work at all: ``signal.set_wakeup_fd`` writes each signal number
into a non-blocking pipe, and the event loop reads the pipe like any other file.
This module imports only ``os`` and ``signal`` so that it is cheap to load.
"""

import os
import signal

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
HANDLED = FORWARDED + (signal.SIGCHLD,)
STOPPING = (signal.SIGTERM, signal.SIGINT)

# Python itself ignores SIGPIPE and SIGXFSZ; an ignored disposition survives
# exec, so children get these back to default explicitly.
RESET_IN_CHILDREN = HANDLED + (signal.SIGPIPE, signal.SIGXFSZ)


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
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for signum in HANDLED:
        signal.signal(signum, _do_nothing)
    return read_fd


def uninstall() -> None:
    """Back to default dispositions (used by tests that run the core in-process)."""
    signal.set_wakeup_fd(-1)
    for signum in HANDLED:
        signal.signal(signum, signal.SIG_DFL)


def decode(data: bytes) -> list[int]:
    """Signal numbers read from the wakeup pipe, first occurrence order, duplicates merged.

    Standard signals do not queue in the kernel either: two TERMs in one read
    mean the same as one.
    """
    return list(dict.fromkeys(data))


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
