"""Connections the health server makes to Squid, without ever blocking the loop.

``http_get`` fetches one cache-manager page: a non-blocking socket on the
loop with a deadline, calling back exactly once. ``Shared`` puts such an
operation behind a short cache, so a flood of /metrics requests costs Squid
at most one request per TTL.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
from typing import Any, Callable

from ..loop import Loop

MAX_RESPONSE = 512 * 1024


class _HttpGet:
    """One non-blocking client socket: connect, send the request, read to EOF."""

    def __init__(self, loop: Loop, host: str, port: int, path: str, timeout: float,
                 done: Callable[[int | None, bytes, str], None]):
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.request = memoryview(
            f"GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: cephaloinit-health\r\n"
            "Accept: text/plain\r\nConnection: close\r\n\r\n".encode("ascii"))
        self.received = bytearray()
        self.loop = loop
        self.done = done
        self.finished = False
        self.timeout = timeout
        try:
            self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                      socket.SOCK_STREAM)
        except OSError as error:  # EMFILE and the like: report, never raise into the loop
            self.sock = None
            self.finish_error(error.strerror or str(error))
            return
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        self.timer = loop.call_later(timeout, self._timed_out)
        code = self.sock.connect_ex((host, port))
        if code in (0, errno.EINPROGRESS, errno.EAGAIN):
            self._watch(selectors.EVENT_WRITE, self._connected)
        else:
            self.finish_error(os.strerror(code))

    def _watch(self, events: int, callback: Callable[[], None]) -> None:
        self.loop.watch(self.fd, events, callback)

    def _connected(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.finish_error(os.strerror(code))
        else:
            self.on_connected()

    def _timed_out(self) -> None:
        self.finish_error(f"no answer within {self.timeout:g}s")

    def close(self) -> None:
        if self.sock is None:
            return
        self.timer.cancel()
        self.loop.watch(self.fd, 0)
        self.sock.close()

    def finish(self, *result: Any) -> None:
        if self.finished:
            return
        self.finished = True
        self.close()
        self.done(*result)

    def on_connected(self) -> None:
        self._watch(selectors.EVENT_WRITE, self._send)
        self._send()

    def _send(self) -> None:
        try:
            sent = self.sock.send(self.request)
        except BlockingIOError:
            return
        except OSError as error:
            self.finish_error(error.strerror or str(error))
            return
        self.request = self.request[sent:]
        if not self.request:
            self._watch(selectors.EVENT_READ, self._receive)

    def _receive(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as error:
            self.finish_error(error.strerror or str(error))
            return
        if data:
            self.received += data
            if len(self.received) > MAX_RESPONSE:
                self.finish_error(f"response longer than {MAX_RESPONSE} bytes")
            return
        self._parse()

    def _parse(self) -> None:
        head, sep, body = bytes(self.received).partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if not sep or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
            self.finish_error("malformed HTTP response")
            return
        try:
            status = int(status_line[1])
        except ValueError:
            self.finish_error("malformed HTTP status")
            return
        self.finish(status, body, "")

    def finish_error(self, message: str) -> None:
        self.finish(None, b"", message)


def http_get(loop: Loop, host: str, port: int, path: str, timeout: float,
             done: Callable[[int | None, bytes, str], None]) -> None:
    """Fetch ``path``; ``done(status, body, "")`` or ``done(None, b"", reason)``.

    HTTP/1.0 without keep-alive: the body is everything up to the server's close.
    """
    _HttpGet(loop, host, port, path, timeout, done)


class Shared:
    """One operation per key at a time, its result kept ``ttl`` seconds.

    ``start(key, done)`` begins the operation and calls ``done(result)`` once.
    Callers that arrive while it runs wait for the same result.
    """

    def __init__(self, loop: Loop, ttl: float, start: Callable[[Any, Callable[[Any], None]], None]):
        self.loop = loop
        self.ttl = ttl
        self.start = start
        self.cached: dict[Any, tuple[float, Any]] = {}
        self.waiting: dict[Any, list[Callable[[Any], None]]] = {}

    def get(self, key: Any, callback: Callable[[Any], None]) -> None:
        hit = self.cached.get(key)
        if hit is not None and self.loop.clock() < hit[0]:
            callback(hit[1])
            return
        if key in self.waiting:
            self.waiting[key].append(callback)
            return
        self.waiting[key] = [callback]
        self.start(key, lambda result: self._done(key, result))

    def _done(self, key: Any, result: Any) -> None:
        self.cached = {key: (self.loop.clock() + self.ttl, result)}  # only the latest key
        for callback in self.waiting.pop(key, []):
            callback(result)
