"""Leave a child behind that writes one line to stdout when it gets TERM, then
exits; this process itself exits 0 on TERM.

The init sends the child TERM only once this process has exited, so the line is
written strictly after the command has exited.
"""

import os
import signal
import sys

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
if os.fork() == 0:
    print("ready", flush=True)
    signal.sigwaitinfo({signal.SIGTERM})
    print("written after the command exited", flush=True)
    os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
while True:
    signal.pause()
