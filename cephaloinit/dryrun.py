"""``cephaloinit validate``: the validators alone, then exit 0 or 1.

A dry run, also inside a running container (`docker exec ... validate`): it
renders into a scratch directory of its own, publishes no state, and leaves
what a running proxy uses alone (its config, pid file, merged CA, swap
directories). What does not exist yet may be created (the directories, a
first merged CA and certificate database). Interrupted by a stop signal, it
gives no verdict: exit 128+N.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from . import signals
from .errors import EXIT_FAILURE, EXIT_OK, Fatal
from .supervisor import StopRequested, Supervisor


def validate_only(supervisor: Supervisor) -> int:
    settings, log = supervisor.settings, supervisor.log
    try:
        os.makedirs(settings.run_dir, exist_ok=True)
        supervisor.scratch_dir = tempfile.mkdtemp(prefix=".validate-", dir=settings.run_dir)
    except OSError as error:
        log.error(f"Cannot create a scratch directory in {settings.run_dir}: {error.strerror}; the "
                  f"run directory {settings.run_dir} must be writable by UID {os.getuid()} "
                  f"(GID {os.getgid()}): make it group 0 and group-writable")
        return EXIT_FAILURE
    try:
        supervisor.validate()
    except StopRequested:
        supervisor.stop_children()
        log.warning(f"Validation interrupted by {signals.name(supervisor.stop_signal)}: no verdict")
        return 128 + supervisor.stop_signal
    except Fatal as fatal:
        log.error(str(fatal))
        supervisor.stop_children()
        return fatal.code
    finally:
        shutil.rmtree(supervisor.scratch_dir, ignore_errors=True)
    return EXIT_OK
