"""/metrics: the Prometheus text exposition format, version 0.0.4.

Three sources: the supervisor's published state, Squid's cache manager (its
``counters`` and ``info`` pages, fetched by the server without blocking and
parsed by ``cachemgr``), and /proc/net/tcp{,6} for Squid's established
client connections. Names follow Prometheus conventions: a ``cephaloproxy_``
prefix, base units (Squid counts KiB and percent; we export bytes and ratios
0-1), ``_total`` on counters. docs/health.md lists every metric and its source.
"""

from __future__ import annotations

import math

from .. import procfs, squid
from ..statefile import Published
from ..states import State
from .cachemgr import Info, SquidSample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Squid counter key -> (metric name, help, multiplier to base units)
SQUID_COUNTERS: dict[str, tuple[str, str, int]] = {
    "client_http.requests": ("cephaloproxy_squid_client_http_requests_total",
                             "HTTP requests received from clients.", 1),
    "client_http.hits": ("cephaloproxy_squid_client_http_hits_total",
                         "Client HTTP requests answered from the cache.", 1),
    "client_http.errors": ("cephaloproxy_squid_client_http_errors_total",
                           "Client HTTP requests that ended in an error.", 1),
    "client_http.kbytes_in": ("cephaloproxy_squid_client_http_received_bytes_total",
                              "Bytes received from clients (Squid counts whole KiB).", 1024),
    "client_http.kbytes_out": ("cephaloproxy_squid_client_http_sent_bytes_total",
                               "Bytes sent to clients (Squid counts whole KiB).", 1024),
    "client_http.hit_kbytes_out": ("cephaloproxy_squid_client_http_hit_sent_bytes_total",
                                   "Bytes sent to clients from the cache (whole KiB).", 1024),
    "server.all.requests": ("cephaloproxy_squid_server_requests_total",
                            "Requests Squid sent to origin servers and peers.", 1),
    "server.all.errors": ("cephaloproxy_squid_server_errors_total",
                          "Requests to origin servers and peers that failed.", 1),
    "server.all.kbytes_in": ("cephaloproxy_squid_server_received_bytes_total",
                             "Bytes received from origin servers and peers (whole KiB).", 1024),
    "server.all.kbytes_out": ("cephaloproxy_squid_server_sent_bytes_total",
                              "Bytes sent to origin servers and peers (whole KiB).", 1024),
    "aborted_requests": ("cephaloproxy_squid_aborted_requests_total",
                         "Requests aborted before completion.", 1),
    "cpu_time": ("cephaloproxy_squid_cpu_seconds_total",
                 "CPU time used by Squid, in seconds.", 1),
}



class Family:
    """One metric family: its name, type (counter or gauge), help, and samples."""

    def __init__(self, name: str, type: str, help: str):
        self.name = name
        self.type = type
        self.help = help
        self.samples: list[tuple[dict[str, str], float]] = []

    def add(self, value: float, **labels: str) -> "Family":
        self.samples.append((labels, value))
        return self


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(families: list[Family]) -> str:
    """The exposition text: HELP and TYPE before each family's samples, one
    family per name, a newline after the last line."""
    out: list[str] = []
    for family in families:
        out.append(f"# HELP {family.name} {_escape_help(family.help)}")
        out.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            if labels:
                text = ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels.items())
                out.append(f"{family.name}{{{text}}} {format_value(value)}")
            else:
                out.append(f"{family.name} {format_value(value)}")
    return "\n".join(out) + "\n"


def squid_client_connections(ports: tuple[int, ...], proc: str = procfs.PROC) -> int | None:
    """Clients connected to Squid now, from our network namespace's socket
    tables (the health server shares Squid's); None when /proc cannot be read."""
    sockets = procfs.tcp_sockets(proc)
    return None if sockets is None else squid.count_established(sockets, ports)


def families(state: Published | None, now: float, squid_up: bool, sample: SquidSample | None,
             health: dict[str, float]) -> list[Family]:
    """Every metric family, in a stable order."""
    return [*supervisor_families(state or Published(state=None), now),
            *health_families(health),
            *squid_families(squid_up, sample)]


def supervisor_families(state: Published, now: float) -> list[Family]:
    """What the supervisor published; a family whose value is unknown is left out."""
    current = Family("cephaloproxy_state", "gauge",
                     "Supervisor state: 1 for the current state, 0 for the others.")
    for name in State:
        current.add(1 if name is state.state else 0, state=name.value)
    out = [
        current,
        Family("cephaloproxy_build_info", "gauge",
               "Versions of cephaloinit and Squid; the value is always 1.")
        .add(1, version=state.version or "", squid_version=state.squid_version or ""),
        Family("cephaloproxy_ready", "gauge",
               "1 while the supervisor reports RUNNING and ready (not reloading or draining).")
        .add(1 if state.state is State.RUNNING and state.ready else 0),
    ]
    if state.started_at is not None:
        out.append(Family("cephaloproxy_start_time_seconds", "gauge",
                          "Start time of the supervisor, seconds since the Unix epoch.")
                   .add(state.started_at))
        out.append(Family("cephaloproxy_uptime_seconds", "gauge",
                          "Seconds since the supervisor started.").add(state.uptime(now)))
    if state.health_restarts is not None:
        out.append(Family("cephaloproxy_health_restarts_total", "counter",
                          "Times the supervisor restarted the health server.")
                   .add(state.health_restarts))
    if state.squid_kid_restarts is not None:
        out.append(Family("cephaloproxy_squid_kid_restarts_total", "counter",
                          "Times Squid's master restarted one of its SMP kids (workers > 1).")
                   .add(state.squid_kid_restarts))
    return out


def health_families(health: dict[str, float]) -> list[Family]:
    """This health server process's own figures."""
    requests = Family("cephaloproxy_health_requests_total", "counter",
                      "Requests answered by this health server process, by status code.")
    for code, count in sorted(health.get("requests", {}).items()):
        requests.add(count, code=str(code))
    return [
        requests,
        Family("cephaloproxy_health_connections", "gauge",
               "Connections open to this health server.").add(health.get("connections", 0)),
        Family("cephaloproxy_health_connections_evicted_total", "counter",
               "Connections closed early because the connection limit was reached.")
        .add(health.get("evicted", 0)),
    ]


def squid_families(squid_up: bool, sample: SquidSample | None) -> list[Family]:
    """Squid's process, its connections, and what its cache manager answered."""
    reached = sample is not None and sample.counters is not None
    out = [
        Family("cephaloproxy_squid_up", "gauge",
               "1 while the Squid process published by the supervisor is alive.")
        .add(1 if squid_up else 0),
        Family("cephaloproxy_squid_cachemgr_up", "gauge",
               "1 when Squid's cache manager answered the last fetch.").add(1 if reached else 0),
    ]
    if sample is not None and sample.connections is not None:
        out.append(Family("cephaloproxy_squid_client_connections", "gauge",
                          "Established TCP connections to Squid's port.").add(sample.connections))
    if reached:
        for key, (name, text, scale) in SQUID_COUNTERS.items():
            if key in sample.counters:
                out.append(Family(name, "counter", text).add(sample.counters[key] * scale))
        if sample.info is not None:
            out.extend(info_families(sample.info))
    return out


def info_families(info: Info) -> list[Family]:
    """Descriptors, hit ratios and median service times: Squid's info page."""
    out = []
    if info.fds_open is not None:
        out.append(Family("cephaloproxy_squid_open_fds", "gauge",
                          "File descriptors Squid has open.").add(info.fds_open))
    if info.fds_max is not None:
        out.append(Family("cephaloproxy_squid_max_fds", "gauge",
                          "File descriptors Squid may open (max_filedescriptors).").add(info.fds_max))
    if info.hit_ratios:
        out.append(_by_type_and_window(
            "cephaloproxy_squid_hit_ratio", "Share of requests (or of bytes sent) answered "
            "from the cache, over the last 5 or 60 minutes, 0 to 1.", info.hit_ratios))
    if info.medians:
        out.append(_by_type_and_window(
            "cephaloproxy_squid_median_service_time_seconds", "Median service time over the "
            "last 5 or 60 minutes: all HTTP requests, cache hits, cache misses, DNS lookups.",
            info.medians))
    return out


def _by_type_and_window(name: str, text: str, values: dict[tuple[str, str], float]) -> Family:
    family = Family(name, "gauge", text)
    for (kind, window), value in sorted(values.items()):
        family.add(value, type=kind, window=window)
    return family
