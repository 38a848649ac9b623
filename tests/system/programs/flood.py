"""Say ``flood ready``, wait for SIGUSR1, flood stdout and stderr at once, then
say so and wait for SIGTERM (exit 0).

stdout: numbered lines, ``NNNNNNNNN `` followed by a payload whose length cycles
through LENGTHS (around the relay's 64 KiB limit on purpose), until STDOUT_BYTES
have been written. stderr, interleaved with it in 64 KiB writes: one line of
ENDLESS_BYTES '~' bytes and no newline until its very end. Then ``flood done``
on stdout, and the process waits, so the test can read the init's memory
figures while nothing is flowing.
"""

import os
import signal
import sys

LENGTHS = [79] * 500 + [0, 1, 4086, 4087, 20000, 65525, 65526, 65527, 100000, 300000, 999]
CHUNK = 64 * 1024

stdout_bytes, endless_bytes = int(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGUSR1, lambda *_: None)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:CHUNK]):]


def lines():
    sent, number = 0, 0
    while sent < stdout_bytes:
        length = LENGTHS[number % len(LENGTHS)]
        line = f"{number:09d} ".encode() + bytes([97 + number % 26]) * length + b"\n"
        yield line
        sent += len(line)
        number += 1


signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.write(1, b"flood ready\n")
signal.sigwait({signal.SIGUSR1})  # the test reads the init's idle memory first
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})

pending = bytearray()
endless_left = endless_bytes
for line in lines():
    pending += line
    if len(pending) >= CHUNK:
        write_all(1, bytes(pending))
        pending.clear()
        if endless_left:  # one stderr chunk per stdout chunk: both pipes busy at once
            piece = min(CHUNK, endless_left)
            write_all(2, b"~" * piece)
            endless_left -= piece
write_all(1, bytes(pending))
while endless_left:
    piece = min(CHUNK, endless_left)
    write_all(2, b"~" * piece)
    endless_left -= piece
write_all(2, b"\n")
write_all(1, b"flood done\n")
while True:
    signal.pause()
