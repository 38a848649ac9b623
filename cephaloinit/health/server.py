"""The health server child: /health, /ready, /metrics and /status.

The connections themselves (limits, deadlines, eviction) are
``connections.HttpServer``'s; this module says what each path answers, from
the supervisor's state file read on every request. The one request to Squid
(its cache manager, for /metrics) runs on the same loop with its own
deadline, shared between requests. /ready reads Squid's listening socket
from /proc instead of connecting: Squid would log each such connection as an
error.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Callable, NamedTuple

from .. import signals, squid, statefile
from ..errors import EXIT_OK, Fatal
from ..logs import Logger
from ..loop import Loop
from ..settings import Settings
from ..statefile import Published
from . import cachemgr, checks, metrics, outbound
from .connections import Connection, HttpServer, describe_address

CACHEMGR_TIMEOUT = 2.0    # for each of the two pages
CACHEMGR_TTL = 1.0        # seconds a cache-manager sample is reused


class CacheManager(NamedTuple):
    """Where to ask Squid's cache manager, as the supervisor published it."""
    host: str | None
    port: int | None
    ports: tuple[int, ...]  # Squid's ports, for its client connections


class Server(HttpServer):
    not_found = b"not found; try /health, /ready, /metrics or /status\n"

    def __init__(self, settings: Settings, log: Logger, loop: Loop,
                 read_state: Callable[[], Published | None] | None = None):
        super().__init__(settings, log, loop)
        self.read_state = read_state or (lambda: statefile.read(settings.state_file))
        self.cachemgr_up: bool | None = None
        self.cachemgr = outbound.Shared(loop, CACHEMGR_TTL, self._start_cachemgr_fetch)
        self.routes = {
            "/health": self.handle_health,
            "/ready": self.handle_ready,
            "/metrics": self.handle_metrics,
            "/status": self.handle_status,
        }

    # -- endpoints -----------------------------------------------------------
    def _verdict(self, conn: Connection, verdict: checks.Verdict) -> None:
        self.respond(conn, 200 if verdict.ok else 503, f"{verdict.reason}\n".encode())

    def handle_health(self, conn: Connection) -> None:
        self._verdict(conn, checks.liveness(self.read_state()))

    def handle_ready(self, conn: Connection) -> None:
        state = self.read_state()
        verdict = checks.readiness(state)
        if not verdict.ok:
            self._verdict(conn, verdict)
            return
        if not squid.listening(state.squid_port, state.squid_pid):
            verdict = checks.Verdict(False, f"Squid is not listening on port {state.squid_port}")
        self._verdict(conn, verdict)

    def handle_metrics(self, conn: Connection) -> None:
        state = self.read_state()
        if state is not None and self._squid_up(state):
            where = CacheManager(state.cachemgr_host, state.cachemgr_port, state.ports)
            self.cachemgr.get(where, lambda sample: self._send_metrics(conn, sample))
        else:
            self._send_metrics(conn, None)

    def _send_metrics(self, conn: Connection, sample: cachemgr.SquidSample | None) -> None:
        state = self.read_state()  # again: the cache manager may have taken a while
        health = {"requests": self.requests, "connections": len(self.connections),
                  "evicted": self.evicted}
        text = metrics.render(metrics.families(state, time.time(), self._squid_up(state), sample, health))
        self.respond(conn, 200, text.encode(), metrics.CONTENT_TYPE)

    def handle_status(self, conn: Connection) -> None:
        document = checks.status_document(self.read_state(), time.time(), os.getpid())
        body = json.dumps(document, sort_keys=True, indent=2) + "\n"
        self.respond(conn, 200, body.encode(), "application/json")

    @staticmethod
    def _squid_up(state: Published | None) -> bool:
        return state is not None and state.squid_pid is not None \
            and checks.process_alive(state.squid_pid)

    # -- work shared between requests -----------------------------------------
    def _start_cachemgr_fetch(self, where: CacheManager,
                              done: Callable[[cachemgr.SquidSample], None]) -> None:
        """The counters page, then the info page; one sample from both."""
        if where.host is None or where.port is None:
            self._sampled(where, None, None, "no plain http_port to ask it on", done)
            return

        def got_info(status: int | None, body: bytes, error: str) -> None:
            info = cachemgr.parse_info(body.decode("utf-8", "replace")) if status == 200 else None
            self._sampled(where, counters, info, "", done)

        def got_counters(status: int | None, body: bytes, error: str) -> None:
            nonlocal counters
            if status == 200:
                counters = cachemgr.parse_counters(body.decode("utf-8", "replace")) or None
                error = "" if counters else "no counters in the answer"
            elif status is not None:
                error = f"HTTP status {status}"
            if counters is None:
                self._sampled(where, None, None, error, done)
            else:
                self._get(where, cachemgr.INFO_PATH, got_info)

        counters: dict[str, float] | None = None
        self._get(where, cachemgr.COUNTERS_PATH, got_counters)

    def _get(self, where: CacheManager, path: str, done: Callable[[int | None, bytes, str], None]) -> None:
        outbound.http_get(self.loop, where.host, where.port, path, CACHEMGR_TIMEOUT, done)

    def _sampled(self, where: CacheManager, counters: dict[str, float] | None,
                 info: cachemgr.Info | None, error: str,
                 done: Callable[[cachemgr.SquidSample], None]) -> None:
        self._note_cachemgr(counters is not None, where, error)
        connections = metrics.squid_client_connections(where.ports) if where.ports else None
        done(cachemgr.SquidSample(counters, error, connections, info))

    def _note_cachemgr(self, up: bool, where: CacheManager, error: str) -> None:
        """Log when the cache manager becomes unreachable or reachable, not on every scrape."""
        if up == self.cachemgr_up:
            return
        if where.host is None or where.port is None:
            place = "anywhere"
        else:
            place = f"http://{describe_address(where.host, where.port)}{cachemgr.COUNTERS_PATH}"
        if up:
            self.log.debug(f"Health server: Squid cache manager reachable at {place}")
        else:
            self.log.warning(f"Squid cache manager not reachable at {place}: {error}; "
                             "/metrics carries the supervisor's metrics only")
        self.cachemgr_up = up


def notify_ready(log: Logger) -> None:
    """Tell the supervisor we listen: READY=1 on the fd named by $NOTIFY_FD."""
    text = os.environ.pop("NOTIFY_FD", "")
    if not text:
        return
    try:
        fd = int(text)
    except ValueError:
        log.warning(f"Health server: NOTIFY_FD={text!r} is not a file descriptor number")
        return
    try:
        os.write(fd, b"READY=1\n")
    except OSError as error:
        log.warning(f"Health server cannot notify readiness on fd {fd}: {error.strerror}")
    try:
        os.close(fd)
    except OSError:
        pass


def serve(settings: Settings, log: Logger, wakeup_fd: int) -> int:
    """Run until SIGTERM, SIGINT or SIGQUIT; return 0. Fatal when it cannot listen.
    ``wakeup_fd`` is the pipe __main__ installed with the handlers."""
    stop: list[int] = []

    def on_signals(signums: list[int]) -> None:
        for signum in signums:
            if signum in signals.STOP_SIGNALS:
                stop.append(signum)
            elif signum != signal.SIGCHLD:
                log.debug(f"Health server ignores {signals.name(signum)}")

    loop = Loop(wakeup_fd, on_signals)
    server = Server(settings, log, loop)
    where = describe_address(settings.health_bind, settings.health_port)
    try:
        server.listen()
    except OSError as error:
        raise Fatal(f"Health server cannot listen on {where}: {error.strerror or error}") from None
    notify_ready(log)
    log.debug(f"Health server listening on {where}")  # the supervisor logs the start at INFO
    while not stop:
        loop.run_once()
    server.close_all()
    loop.close()
    log.info(f"Health server stopped on {signals.name(stop[0])}")
    return EXIT_OK
