"""Squid's cache manager: where the health server asks it, and what its
``counters`` and ``info`` pages say.

Pure functions. The address is chosen by the supervisor, which has read
squid.conf, and published in the state file; the pages are fetched by the
server (``outbound``) and parsed here. Field names were read from Squid 5.7
(Debian 12) and 6.13 (Debian 13), whose ``info`` pages agree on every line
used here.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import NamedTuple

from ..squidconf import Directive

COUNTERS_PATH = "/squid-internal-mgr/counters"
INFO_PATH = "/squid-internal-mgr/info"
# http_port modes a plain GET from loopback cannot use: the request would be
# taken for intercepted or reverse-proxied traffic, or lack a PROXY header.
UNUSABLE_MODES = ("intercept", "tproxy", "transparent", "accel", "require-proxy-header")
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}


def address(directives: tuple[Directive, ...]) -> tuple[str, int] | None:
    """The first plain http_port the cache manager can be asked on, as
    (IP address, port): a wildcard or ``localhost`` is asked on loopback, a
    specific address on that address. None when there is none (only
    https_port, intercept or accel ports, or ports bound to host names)."""
    for directive in directives:
        if directive.name != "http_port" or not directive.args:
            continue
        if any(word.split("=", 1)[0] in UNUSABLE_MODES for word in directive.args[1:]):
            continue
        found = _host_port(directive.args[0])
        if found is not None:
            return found
    return None


def _host_port(spec: str) -> tuple[str, int] | None:
    """``3128``, ``0.0.0.0:3128``, ``[::1]:3128``, ``localhost:3128``."""
    host, _, port_text = spec.rpartition(":")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    host = WILDCARDS.get(host, host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: resolving it would block, and it may not be ours
    return host, int(port_text)


# -- the counters page ----------------------------------------------------------------
def parse_counters(text: str) -> dict[str, float]:
    """Squid's ``counters`` page: ``key = value`` lines, value first token numeric.

    ``sample_time = 1795784382.900985 (Fri, 27 Nov ...)`` keeps its number;
    anything that is not a number is skipped, as is a line without " = ".
    """
    counters: dict[str, float] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        key = key.strip()
        if not sep or not key or " " in key:
            continue
        first = value.split(None, 1)[0] if value.strip() else ""
        try:
            number = float(first)
        except ValueError:
            continue
        if math.isfinite(number):
            counters[key] = number
    return counters


# -- the info page ------------------------------------------------------------------------
WINDOWS = ("5m", "60m")
# info line label -> our key, for "label:\t<number>" lines
_INFO_NUMBERS = {
    "Maximum number of file descriptors": "fds_max",
    "Number of file desc currently in use": "fds_open",
}
# "Hits as % of ...:\t5min: 12.5%, 60min: 3.0%" -> hit_ratio.<kind>.<window>
_INFO_RATIOS = {"Hits as % of all requests": "requests", "Hits as % of bytes sent": "bytes"}
_PERCENTS = re.compile(r"5min:\s*(-?[0-9.]+)%,\s*60min:\s*(-?[0-9.]+)%")
# Median Service Times section: "label:   <5 min>  <60 min>" -> median.<kind>.<window>
_MEDIANS = {"HTTP Requests (All)": "all", "Cache Hits": "hits", "Cache Misses": "misses",
            "DNS Lookups": "dns"}
_MEDIAN_HEADER = "Median Service Times"


class Info(NamedTuple):
    """What the info page says, in base units; a figure not found is absent."""
    fds_max: float | None
    fds_open: float | None
    hit_ratios: dict[tuple[str, str], float]  # (requests|bytes, 5m|60m) -> 0..1
    medians: dict[tuple[str, str], float]  # (all|hits|misses|dns, 5m|60m) -> seconds


def _numbers(text: str) -> list[float]:
    found = []
    for word in text.split():
        try:
            number = float(word.rstrip("%,"))
        except ValueError:
            continue
        if math.isfinite(number):
            found.append(number)
    return found


def parse_info(text: str) -> Info | None:
    """Squid's ``info`` page; None when none of its figures is there (an
    error page, an unknown Squid)."""
    info = Info(None, None, {}, {})
    section = ""
    for line in text.splitlines():
        if not line.startswith(("\t", " ")):  # a section's title
            section = line
            continue
        label, sep, value = line.strip().partition(":")
        if sep:
            info = _read_figure(info, section, label, value)
    if info == Info(None, None, {}, {}):
        return None
    return info


def _read_figure(info: Info, section: str, label: str, value: str) -> Info:
    """``info`` with the figure of one ``label: value`` line, if it is one of ours."""
    if section.startswith(_MEDIAN_HEADER) and label in _MEDIANS:
        figures = _numbers(value)
        if len(figures) == 2:
            for window, seconds in zip(WINDOWS, figures):
                info.medians[(_MEDIANS[label], window)] = max(0.0, seconds)
    elif label in _INFO_NUMBERS:
        figures = _numbers(value)
        if figures:
            info = info._replace(**{_INFO_NUMBERS[label]: figures[0]})
    elif label in _INFO_RATIOS and (found := _PERCENTS.search(value)):
        for window, percent in zip(WINDOWS, found.groups()):
            # Squid prints -0.0% for bytes before any traffic; a ratio is 0..1.
            info.hit_ratios[(_INFO_RATIOS[label], window)] = min(1.0, max(0.0, float(percent) / 100))
    return info


class SquidSample(NamedTuple):
    """What one visit to the cache manager found (shared by concurrent scrapes)."""
    counters: dict[str, float] | None  # None: the cache manager was not reached
    error: str
    connections: int | None
    info: Info | None = None
