"""The health server child: /health, /ready, /metrics and /status over HTTP/1.x.

One process, one thread, non-blocking sockets on ``cephaloinit.loop.Loop``.
Every connection gets one response and is closed. Nothing a client does can
hold up another client: reads and writes never block, a request head is
bounded (MAX_HEAD), a connection has REQUEST_TIMEOUT seconds to send it, and at
MAX_CONNECTIONS the oldest connection is closed to make room for the newest
(slow-loris connections are the old ones; a probe is the new one). The one
request to Squid (its cache manager, for /metrics) runs on the same loop with
its own deadline, shared between requests. /ready reads Squid's listening
socket from /proc instead of connecting: Squid would log each such connection
as an error.

The answers come from the supervisor's state file, read on every request.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import socket
import time
from typing import Callable

from .. import signals, squid, statefile
from ..errors import EXIT_OK, Fatal
from ..logs import Logger
from ..loop import Loop, Timer
from ..settings import Settings
from . import checks, http, metrics, outbound

MAX_CONNECTIONS = 256
BACKLOG = 512
REQUEST_TIMEOUT = 5.0     # from accept to a complete request head
RESPONSE_TIMEOUT = 10.0   # from the request to the last byte of the answer
LINGER_TIMEOUT = 2.0      # after our answer, wait this long for the client's close
LINGER_MAX = 64 * 1024    # bytes read and discarded while lingering
READ_SIZE = 16 * 1024
ACCEPT_BATCH = 64         # accepts per wakeup, so reads are served in between
ACCEPT_PAUSE = 0.1        # seconds without accepting after EMFILE and the like
SWEEP_SLACK = 0.25        # a deadline may be enforced this much late, to spare re-arming
CACHEMGR_TIMEOUT = 2.0
CACHEMGR_TTL = 1.0        # seconds a cache-manager sample is reused
CACHEMGR_PATH = "/squid-internal-mgr/counters"
SQUID_HOST = "127.0.0.1"
ALLOWED_METHODS = ("GET", "HEAD")

READING, WAITING, WRITING, LINGERING, CLOSED = "reading", "waiting", "writing", "lingering", "closed"


class Connection:
    __slots__ = ("sock", "fd", "buffer", "out", "phase", "deadline", "events", "head_only", "discarded")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.fd = sock.fileno()
        self.buffer = bytearray()
        self.out = memoryview(b"")
        self.phase = READING
        self.deadline = 0.0  # monotonic
        self.events = 0  # what the selector watches for, 0 when unregistered
        self.head_only = False
        self.discarded = 0


def describe_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server:
    def __init__(self, settings: Settings, log: Logger, loop: Loop,
                 read_state: Callable[[], dict | None] | None = None):
        self.settings = settings
        self.log = log
        self.loop = loop
        self.read_state = read_state or (lambda: statefile.read(settings.state_file))
        self.listener: socket.socket | None = None
        self.connections: dict[int, Connection] = {}  # by fd, oldest first
        self.requests: dict[int, int] = {}  # status code -> responses sent
        self.evicted = 0
        self.sweep: Timer | None = None  # the one timer for every connection deadline
        self.cachemgr_up: bool | None = None
        self.cachemgr = outbound.Shared(loop, CACHEMGR_TTL, self._start_cachemgr_fetch)
        self.routes = {
            "/health": self.handle_health,
            "/ready": self.handle_ready,
            "/metrics": self.handle_metrics,
            "/status": self.handle_status,
        }

    # -- listening ---------------------------------------------------------
    def listen(self) -> tuple:
        """Bind HEALTH_BIND:HEALTH_PORT; return the bound address. Raises OSError."""
        host = self.settings.health_bind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too
            sock.bind((host, self.settings.health_port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.listener = sock
        self.loop.add_reader(sock.fileno(), self._accept)
        return sock.getsockname()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting(error)
                    return
                continue  # ECONNABORTED and friends concern that one connection only
            sock.setblocking(False)
            if len(self.connections) >= MAX_CONNECTIONS:
                self._evict_oldest()
            conn = Connection(sock)
            self.connections[conn.fd] = conn
            self._set_deadline(conn, REQUEST_TIMEOUT)
            self._watch(conn, selectors.EVENT_READ)
            self._readable(conn)  # the request is often there already

    def _pause_accepting(self, error: OSError) -> None:
        """Out of descriptors: the listener stays readable, so stop watching it
        for a moment instead of spinning; free the oldest connection meanwhile."""
        self.log.warning(f"Health server cannot accept connections: {error.strerror}; "
                         f"pausing {ACCEPT_PAUSE:g}s")
        if self.connections:
            self._evict_oldest()
        self.loop.remove_reader(self.listener.fileno())
        self.loop.call_later(ACCEPT_PAUSE, self._resume_accepting)

    def _resume_accepting(self) -> None:
        if self.listener is not None:
            self.loop.add_reader(self.listener.fileno(), self._accept)

    def _evict_oldest(self) -> None:
        oldest = next(iter(self.connections.values()))
        self.evicted += 1
        self.log.debug(f"Health server at {MAX_CONNECTIONS} connections; closing the oldest")
        self.close(oldest)

    # -- one connection ------------------------------------------------------
    def _watch(self, conn: Connection, events: int) -> None:
        if events != conn.events:
            self.loop.watch(conn.fd, events, lambda: self._ready_io(conn))
            conn.events = events

    def _ready_io(self, conn: Connection) -> None:
        if conn.phase == WRITING:
            self._write(conn)
        elif conn.phase in (READING, LINGERING):
            self._readable(conn)

    def _set_deadline(self, conn: Connection, seconds: float) -> None:
        """Connection deadlines share one loop timer, due at the earliest.

        A timer per connection would leave one heap entry (and the connection
        it refers to) per request for REQUEST_TIMEOUT seconds after a cancel:
        memory in proportion to the request rate. Here the heap holds one entry;
        a sweep costs one pass over at most MAX_CONNECTIONS connections.
        """
        conn.deadline = self.loop.clock() + seconds
        if self.sweep is None or conn.deadline < self.sweep.when - SWEEP_SLACK:
            self._arm_sweep(conn.deadline)

    def _arm_sweep(self, when: float) -> None:
        if self.sweep is not None:
            self.sweep.cancel()
        self.sweep = self.loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        self.sweep = None
        now = self.loop.clock()
        for conn in [c for c in self.connections.values() if c.deadline <= now]:
            self._timed_out(conn)
        if self.connections:  # none left: no timer, and an idle loop sleeps
            self._arm_sweep(min(c.deadline for c in self.connections.values()))

    def _timed_out(self, conn: Connection) -> None:
        if conn.phase == READING and conn.buffer:
            try:  # best effort, once: a client that sent part of a request learns why
                conn.sock.send(http.response(408, b"request not completed in time\n"))
            except OSError:
                pass
        self.close(conn)

    def _readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.close(conn)
            return
        if conn.phase == LINGERING:
            conn.discarded += len(data)
            if not data or conn.discarded > LINGER_MAX:
                self.close(conn)
            return
        if not data:  # the client closed (or half-closed) before a whole request
            if conn.buffer:
                self.respond(conn, 400, b"incomplete request\n")
            else:
                self.close(conn)
            return
        conn.buffer += data
        if b"\n" not in data and len(conn.buffer) <= http.MAX_HEAD:
            return  # the head cannot have ended in this chunk
        try:
            request = http.parse(bytes(conn.buffer))
        except http.RequestError as error:
            self.log.debug(f"Health server: {error.status} for a request: {error.message}")
            self.respond(conn, error.status, f"{error.message}\n".encode())
            return
        if request is not None:
            self.dispatch(conn, request)

    def dispatch(self, conn: Connection, request: http.Request) -> None:
        conn.phase = WAITING
        conn.head_only = request.method == "HEAD"
        self._watch(conn, 0)
        self.log.debug(f"Health server: {request.method} {request.target}")
        handler = self.routes.get(request.path)
        if handler is None:
            self.respond(conn, 404, b"not found; try /health, /ready, /metrics or /status\n")
        elif request.method not in ALLOWED_METHODS:
            self.respond(conn, 405, f"method {request.method} not allowed\n".encode(),
                         headers=(("Allow", ", ".join(ALLOWED_METHODS)),))
        else:
            try:
                handler(conn)
            except Exception as error:  # a bug must cost one response, not the server
                self.log.error(f"Health server: {request.path} failed: {error!r}")
                self.respond(conn, 500, b"internal error\n")
        if conn.phase == WAITING:  # the answer depends on Squid; bound the wait
            self._set_deadline(conn, RESPONSE_TIMEOUT)

    def respond(self, conn: Connection, status: int, body: bytes,
                content_type: str = http.TEXT, headers: tuple = ()) -> None:
        if conn.phase in (CLOSED, WRITING, LINGERING):
            return  # closed meanwhile (evicted, timed out), or answered already
        self.requests[status] = self.requests.get(status, 0) + 1
        conn.out = memoryview(http.response(status, body, content_type, conn.head_only, headers))
        conn.phase = WRITING
        self._write(conn)
        if conn.phase == WRITING:  # a slow reader: bound the time it may take
            self._set_deadline(conn, RESPONSE_TIMEOUT)

    def _write(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close(conn)
            return
        conn.out = conn.out[sent:]
        if conn.out:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        self._linger(conn)

    def _linger(self, conn: Connection) -> None:
        """Half-close and read until the client closes. Closing a socket with
        unread input sends a RST, which can destroy the answer we just sent."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.phase = LINGERING
        self._set_deadline(conn, LINGER_TIMEOUT)
        self._watch(conn, selectors.EVENT_READ)

    def close(self, conn: Connection) -> None:
        if conn.phase == CLOSED:
            return
        conn.phase = CLOSED
        self._watch(conn, 0)
        self.connections.pop(conn.fd, None)
        conn.sock.close()

    def close_all(self) -> None:
        for conn in list(self.connections.values()):
            self.close(conn)
        if self.sweep is not None:
            self.sweep.cancel()
            self.sweep = None
        if self.listener is not None:
            self.loop.remove_reader(self.listener.fileno())
            self.listener.close()
            self.listener = None

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
        port = state["squid_port"]
        if not squid.listening(port, checks.valid_pid(state.get("squid_pid"))):
            verdict = checks.Verdict(False, f"Squid is not listening on port {port}")
        self._verdict(conn, verdict)

    def handle_metrics(self, conn: Connection) -> None:
        state = self.read_state()
        port = metrics.squid_port(state)
        if port is not None and self._squid_up(state):
            self.cachemgr.get(port, lambda sample: self._send_metrics(conn, sample))
        else:
            self._send_metrics(conn, None)

    def _send_metrics(self, conn: Connection, sample: metrics.SquidSample | None) -> None:
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
    def _squid_up(state: dict | None) -> bool:
        pid = checks.valid_pid(state.get("squid_pid")) if state else None
        return pid is not None and checks.process_alive(pid)

    # -- work shared between requests -----------------------------------------
    def _start_cachemgr_fetch(self, port: int, done: Callable[[metrics.SquidSample], None]) -> None:
        def fetched(status: int | None, body: bytes, error: str) -> None:
            counters = None
            if status == 200:
                counters = metrics.parse_counters(body.decode("utf-8", "replace")) or None
                if counters is None:
                    error = "no counters in the answer"
            elif status is not None:
                error = f"HTTP status {status}"
            self._note_cachemgr(counters is not None, port, error)
            done(metrics.SquidSample(counters, error, metrics.squid_client_connections(port)))

        outbound.http_get(self.loop, SQUID_HOST, port, CACHEMGR_PATH, CACHEMGR_TIMEOUT, fetched)

    def _note_cachemgr(self, up: bool, port: int, error: str) -> None:
        """Log when the cache manager becomes unreachable or reachable, not on every scrape."""
        if up == self.cachemgr_up:
            return
        where = f"http://{describe_address(SQUID_HOST, port)}{CACHEMGR_PATH}"
        if up:
            self.log.debug(f"Health server: Squid cache manager reachable at {where}")
        else:
            self.log.warning(f"Squid cache manager not reachable at {where}: {error}; "
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
