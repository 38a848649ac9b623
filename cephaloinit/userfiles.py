"""Reading the files a user hands us: squid.conf and what it includes, the CA.

The one place such files are opened. A FIFO opened the ordinary way blocks
its reader until a writer appears, and /dev/zero never ends: PID 1 would stop
seeing signals, and nobody's output would be relayed any more. So a file is
opened non-blocking, refused unless it is a regular file, and read up to a
bound.
"""

from __future__ import annotations

import os
import stat

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # Debian's fully commented squid.conf is about 350 KiB
MAX_PEM_BYTES = 1024 * 1024


class NotAFile(ValueError):
    """The path names something other than a regular file, or too large a one."""


KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_bytes(path: str, limit: int) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes.

    Raises OSError when it cannot be opened or read, NotAFile when it is not
    a regular file or is larger than ``limit``.
    """
    data, size = _read(path, limit + 1)
    if size > limit:
        raise NotAFile(f"{path} is larger than {limit // 1024} KiB")
    return data


def head(path: str, limit: int) -> bytes:
    """The first ``limit`` bytes of the regular file ``path``, however large it
    is: for files we only look into (a blocklist Squid reads), not parse."""
    return _read(path, limit)[0]


def _read(path: str, limit: int) -> tuple[bytes, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except ValueError:  # a NUL byte
        raise NotAFile(f"{path!r} is not a valid path") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
            raise NotAFile(f"{path} is {kind}, not a regular file")
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 20, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), size
    finally:
        os.close(fd)
