"""Free TCP ports for tests, chosen outside the kernel's ephemeral port range.

A port the kernel hands out for ``bind((host, 0))`` lies in the ephemeral
range. Until the program under test binds it, any outgoing connection on the
machine may take it as its local port, and Squid, which binds the wildcard
address, then fails with "Address already in use" (seen in CI). Ports outside
that range are only ever taken by an explicit bind.
"""

import random
import socket

PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
LOWEST = 10000  # well above the well-known and most registered services
_given: set[int] = set()  # never the same port twice in one test run


def ephemeral_range(path: str = PORT_RANGE_FILE) -> tuple[int, int]:
    try:
        with open(path) as f:
            low, high = (int(word) for word in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def bindable(port: int) -> bool:
    """True if nothing holds the port on any address of either family."""
    for family, wildcard in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family)
        except OSError:  # no IPv6 on this machine
            continue
        with sock:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((wildcard, port))
            except OSError as error:
                if family == socket.AF_INET6 and error.errno == 99:  # EADDRNOTAVAIL: IPv6 off
                    continue
                return False
    return True


def outside_ephemeral(low: int, high: int) -> range:
    """The larger run of ports the kernel never hands out: below the
    ephemeral range (from LOWEST) or above it."""
    below, above = range(LOWEST, low), range(max(high + 1, LOWEST), 65536)
    return max(below, above, key=len)


def free_port() -> int:
    """A port nothing listens on, outside the ephemeral range."""
    ports = outside_ephemeral(*ephemeral_range())
    if len(ports) < 1000:
        raise RuntimeError(f"too few ports outside the ephemeral range ({PORT_RANGE_FILE}) "
                           "for the tests: narrow it")
    for _ in range(200):
        port = random.choice(ports)
        if port not in _given and bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port found in {ports.start}-{ports.stop - 1}")
