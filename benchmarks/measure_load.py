"""Under load: proxy throughput (ab through each proxy, and through bare Squid
on the host once per iteration) and cephaloinit's health server."""

from __future__ import annotations

from benchmarks import health, load
from benchmarks.containers import HOST, Container, say
from benchmarks.samples import Samples, record

CLIENTS = 50


def measure_load(containers: list[Container], url: str, host_port: int, host_url: str,
                 seconds: float, samples: Samples) -> None:
    """One system after the other; bare Squid in the middle of the order."""
    for container in containers:
        record(samples, "proxy_rps", container.system.key, load.ab(container.proxy_port, url, seconds, CLIENTS))
        if container is containers[len(containers) // 2]:
            record(samples, "proxy_rps", HOST, load.ab(host_port, host_url, seconds, CLIENTS))
        if container.system.health:
            measure_health(container, seconds, samples)


def measure_health(container: Container, seconds: float, samples: Samples) -> None:
    """CLIENTS concurrent clients, one connection per GET /health."""
    failures, latencies = health.concurrent(container.health_port, "/health", CLIENTS, seconds)
    key = container.system.key
    record(samples, "health_rps", key, len(latencies) / seconds)
    record(samples, "health_p50", key, health.percentile(latencies, 0.5) * 1e3)
    record(samples, "health_p99", key, health.percentile(latencies, 0.99) * 1e3)
    if failures:
        say(f"{container.name}: {failures} failed health requests")
