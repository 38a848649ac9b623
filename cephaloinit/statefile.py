"""What crosses from PID 1 to the health server: one declared record.

The supervisor writes a ``Published`` record at every state transition (and
when a child's PID changes) into a small JSON file, replaced atomically: a
rename lets a reader see the old file or the new one, never half of one. The
health server, an HTTP-facing child, reads it on every request through
``from_json``, the one place the file is validated: every field has a type
and a safe default, and a value that is not what the supervisor writes
becomes that default. Nothing downstream re-checks types or looks keys up by
name. The file holds no secret: state, PIDs, ports, paths, counters and
versions only.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
from typing import NamedTuple

from .states import State

MAX_FILE_BYTES = 64 * 1024  # the supervisor writes well under 2 KiB
MAX_TEXT = 300  # characters kept of the reason and the versions
MAX_PATH = 4096  # PATH_MAX
MAX_LIST = 64  # cache directories and ports kept


class Published(NamedTuple):
    """The supervisor's state as the health server sees it.

    ``state`` is None when the file could not be used (not JSON, not an
    object, an unknown state); ``reason`` then says why.
    """

    state: State | None
    ready: bool = False  # true only in RUNNING, and not during a reload or drain
    reason: str = ""  # one line: why not ready, why in ERROR
    supervisor_pid: int | None = None
    squid_pid: int | None = None  # while Squid runs
    health_pid: int | None = None  # while the health server runs
    health_restarts: int | None = None
    squid_kid_restarts: int | None = None  # SMP kids Squid's master restarted (workers > 1)
    started_at: float | None = None  # epoch seconds
    state_since: float | None = None  # epoch seconds
    squid_port: int | None = None  # the first http_port, for readiness
    ports: tuple[int, ...] = ()  # every port Squid listens on
    cachemgr_host: str | None = None  # where /metrics asks Squid's cache manager: an IP address
    cachemgr_port: int | None = None
    config: str | None = None  # the configuration the user gave (mounted or the default)
    cache_dirs: tuple[str, ...] | None = ()  # None: published, but not as a list of paths
    version: str | None = None  # cephaloinit's
    squid_version: str | None = None

    def uptime(self, now: float) -> float | None:
        """Seconds since the supervisor started, never negative."""
        if self.started_at is None:
            return None
        return round(max(0.0, now - self.started_at), 3)

    def to_json(self) -> str:
        document = self._asdict()
        document["state"] = self.state.value if self.state is not None else None
        if self.cache_dirs is not None:
            document["cache_dirs"] = list(self.cache_dirs)
        document["ports"] = list(self.ports)
        return json.dumps(document, sort_keys=True)


def publish(path: str, record: Published) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(record.to_json())
    os.replace(temporary, path)


def read(path: str) -> Published | None:
    """The last published state, or None when there is none (yet)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        return unusable(f"state file {path} cannot be read: {error.strerror}")
    return from_json(data)


def unusable(why: str) -> Published:
    return Published(state=None, reason=one_line(why))


def from_json(data: str | bytes) -> Published:
    """The record in ``data``; never raises. What does not match the record's
    types becomes the field's default, so a hostile or broken file can make
    the answers 503, never crash the reader or reach kill() or a response."""
    if len(data) > MAX_FILE_BYTES:
        return unusable(f"state file larger than {MAX_FILE_BYTES} bytes")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return unusable("state file is not valid JSON")
    if not isinstance(document, dict):
        return unusable("state file does not hold a JSON object")
    name = document.get("state")
    try:
        state = State(name)
    except (ValueError, TypeError):
        return unusable(f"unknown supervisor state {one_line(str(name), 40)!r}")
    return Published(
        state=state,
        ready=document.get("ready") is True,
        reason=one_line(document.get("reason")),
        supervisor_pid=_pid(document.get("supervisor_pid")),
        squid_pid=_pid(document.get("squid_pid")),
        health_pid=_pid(document.get("health_pid")),
        health_restarts=_count(document.get("health_restarts")),
        squid_kid_restarts=_count(document.get("squid_kid_restarts")),
        started_at=_time(document.get("started_at")),
        state_since=_time(document.get("state_since")),
        squid_port=port(document.get("squid_port")),
        ports=_ports(document.get("ports")),
        cachemgr_host=_address(document.get("cachemgr_host")),
        cachemgr_port=port(document.get("cachemgr_port")),
        config=_path(document.get("config")),
        cache_dirs=_paths(document.get("cache_dirs")),
        version=_text(document.get("version")),
        squid_version=_text(document.get("squid_version")),
    )


# -- one validator per field type ----------------------------------------------------
def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pid(value: object) -> int | None:
    """A positive PID. 0 and negative numbers never reach kill(): 0 is our
    process group and -1 every process we may signal."""
    return value if _integer(value) and 0 < value < 2 ** 31 else None


def port(value: object) -> int | None:
    return value if _integer(value) and 1 <= value <= 65535 else None


def _ports(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        return ()
    ports = tuple(port(item) for item in value)
    return () if None in ports else ports


def _address(value: object) -> str | None:
    """An IP address literal: connecting to it needs no name lookup."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _count(value: object) -> int | None:
    return value if _integer(value) and 0 <= value < 2 ** 63 else None


def _time(value: object) -> float | None:
    if _integer(value) and 0 <= value < 2 ** 53:  # a bigger int would not fit a float
        return float(value)
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return value
    return None


def _text(value: object) -> str | None:
    """Bounded; quoted wherever it goes (a JSON string, an escaped label value)."""
    return value[:MAX_TEXT] if isinstance(value, str) else None


def _path(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_PATH and value.isprintable():
        return value
    return None


def _paths(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LIST:
        return None
    paths = tuple(_path(item) for item in value)
    return None if None in paths else paths


def one_line(text: object, limit: int = MAX_TEXT) -> str:
    """Text fit for a one-line response body and a log line: whitespace runs
    (newlines included) become one space, control characters go, and it is
    cut at ``limit`` characters."""
    if not isinstance(text, str):
        return ""
    flat = "".join(c for c in " ".join(text.split()) if c.isprintable())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."
