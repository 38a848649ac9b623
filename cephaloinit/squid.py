"""What is Squid-specific: its command lines, the default configuration, and
its client connections. Reading squid.conf is squidconf's."""

from __future__ import annotations

import glob
import os
import re
from typing import TYPE_CHECKING

from . import procfs, smp
from .errors import Fatal
from .settings import Settings

if TYPE_CHECKING:
    from .logs import Logger
    from .validators import RunHelper


def render_default_config(template: str, settings: Settings) -> str:
    """The image's default config (its site policy) with the settings filled in."""
    config_dir = os.path.dirname(settings.squid_config)
    conf_d = f"{config_dir}/conf.d/*.conf"
    include = f"include {conf_d}" if glob.glob(conf_d) else f"# no {conf_d} files"
    values = {
        "SQUID_PORT": str(settings.squid_port),
        "CONF_D_INCLUDE": include,
    }
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    return template


def shutdown_lifetime(shutdown_timeout: float) -> int:
    """Squid's own grace period for clients: well inside our deadline, so Squid
    closes its clients itself (and logs it) before anything is SIGKILLed."""
    return max(1, int(shutdown_timeout * 0.8) - 1)


# -- command lines -------------------------------------------------------------
def parse_command(settings: Settings, config: str) -> list[str]:
    return [settings.squid_binary, "-k", "parse", "-f", config]


def run_command(settings: Settings, config: str, workers: int = 1) -> list[str]:
    """One worker: `-N`, a single process. More: `--foreground`, Squid's master
    as our child with its kids below it (`-N` would silently run one process).
    In that mode Squid points its stdout and stderr at /dev/null unless `-d`
    is given; `-d 0` keeps them, so cache_log /dev/stderr and access_log
    stdio:/dev/stdout still reach our relay (the price: Squid also copies its
    few level-0 lines to stderr, so those appear twice)."""
    if workers > 1:
        return [settings.squid_binary, "--foreground", "-d", "0", "-f", config]
    return [settings.squid_binary, "-N", "-f", config]


def remove_stale_shared_memory() -> None:
    """Squid keeps shared memory segments in /dev/shm; after a SIGKILL they
    survive a container restart and the next Squid refuses to start ("File
    exists"). As PID 1 nothing else of ours can own them: they are stale."""
    if os.getpid() != 1:
        return
    for path in glob.glob("/dev/shm/squid-*.shm"):
        try:
            os.unlink(path)
        except OSError:
            pass


def init_cache_command(settings: Settings, config: str) -> list[str]:
    # -N: without it, squid -z forks a daemon that outlives the command.
    return [settings.squid_binary, "-N", "-z", "-f", config]


def certgen_init_command(settings: Settings, database: str) -> list[str]:
    return [settings.squid_certgen, "-c", "-s", database, "-M", "4MB"]


def version_command(settings: Settings) -> list[str]:
    return [settings.squid_binary, "-v"]


VERSION_TIMEOUT = 5.0
_VERSION = re.compile(r"Squid Cache: Version (\S+)")


def parse_version(output: list[str]) -> str:
    """``Squid Cache: Version 6.13`` -> ``6.13``; "" when no line says it."""
    for line in output:
        found = _VERSION.search(line)
        if found:
            return found.group(1)
    return ""


def version(run_helper: RunHelper, settings: Settings, log: Logger) -> str:
    """Squid's version, from ``squid -v`` (about 15 ms), for /metrics and
    /status. Failing to learn it is no reason not to run: one warning, ""."""
    try:
        result = run_helper("squid -v", version_command(settings), VERSION_TIMEOUT)
    except Fatal as fatal:  # cannot run it, or it hung
        log.warning(f"Squid's version is unknown: {fatal}")
        return ""
    found = parse_version(result.output) if result.exit_code == 0 else ""
    if not found:
        log.warning(f"Squid's version is unknown: {settings.squid_binary} -v exited with code "
                    f"{result.exit_code} and printed no version")
    return found


# -- client connections ----------------------------------------------------------
TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


def established_connections(ports: tuple[int, ...], proc: str = procfs.PROC) -> int:
    """Squid's client connections: established sockets whose local port is one
    of Squid's (a client in the same namespace has Squid's port as its remote
    port, so it is not counted). 0 when /proc/net cannot be read."""
    return count_established(procfs.tcp_sockets(proc) or [], ports)


def count_established(sockets: list[procfs.TcpSocket], ports: tuple[int, ...]) -> int:
    return sum(1 for s in sockets if s.state == TCP_ESTABLISHED and s.port in ports)


def listening(port: int, pid: int | None = None, proc: str = procfs.PROC) -> bool:
    """Whether a socket in this network namespace listens on ``port`` — held by
    process ``pid`` (or, for Squid's SMP master, one of its workers) when
    given, so another program on the port does not count.

    Read from /proc rather than by connecting: Squid logs every connection
    that closes before sending a request as an error in its access log."""
    listeners = listening_inodes(port, proc)
    if pid is None:
        return bool(listeners)
    if listeners & procfs.socket_inodes(pid, proc):
        return True
    # Squid's SMP master holds no socket itself: its workers do.
    return smp.serving_workers(pid, listeners, proc) > 0


def listening_workers(port: int, master: int, proc: str = procfs.PROC) -> int:
    """How many of the SMP master's workers listen on ``port``."""
    return smp.serving_workers(master, listening_inodes(port, proc), proc)


def listening_inodes(port: int, proc: str = procfs.PROC) -> set[int]:
    """The inodes of the sockets in LISTEN state on ``port`` in this network namespace."""
    return {s.inode for s in procfs.tcp_sockets(proc) or []
            if s.port == port and s.state == TCP_LISTEN}
