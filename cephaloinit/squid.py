"""What is Squid-specific: its configuration as far as we need it, its command
lines, the default configuration, and its client connections."""

from __future__ import annotations

import glob
import os
import shlex
from typing import NamedTuple

from . import procfs
from .settings import Settings

# Debian's compiled-in pid_filename, used when a config does not name one.
DEFAULT_PID_FILE = "/run/squid.pid"
MAX_INCLUDE_DEPTH = 16  # Squid's own limit


class CacheDir(NamedTuple):
    kind: str  # ufs, aufs, diskd, rock
    path: str


class SquidConfig(NamedTuple):
    """The few facts of a squid.conf the supervisor acts on."""

    path: str
    ports: tuple[int, ...]
    pid_file: str | None  # None: "pid_filename none"
    cache_dirs: tuple[CacheDir, ...]
    ssl_bump: bool
    certificate_db: str | None  # the -s directory of sslcrtd_program


class ConfigError(ValueError):
    pass


def directives(path: str, depth: int = 0) -> list[list[str]]:
    """Every directive of a squid.conf as a token list, includes followed.

    Comments, blank lines and line continuations are handled as Squid does for
    the directives we read; an include that matches nothing is Squid's error,
    reported by `squid -k parse`, so it is skipped here.
    """
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: includes nested more than {MAX_INCLUDE_DEPTH} deep")
    with open(path, encoding="utf-8", errors="replace") as file:
        text = file.read().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        if not tokens:
            continue
        if tokens[0] == "include":
            for pattern in tokens[1:]:
                for included in sorted(glob.glob(pattern)):
                    found.extend(directives(included, depth + 1))
            continue
        found.append(tokens)
    return found


def _port(spec: str) -> int:
    """The port of an http_port argument: 3128, 0.0.0.0:3128, [::1]:3128."""
    return int(spec.rsplit(":", 1)[-1])


def read_config(path: str) -> SquidConfig:
    ports: list[int] = []
    pid_file: str | None = DEFAULT_PID_FILE
    cache_dirs: list[CacheDir] = []
    ssl_bump = False
    certificate_db = None
    for tokens in directives(path):
        name, args = tokens[0], tokens[1:]
        if name in ("http_port", "https_port") and args:
            try:
                ports.append(_port(args[0]))
            except ValueError:
                pass  # squid -k parse names the problem
            if "ssl-bump" in args:
                ssl_bump = True
        elif name == "ssl_bump":
            ssl_bump = True
        elif name == "pid_filename" and args:
            pid_file = None if args[0] == "none" else args[0]
        elif name == "cache_dir" and len(args) >= 2:
            cache_dirs.append(CacheDir(args[0], args[1]))
        elif name == "sslcrtd_program" and "-s" in args[:-1]:
            certificate_db = args[args.index("-s") + 1]
    return SquidConfig(path, tuple(ports), pid_file, tuple(cache_dirs), ssl_bump, certificate_db)


def render_default_config(template: str, settings: Settings) -> str:
    """The image's default config with the settings filled in."""
    config_dir = os.path.dirname(settings.squid_config)
    conf_d = f"{config_dir}/conf.d/*.conf"
    include = f"include {conf_d}" if glob.glob(conf_d) else f"# no {conf_d} files"
    values = {
        "SQUID_PORT": str(settings.squid_port),
        "CONF_D_INCLUDE": include,
        "RUN_DIR": settings.run_dir,
        "LOG_DIR": settings.log_dir,
        "LIB_DIR": settings.lib_dir,
        "SPOOL_DIR": settings.spool_dir,
        "CACHE_DIR": settings.cache_dir,
        "SHUTDOWN_LIFETIME": str(shutdown_lifetime(settings.shutdown_timeout)),
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


def run_command(settings: Settings, config: str) -> list[str]:
    return [settings.squid_binary, "-N", "-f", config]


def init_cache_command(settings: Settings, config: str) -> list[str]:
    # -N: without it, squid -z forks a daemon that outlives the command.
    return [settings.squid_binary, "-N", "-z", "-f", config]


def certgen_init_command(settings: Settings, database: str) -> list[str]:
    return [settings.squid_certgen, "-c", "-s", database, "-M", "4MB"]


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
    process ``pid`` when given, so another program on the port does not count.

    Read from /proc rather than by connecting: Squid logs every connection
    that closes before sending a request as an error in its access log."""
    listeners = {s.inode for s in procfs.tcp_sockets(proc) or []
                 if s.port == port and s.state == TCP_LISTEN}
    if pid is None:
        return bool(listeners)
    return bool(listeners & procfs.socket_inodes(pid, proc))
