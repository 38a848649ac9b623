"""The side-by-side table: one row per measure, one column per system, the
median and (min–max) in each cell, and our median over the best peer's."""

from __future__ import annotations

import dataclasses
import statistics

from benchmarks.samples import Samples, median_of, numbers

OURS = "cephaloinit"  # the column the ratio is about


@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    title: str
    unit: str
    better: str  # "low", "high", or "" (no ratio)
    digits: int = 0


ROWS = (
    Row("start_call", "`podman start` call returns (engine overhead)", "ms", "low"),
    Row("start_proxy", "start → proxy answers (200 through it)", "ms", "low"),
    Row("start_ready", "start → /ready 200", "ms", "low"),
    Row("stop_idle", "stop, idle", "ms", "low"),
    Row("stop_idle_code", "stop, idle: exit code", "", ""),
    Row("stop_busy", "stop, download in flight", "ms", "low"),
    Row("stop_busy_code", "stop, download in flight: exit code", "", ""),
    Row("stop_busy_complete", "stop, download in flight: download complete", "", ""),
    Row("crash", "crash detection: kill -9 Squid → PID 1 exits", "ms", "low", 1),
    Row("crash_code", "crash: exit code", "", ""),
    Row("rss_pid1", "PID 1 RSS", "MiB", "low", 1),
    Row("rss_all", "container RSS (sum of its processes)", "MiB", "low", 1),
    Row("idle_ctxt", "PID 1 voluntary context switches, idle", "", "low"),
    Row("reap", "reaping: orphans released → all reaped", "ms", "low"),
    Row("health_p50", "health: GET /health, 50 clients, p50", "ms", "", 2),
    Row("health_p99", "health: GET /health, 50 clients, p99", "ms", "", 2),
    Row("health_rps", "health: GET /health, 50 clients", "req/s", ""),
    Row("proxy_rps", "proxy throughput, ab -k -c 50, cache hit", "req/s", "high"),
    Row("image_size", "image size", "MB", "low", 1),
)


def row(key: str, rows: tuple[Row, ...] = ROWS) -> Row:
    return next(r for r in rows if r.key == key)


def number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def spread(values: list, digits: int) -> str:
    """The median, then "(all)" when every value is the same, else "(min–max)"."""
    median = number(statistics.median(values), digits)
    if len(values) == 1:
        return median
    if min(values) == max(values):
        return f"{median} (all)"
    return f"{median} ({number(min(values), digits)}–{number(max(values), digits)})"


def cell(values: list, digits: int) -> str:
    """Numbers as their spread; words (yes, "3 left") listed once each, after."""
    if not values:
        return "n/a"
    found = numbers(values)
    words = ", ".join(sorted({str(v) for v in values if not isinstance(v, (int, float))}))
    if not found:
        return words
    return spread(found, digits) + (f" + {words}" if words else "")


def ratio(samples: Samples, row: Row, peers: tuple[str, ...]) -> str:
    """Our median over the best peer's, "" where the row has no better side or
    a median is missing; "—" when the best peer's is 0 and ours is not."""
    ours = median_of(samples, row.key, OURS)
    medians = [m for peer in peers if (m := median_of(samples, row.key, peer)) is not None]
    if not row.better or ours is None or not medians:
        return ""
    best = min(medians) if row.better == "low" else max(medians)
    if best == 0:
        return "—" if ours else "1.00"
    return f"{ours / best:.2f}"


def table(samples: Samples, columns: list[tuple[str, str]], peers: tuple[str, ...],
          rows: tuple[Row, ...] = ROWS) -> str:
    """A Markdown table of the rows that have samples; columns are (key, title)."""
    header = ["measure", *[title for _, title in columns], f"{OURS} ÷ best peer"]
    lines = []
    for r in rows:
        if r.key in samples:
            title = f"{r.title} ({r.unit})" if r.unit else r.title
            cells = [cell(samples[r.key].get(key, []), r.digits) for key, _ in columns]
            lines.append([title, *cells, ratio(samples, r, peers)])
    return markdown(header, lines)


def markdown(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(x) for x in column) for column in zip(header, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join(out)
