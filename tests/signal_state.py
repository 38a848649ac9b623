"""What tests need to know of their own process's signal state."""


def glibc_internal_ignored() -> int:
    """Signals 32 and 33 (glibc's own) as ignored in this test process: a
    parent that used posix_spawn (make does) leaves them ignored, nobody can
    reset them through Python, and every descendant inherits them. What our
    children show of them comes from there, not from us."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("SigIgn:"):
                return int(line.split()[1], 16) & (0b11 << 31)
    return 0
