"""The goals of issue 7, each from the medians: met or missed, and the figures.

A goal whose samples are missing (a row not measured) is left out.
"""

from __future__ import annotations

from benchmarks.samples import Samples, median_of
from benchmarks.table import OURS, ratio, row

MB_PER_MIB = 1.048576


def verdict(name: str, ok: bool, detail: str) -> str:
    return f"- {'MET ' if ok else 'MISSED':6s} {name}: {detail}"


def startup(samples: Samples, peers: tuple[str, ...], host: str) -> list[str]:
    floor, ready = median_of(samples, "start_proxy", "tini"), median_of(samples, "start_ready", OURS)
    if floor is None or ready is None:
        return []
    everything = max(ready, median_of(samples, "start_proxy", OURS) or 0)
    sleeper = floor + 2000
    return [
        verdict("start-up ≤ tini floor + 100 ms", everything - floor <= 100,
                f"cephaloinit {everything:.0f} ms to proxy and /ready, tini+Squid {floor:.0f} ms: "
                f"+{everything - floor:.0f} ms, ratio {everything / floor:.2f}"),
        verdict("start-up ≥ 10× faster than a supervisor sleeping 2 s", sleeper / everything >= 10,
                f"such a supervisor needs ≥ {sleeper:.0f} ms (tini floor + 2000, derived): "
                f"{sleeper / everything:.1f}× faster"),
    ]


def idle_stop(samples: Samples, peers: tuple[str, ...], host: str) -> list[str]:
    stop_ms = median_of(samples, "stop_idle", OURS)
    if stop_ms is None:
        return []
    codes = sorted(set(samples.get("stop_idle_code", {}).get(OURS, [])))
    best = min(median_of(samples, "stop_idle", peer) for peer in peers)
    return [verdict("idle stop ≤ 2 s with exit 0", stop_ms <= 2000 and codes == [0],
                    f"{stop_ms:.0f} ms, exit codes {codes}; best peer {best:.0f} ms, "
                    f"ratio {ratio(samples, row('stop_idle'), peers)}")]


def crash(samples: Samples, peers: tuple[str, ...], host: str) -> list[str]:
    crash_ms = median_of(samples, "crash", OURS)
    if crash_ms is None:
        return []
    return [verdict("crash detection ≤ 100 ms", crash_ms <= 100,
                    f"{crash_ms:.1f} ms; ratio to the best peer {ratio(samples, row('crash'), peers)}")]


def wakeups(samples: Samples, peers: tuple[str, ...], host: str) -> list[str]:
    switches = samples.get("idle_ctxt", {}).get(OURS)
    if not switches:
        return []
    return [verdict("zero idle wakeups", max(switches) == 0,
                    f"PID 1 voluntary context switches: {sorted(switches)}")]


def rss(samples: Samples, peers: tuple[str, ...], host: str) -> list[str]:
    mib = median_of(samples, "rss_pid1", OURS)
    if mib is None:
        return []
    return [verdict("PID 1 RSS ≤ 15 MB", mib * MB_PER_MIB <= 15,
                    f"{mib:.1f} MiB = {mib * MB_PER_MIB:.1f} MB; "
                    f"ratio to the best peer {ratio(samples, row('rss_pid1'), peers)}")]


def throughput(samples: Samples, peers: tuple[str, ...], host: str) -> list[str]:
    rps, bare = median_of(samples, "proxy_rps", OURS), median_of(samples, "proxy_rps", host)
    if rps is None or not bare:
        return []
    peer = max(median_of(samples, "proxy_rps", p) or 0 for p in peers)
    return [verdict("proxy throughput ≥ 0.95× bare Squid", rps / bare >= 0.95,
                    f"{rps:,.0f} req/s vs {bare:,.0f} on the host: {rps / bare:.2f}×; "
                    f"vs the best containerised peer {rps / peer:.2f}×")]


GOALS = (startup, idle_stop, crash, wakeups, rss, throughput)


def goals(samples: Samples, peers: tuple[str, ...], host: str) -> str:
    """One line per goal: MET or MISSED, the medians, the ratio to the best peer."""
    return "\n".join(line for goal in GOALS for line in goal(samples, peers, host))
