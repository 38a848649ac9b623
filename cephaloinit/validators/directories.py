"""The directories validator: every directory Squid or the supervisor writes
exists and is writable: ours, and those the configuration names (its pid file,
log files and cache_dirs), reported with the directive that names them.

Checked by creating and removing a file, not with os.access: a read-only mount
or a full disk passes the permission bits and still fails.
"""

from __future__ import annotations

import os

from ..errors import Fatal
from .. import smp
from ..squidconf import Directive, SquidConfig
from . import Context


def log_directory(value: str) -> str | None:
    """The directory a log directive writes into: ``stdio:/x/access.log``,
    ``daemon:/x/access.log``, ``/x/cache.log``; None for ``none``, devices
    (``/dev/stdout``) and network modules (``syslog:``, ``tcp://``)."""
    module, colon, rest = value.partition(":")
    path = rest if colon and module in ("stdio", "daemon") else value
    if not path.startswith("/") or path.startswith("/dev/"):
        return None
    return os.path.dirname(path)


def runtime_directories(context: Context, config: SquidConfig) -> list[tuple[str, str]]:
    """(directory, what names it): the settings' directories, then those the
    configuration names for its pid file, logs and cache_dirs. What names it
    is empty for ours, ``directive, file line N`` for the user's."""
    settings = context.settings
    wanted = {path: "" for path in (settings.run_dir, settings.log_dir, settings.lib_dir,
                                     settings.spool_dir, settings.cache_dir)}
    for path, directive in named_directories(config.directives):
        if path and path not in wanted:
            ours = directive.file == config.run_path
            wanted[path] = "" if ours else f"{directive.name}, {directive.where}"
    for path, needed_by in smp.writable_directories(config):
        wanted.setdefault(path, needed_by)
    return list(wanted.items())


def named_directories(directives: tuple[Directive, ...]) -> list[tuple[str | None, Directive]]:
    """(directory or None, the directive naming it): every access_log and
    cache_dir in order, then the last pid_filename, cache_log and cache_store_log."""
    last: dict[str, Directive] = {}  # single-valued: Squid keeps the last one
    named: list[tuple[str | None, Directive]] = []
    for directive in directives:
        if not directive.args:
            continue
        if directive.name in ("pid_filename", "cache_log", "cache_store_log"):
            last[directive.name] = directive
        elif directive.name == "access_log":
            named.append((log_directory(directive.args[0]), directive))
        elif directive.name == "cache_dir" and len(directive.args) >= 2:
            named.append((directive.args[1], directive))
    named.extend((file_directory(directive), directive) for directive in last.values())
    return named


def file_directory(directive: Directive) -> str | None:
    """The directory of a pid_filename, cache_log or cache_store_log; None for ``none``."""
    value = directive.args[0]
    if value == "none":
        return None
    return os.path.dirname(value) if directive.name == "pid_filename" else log_directory(value)


def ensure_writable(path: str, named_by: str, context: Context) -> None:
    where = f"{path} ({named_by})" if named_by else path
    fix = (f"make it group 0 and group-writable (chgrp 0 {path} && chmod g+rwx {path}) "
           f"or mount a writable volume there")
    try:
        os.makedirs(path, mode=0o775, exist_ok=True)
    except OSError as error:
        raise Fatal(f"Cannot create directory {where} as UID {context.uid} (GID {context.gid}): "
                    f"{error.strerror}; {fix}") from None
    probe = os.path.join(path, f".cephaloinit-write-test.{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise Fatal(f"Directory {where} is not writable by UID {context.uid} (GID {context.gid}): "
                    f"{error.strerror}; {fix}") from None


def check(context: Context, config: SquidConfig) -> None:
    for path, named_by in runtime_directories(context, config):
        ensure_writable(path, named_by, context)
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
