"""What the health endpoints decide, from the supervisor's published state.

Pure functions of ``statefile.Published`` (validated once, when read) and a
few small OS questions passed in as callables, so each verdict can be tested
on its own. The one check that needs the network (Squid listening on its
port) is done by the server after ``readiness`` has passed.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

from .. import procfs
from ..statefile import Published, one_line
from ..states import State


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


def liveness(state: Published | None, alive: Callable[[int], bool] = process_alive) -> Verdict:
    """200 while the supervisor lives and, once started, Squid lives.

    In SHUTTING_DOWN only the supervisor counts: Squid exiting is the plan.
    """
    if state is None:
        return Verdict(False, "no supervisor state published yet")
    if state.state is None:
        return Verdict(False, state.reason)
    if state.state is State.ERROR:
        return Verdict(False, "supervisor in ERROR" + (f": {state.reason}" if state.reason else ""))
    if state.state is State.EXITED:
        return Verdict(False, "supervisor has exited")
    if state.supervisor_pid is None:
        return Verdict(False, "supervisor PID not published")
    if not alive(state.supervisor_pid):
        return Verdict(False, f"supervisor (PID {state.supervisor_pid}) is not running")
    if state.state is State.SHUTTING_DOWN:
        return Verdict(True, "OK")
    if state.squid_pid is None:
        if state.state is State.RUNNING:
            return Verdict(False, "Squid PID not published")
        return Verdict(True, "OK")
    if not alive(state.squid_pid):
        return Verdict(False, f"Squid (PID {state.squid_pid}) is not running")
    return Verdict(True, "OK")


def readable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


def writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def readiness(state: Published | None, alive: Callable[[int], bool] = process_alive,
              readable: Callable[[str], bool] = readable_file,
              writable: Callable[[str], bool] = writable_dir) -> Verdict:
    """Everything readiness needs short of Squid listening.

    On success the reason is "READY" and the caller still has to check that
    a socket listens on ``state.squid_port``.
    """
    live = liveness(state, alive)
    if not live.ok:
        return live
    reason = state.reason
    if state.state is not State.RUNNING:
        return Verdict(False, f"not ready: {state.state.value}" + (f": {reason}" if reason else ""))
    if not state.ready:
        return Verdict(False, f"not ready: {reason or 'supervisor reports not ready'}")
    if state.config is None:
        return Verdict(False, "config path not published")
    if not readable(state.config):
        return Verdict(False, f"config {one_line(state.config)} is not readable")
    if state.cache_dirs is None:
        return Verdict(False, "cache directories not published as a list of paths")
    for directory in state.cache_dirs:
        if not writable(directory):
            return Verdict(False, f"cache directory {one_line(directory)} is not writable")
    if state.squid_port is None:
        return Verdict(False, "Squid port not published")
    return Verdict(True, "READY")


def status_document(state: Published | None, now: float, health_pid: int) -> dict:
    """The /status JSON object: the record's fields, named one by one, so that
    nothing added to the state file later is exposed without a decision."""
    if state is None:
        state = Published(state=None)
    return {
        "state": state.state.value if state.state is not None else None,
        "ready": state.ready,
        "reason": state.reason,
        "supervisor_pid": state.supervisor_pid,
        "squid_pid": state.squid_pid,
        "health_pid": health_pid,
        "health_restarts": state.health_restarts,
        "squid_kid_restarts": state.squid_kid_restarts,
        "started_at": state.started_at,
        "state_since": state.state_since,
        "uptime_seconds": state.uptime(now),
        "version": state.version,
        "squid_version": state.squid_version,
        "config": state.config,
        "squid_port": state.squid_port,
        "ports": list(state.ports),
    }
