"""Write numbered lines to stdout for ever (as fast as the pipe takes them), and
record every signal received in the file RECORD: HUP and USR1 are noted and
chatter goes on; TERM is noted and ends it with exit code CODE, unless
``--ignore-term``."""

import os
import signal
import sys

record, code = sys.argv[1], int(sys.argv[2])
ignore_term = "--ignore-term" in sys.argv[3:]


def note(signum, frame):
    with open(record, "a") as file:
        file.write(f"got {signal.Signals(signum).name}\n")
    if signum == signal.SIGTERM and not ignore_term:
        os._exit(code)


for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(signum, note)
print("chatter ready", flush=True)
number = 0
line = b"x" * 1000
while True:
    os.write(1, b"%09d " % number + line + b"\n")
    number += 1
