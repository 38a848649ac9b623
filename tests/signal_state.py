"""What tests need to know of their own process's signal state."""

import signal


def ignored_here() -> int:
    """The SigIgn mask of this test process."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("SigIgn:"):
                return int(line.split()[1], 16)
    return 0


def glibc_internal_ignored() -> int:
    """Signals 32 and 33 (glibc's own) as ignored in this test process: a
    parent that used posix_spawn (make does) leaves them ignored, nobody can
    reset them through Python, and every descendant inherits them. What our
    children show of them comes from there, not from us."""
    return ignored_here() & (0b11 << 31)


def ignored_in_a_subprocess() -> int:
    """What a program started with subprocess finds ignored: all this process
    ignores, except PIPE and XFSZ, which Python ignores for itself and
    subprocess restores. A test run from a shell without job control, in the
    background, has INT and QUIT ignored too, and passes them on."""
    own = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
    return ignored_here() & ~own
