"""The health server's connections: accept, read a request head, write one
answer, linger, close; each bounded in bytes and time.

Non-blocking sockets on ``cephaloinit.loop.Loop``. Every connection gets one
response and is closed. Nothing a client does can hold up another client:
reads and writes never block, a request head is bounded (``http.MAX_HEAD``),
a connection has REQUEST_TIMEOUT seconds to send it, and at MAX_CONNECTIONS
the oldest connection is closed to make room for the newest (slow-loris
connections are the old ones; a probe is the new one). What to answer is the
subclass's: ``routes`` maps a path to a handler that calls ``respond``, now
or later.
"""

from __future__ import annotations

import errno
import selectors
import socket
from typing import Callable

from ..logs import Logger
from ..loop import Loop, Timer
from ..settings import Settings
from . import http

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


class HttpServer:
    """One listening socket and its connections; ``routes`` (path -> handler),
    filled in by a subclass, says what to answer."""

    not_found = b"not found\n"

    def __init__(self, settings: Settings, log: Logger, loop: Loop):
        self.settings = settings
        self.log = log
        self.loop = loop
        self.listener: socket.socket | None = None
        self.connections: dict[int, Connection] = {}  # by fd, oldest first
        self.requests: dict[int, int] = {}  # status code -> responses sent
        self.evicted = 0
        self.sweep: Timer | None = None  # the one timer for every connection deadline
        self.routes: dict[str, Callable[[Connection], None]] = {}

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
            self.respond(conn, 404, self.not_found)
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
