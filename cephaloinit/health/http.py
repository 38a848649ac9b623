"""HTTP/1.0 and HTTP/1.1 requests, parsed strictly, and the bytes of a response.

Only the request head matters here: the server answers GET and HEAD, reads no
body, and closes the connection after every response (``Connection: close``).
The head (request line and headers) is bounded by MAX_HEAD bytes.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

MAX_HEAD = 8 * 1024

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

TEXT = "text/plain; charset=utf-8"

_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])\Z")
_TARGET = re.compile(rb"[\x21-\x7e]+\Z")  # visible ASCII, no space, no control
_HEADER = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00\r\n]*\Z")
_ABSOLUTE = re.compile(rb"https?://[^/?#]*", re.IGNORECASE)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class RequestError(Exception):
    """A request we answer with an error status (400, 431, 505) and close."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Request(NamedTuple):
    method: str
    target: str
    path: str  # the target without query, absolute-form reduced to its path
    version: str


def head_end(buffer: bytes) -> int:
    """Index just past the blank line that ends the head, or -1 while incomplete.

    Lines may end in CRLF or a bare LF (RFC 9112 section 2.2 lets a server
    accept LF). Empty lines before the request line are skipped by ``parse``.
    """
    start = len(buffer) - len(buffer.lstrip(b"\r\n"))
    ends = [i for i in (buffer.find(b"\n\r\n", start), buffer.find(b"\n\n", start)) if i != -1]
    if not ends:
        return -1
    end = min(ends)
    return end + (3 if buffer.startswith(b"\n\r\n", end) else 2)


def parse(buffer: bytes) -> Request | None:
    """The request whose head ``buffer`` starts with; None while it is incomplete.

    Raises RequestError: 431 when the head exceeds MAX_HEAD bytes, 400 when it
    is malformed, 505 for an HTTP major version other than 1.
    """
    end = head_end(buffer)
    head_so_far = len(buffer) if end == -1 else end
    if head_so_far > MAX_HEAD:
        raise RequestError(431, f"request head longer than {MAX_HEAD} bytes")
    if end == -1:
        return None
    lines = head_lines(buffer[:end])
    method, target, version = request_line(lines[0])
    for line in lines[1:]:
        if not _HEADER.match(line):  # also rejects obs-fold and a space before the colon
            raise RequestError(400, "malformed header line")
    return Request(method.decode("ascii"), target.decode("ascii"), _path(target), version.decode("ascii"))


def head_lines(head: bytes) -> list[bytes]:
    """The lines of a complete head without their line ends, the blank lines
    around it left out: the request line first, then the header lines."""
    lines = head.lstrip(b"\r\n").split(b"\n")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    while lines and lines[-1] == b"":
        lines.pop()
    return lines


def request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """(method, target, version) of a request line, each checked in that order."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise RequestError(400, "malformed request line")
    method, target, version = parts
    if not _METHOD.match(method):
        raise RequestError(400, "malformed method")
    if not _TARGET.match(target):
        raise RequestError(400, "malformed request target")
    matched = _VERSION.match(version)
    if not matched:
        raise RequestError(400, "malformed HTTP version")
    if matched.group(1) != b"1":
        raise RequestError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    return method, target, version


def _path(target: bytes) -> str:
    absolute = _ABSOLUTE.match(target)
    if absolute:
        target = target[absolute.end():] or b"/"
    for separator in (b"?", b"#"):
        target = target.split(separator, 1)[0]
    return target.decode("ascii")


def http_date(now: float | None = None) -> str:
    """RFC 9110 IMF-fixdate, independent of the locale."""
    t = time.gmtime(now)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def response(status: int, body: bytes, content_type: str = TEXT, head_only: bool = False,
             headers: tuple[tuple[str, str], ...] = (), now: float | None = None) -> bytes:
    """A complete response; with ``head_only`` (HEAD) the body is left out but
    Content-Length still gives the length a GET would have had."""
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
        f"Date: {http_date(now)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body
