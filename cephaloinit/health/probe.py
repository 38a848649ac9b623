"""``cephaloinit check``: the HEALTHCHECK probe. GET a URL; exit 0 on 200, else 1.

It runs every few seconds for the life of the container, so it starts fast:
a raw socket and a hand-written request, no urllib or http.client. One
overall deadline (--timeout) covers connect, send and receive. On failure it
prints one line on stderr naming the URL and the reason; never a traceback.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import NamedTuple

from ..errors import EXIT_FAILURE, EXIT_OK
from ..settings import Settings

DEFAULT_TIMEOUT = 3.0
MAX_ANSWER = 64 * 1024  # bytes read at most; the reason is in the first line of the body
USAGE = "usage: cephaloinit check [--url http://HOST:PORT/PATH] [--timeout SECONDS]"


class ProbeError(Exception):
    """One line for stderr."""


class Target(NamedTuple):
    url: str
    host: str
    port: int
    path: str  # with its query, as sent


def default_url(settings: Settings) -> str:
    """The health server's own /health. A wildcard bind is reached on loopback
    (``::`` accepts IPv4 too); a specific bind address on that address."""
    host = settings.health_bind
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.health_port}/health"


def parse_url(url: str) -> Target:
    """http://HOST[:PORT][/PATH]; HOST a name, an IPv4 address or [IPv6]."""
    rest = _after_scheme(url).split("#", 1)[0]  # a fragment is never sent
    authority, slash, path = rest.partition("/")
    if "@" in authority or any(c.isspace() or not c.isprintable() for c in rest):
        raise _bad_url(url, "not a valid http URL")
    host, port_text = _host_and_port(url, authority)
    _check_host(url, host)
    port = _port_number(url, port_text)
    return Target(url, host, port, slash + path if slash else "/")


def _bad_url(url: str, reason: str) -> ProbeError:
    return ProbeError(f"--url {url!r}: {reason}")


def _after_scheme(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "http":
        raise _bad_url(url, "only http:// URLs are supported")
    return rest


def _host_and_port(url: str, authority: str) -> tuple[str, str]:
    """HOST[:PORT] or [IPv6][:PORT] split; the port is empty when not given."""
    if not authority.startswith("["):
        host, _, port_text = authority.partition(":")
        return host, port_text
    host, bracket, port_text = authority[1:].partition("]")
    if not bracket or (port_text and not port_text.startswith(":")):
        raise _bad_url(url, "malformed IPv6 address")
    return host, port_text[1:]


def _check_host(url: str, host: str) -> None:
    if not host:
        raise _bad_url(url, "no host")
    try:
        host.encode("idna")  # what the resolver will need: "a..b" has an empty label
    except UnicodeError:
        raise _bad_url(url, f"{host!r} is not a valid host name") from None


def _port_number(url: str, port_text: str) -> int:
    if not port_text:
        return 80
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise _bad_url(url, "port must be a number 1-65535")
    return int(port_text)


def parse_args(args: list[str], settings: Settings) -> tuple[Target, float]:
    url = None
    timeout = DEFAULT_TIMEOUT
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name not in ("--url", "--timeout"):
            raise ProbeError(f"unknown argument {arg!r}; {USAGE}")
        if not eq:
            if not rest:
                raise ProbeError(f"{name} needs a value; {USAGE}")
            value = rest.pop(0)
        if name == "--url":
            url = value
        else:
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= 3600:  # also rejects nan
                raise ProbeError(f"--timeout {value!r}: expected a number of seconds > 0")
    return parse_url(url if url is not None else default_url(settings)), timeout


def fetch(target: Target, timeout: float) -> tuple[int, str]:
    """(status code, first line of the body). Raises ProbeError."""
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProbeError(f"no answer within {timeout:g}s")
        return left

    authority = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != 80:
        authority += f":{target.port}"
    request = (f"GET {target.path} HTTP/1.1\r\nHost: {authority}\r\n"
               "User-Agent: cephaloinit-check\r\nConnection: close\r\n\r\n").encode("ascii", "replace")
    try:
        with socket.create_connection((target.host, target.port), timeout=remaining()) as sock:
            sock.settimeout(remaining())
            sock.sendall(request)
            answer = b""
            while len(answer) < MAX_ANSWER:
                sock.settimeout(remaining())
                chunk = sock.recv(MAX_ANSWER - len(answer))
                if not chunk:
                    break
                answer += chunk
    except socket.timeout:
        raise ProbeError(f"no answer within {timeout:g}s") from None
    except socket.gaierror as error:
        raise ProbeError(f"cannot resolve {target.host}: {error.strerror}") from None
    except OSError as error:
        raise ProbeError(f"cannot connect: {error.strerror or error}") from None
    return parse_answer(answer)


def parse_answer(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ProbeError("not an HTTP answer" if answer else "connection closed without an answer")
    reason = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return int(parts[1]), reason


def check(args: list[str], settings: Settings) -> int:
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return EXIT_OK
    try:
        target, timeout = parse_args(args, settings)
    except ProbeError as error:
        sys.stderr.write(f"cephaloinit check: {error}\n")
        return EXIT_FAILURE
    try:
        status, reason = fetch(target, timeout)
    except ProbeError as error:
        sys.stderr.write(f"cephaloinit check: {target.url}: {error}\n")
        return EXIT_FAILURE
    if status == 200:
        return EXIT_OK
    sys.stderr.write(f"cephaloinit check: {target.url}: HTTP {status}" + (f": {reason}" if reason else "") + "\n")
    return EXIT_FAILURE
