"""Block every signal, say 'ready', then print 'LABEL got N' for each signal
received, in the kernel's order (lowest number first among those pending).

With 'twice', fork first: parent ('parent') and child ('child') share the
process group and both report.
"""

import os
import signal
import sys

everything = signal.valid_signals()
signal.pthread_sigmask(signal.SIG_BLOCK, everything)
label = "parent"
if sys.argv[1:] == ["twice"] and os.fork() == 0:
    label = "child"
print(f"{label} ready", flush=True)
while True:
    info = signal.sigwaitinfo(everything)
    print(f"{label} got {info.si_signo}", flush=True)
