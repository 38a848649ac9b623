"""What the health endpoints decide, from the supervisor's published state.

Pure functions of the state dict (``cephaloinit.statefile``) and a few small
OS questions passed in as callables, so each verdict can be tested on its own.
The one check that needs the network (Squid accepting on its port) is done by
the server, without blocking, after ``readiness`` has passed.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

from .. import procfs

STATES = (
    "INITIALIZING",
    "VALIDATING",
    "STARTING_HEALTH",
    "STARTING_SQUID",
    "RUNNING",
    "SHUTTING_DOWN",
    "ERROR",
    "EXITED",
)
MAX_REASON = 300  # characters of a reason taken from the state file


class Verdict(NamedTuple):
    ok: bool
    reason: str  # one line: "OK", "READY", or why not


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists, is not a zombie and is not stopped.

    ``kill(pid, 0)`` answers existence (EPERM still means it exists); /proc
    tells a zombie apart (Squid dead but not yet reaped by the supervisor) and
    a stopped process (SIGSTOP, a debugger): it exists but answers nobody.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    found = procfs.stat(pid)
    return found is None or found.state not in ("Z", "X", "T", "t")


def valid_pid(value: object) -> int | None:
    """The PID if it is a positive int. Never pass 0 or a negative number to
    kill(): 0 is our process group and -1 is every process we may signal."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def valid_port(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return None


def one_line(text: object, limit: int = MAX_REASON) -> str:
    """A reason fit for a one-line response body and a log line."""
    if not isinstance(text, str):
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _state_name(state: dict) -> str | None:
    name = state.get("state")
    return name if name in STATES else None


def liveness(state: dict | None, alive: Callable[[int], bool] = process_alive) -> Verdict:
    """200 while the supervisor lives and, once started, Squid lives.

    In SHUTTING_DOWN only the supervisor counts: Squid exiting is the plan.
    """
    if state is None:
        return Verdict(False, "no supervisor state published yet")
    name = _state_name(state)
    if name is None:
        return Verdict(False, f"unknown supervisor state {one_line(str(state.get('state')), 40)!r}")
    reason = one_line(state.get("reason"))
    if name == "ERROR":
        return Verdict(False, "supervisor in ERROR" + (f": {reason}" if reason else ""))
    if name == "EXITED":
        return Verdict(False, "supervisor has exited")
    supervisor = valid_pid(state.get("supervisor_pid"))
    if supervisor is None:
        return Verdict(False, "supervisor PID not published")
    if not alive(supervisor):
        return Verdict(False, f"supervisor (PID {supervisor}) is not running")
    if name == "SHUTTING_DOWN":
        return Verdict(True, "OK")
    squid = valid_pid(state.get("squid_pid"))
    if squid is None:
        if name == "RUNNING":
            return Verdict(False, "Squid PID not published")
        return Verdict(True, "OK")
    if not alive(squid):
        return Verdict(False, f"Squid (PID {squid}) is not running")
    return Verdict(True, "OK")


def readable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def readiness(state: dict | None, alive: Callable[[int], bool] = process_alive,
              readable: Callable[[str], bool] = readable_file,
              writable: Callable[[str], bool] = writable_dir) -> Verdict:
    """Everything readiness needs short of Squid accepting a connection.

    On success the reason is "READY" and the caller still has to check that
    127.0.0.1:squid_port accepts.
    """
    live = liveness(state, alive)
    if not live.ok:
        return live
    name = _state_name(state)
    reason = one_line(state.get("reason"))
    if name != "RUNNING":
        return Verdict(False, f"not ready: {name}" + (f": {reason}" if reason else ""))
    if state.get("ready") is not True:
        return Verdict(False, f"not ready: {reason or 'supervisor reports not ready'}")
    config = state.get("config")
    if not isinstance(config, str) or not config:
        return Verdict(False, "config path not published")
    if not readable(config):
        return Verdict(False, f"config {one_line(config)} is not readable")
    cache_dirs = state.get("cache_dirs") or []
    if not isinstance(cache_dirs, list):
        return Verdict(False, "cache directories not published as a list")
    for directory in cache_dirs:
        if not isinstance(directory, str) or not writable(directory):
            return Verdict(False, f"cache directory {one_line(str(directory))} is not writable")
    if valid_port(state.get("squid_port")) is None:
        return Verdict(False, "Squid port not published")
    return Verdict(True, "READY")


# Keys copied from the state file into /status: a whitelist, so that nothing
# added to the state file later is exposed without a decision.
STATUS_KEYS = (
    "state", "ready", "reason", "supervisor_pid", "squid_pid", "health_restarts",
    "started_at", "state_since", "version", "squid_version", "config", "squid_port",
)


def status_document(state: dict | None, now: float, health_pid: int) -> dict:
    """The /status JSON object. Only whitelisted keys; no secret is ever in it."""
    document: dict = {key: None for key in STATUS_KEYS}
    if state is not None:
        for key in STATUS_KEYS:
            value = state.get(key)
            if isinstance(value, (str, int, float, bool)) or value is None:
                document[key] = value
        document["reason"] = one_line(state.get("reason"))
    document["health_pid"] = health_pid
    started = document["started_at"]
    uptime = None
    if isinstance(started, (int, float)) and not isinstance(started, bool):
        uptime = round(max(0.0, now - started), 3)
    document["uptime_seconds"] = uptime
    return document
