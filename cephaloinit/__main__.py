"""Entry point. Signal handlers go in before any other import: as PID 1, a
signal that arrives while no handler exists is dropped by the kernel. Only
the three standard descriptors are checked before that, so that the wakeup
pipe can never take the number of a missing stdout or stderr."""

from cephaloinit import signals

signals.ensure_standard_fds()
WAKEUP_FD = signals.install()

import sys  # noqa: E402

from cephaloinit.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:], WAKEUP_FD))
