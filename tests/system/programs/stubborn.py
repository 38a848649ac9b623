"""Say 'ready', ignore the signals named on the command line, exit CODE on SIGTERM
unless TERM is among the ignored ones."""

import signal
import sys

code = int(sys.argv[1])
for name in sys.argv[2:]:
    signal.signal(getattr(signal, name), signal.SIG_IGN)
if "SIGTERM" not in sys.argv[2:]:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(code))
print("ready", flush=True)
while True:
    signal.pause()
