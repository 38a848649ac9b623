"""The directories validator: every directory Squid or the supervisor writes exists and is writable.

Checked by creating and removing a file, not with os.access: a read-only mount
or a full disk passes the permission bits and still fails.
"""

from __future__ import annotations

import os

from ..errors import Fatal
from ..squidconf import SquidConfig
from . import Context


def runtime_directories(context: Context, config: SquidConfig) -> list[str]:
    settings = context.settings
    wanted = [settings.run_dir, settings.log_dir, settings.lib_dir, settings.spool_dir,
              settings.cache_dir]
    if config.pid_file:
        wanted.append(os.path.dirname(config.pid_file))
    wanted.extend(cache_dir.path for cache_dir in config.cache_dirs)
    return list(dict.fromkeys(wanted))


def ensure_writable(path: str, context: Context) -> None:
    fix = (f"make it group 0 and group-writable (chgrp 0 {path} && chmod g+rwx {path}) "
           f"or mount a writable volume there")
    try:
        os.makedirs(path, mode=0o775, exist_ok=True)
    except ValueError:  # a NUL byte in a path from squid.conf
        raise Fatal(f"Directory {path!r} from the Squid configuration is not a valid path") from None
    except OSError as error:
        raise Fatal(f"Cannot create directory {path} as UID {context.uid} (GID {context.gid}): "
                    f"{error.strerror}; {fix}") from None
    probe = os.path.join(path, f".cephaloinit-write-test.{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise Fatal(f"Directory {path} is not writable by UID {context.uid} (GID {context.gid}): "
                    f"{error.strerror}; {fix}") from None


def check(context: Context, config: SquidConfig) -> None:
    for path in runtime_directories(context, config):
        ensure_writable(path, context)
    if config.pid_file and os.path.isdir(config.pid_file):
        raise Fatal(f"pid_filename {config.pid_file} in the Squid configuration is a directory; "
                    f"name a file in it, e.g. {config.pid_file}/squid.pid")
    if context.dry_run or context.reload:
        return  # the pid file may be the running Squid's
    if config.pid_file and os.path.lexists(config.pid_file):
        # Squid has not been started yet, so any pid file is stale; left in
        # place, its PID may belong to one of our children now and Squid would
        # refuse to start ("already running").
        try:
            os.unlink(config.pid_file)
        except OSError as error:
            raise Fatal(f"Cannot remove the stale pid file {config.pid_file}: {error.strerror}; "
                        "remove it, or make its directory writable by UID "
                        f"{context.uid} without the sticky bit") from None
