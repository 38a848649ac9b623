"""Benchmark of the health server child: probe latency, throughput, memory.

Starts ``cephaloinit health-server`` on a free port with a published RUNNING
state (this process plays the supervisor; "Squid" is a small Python process
that accepts connections and answers the cache manager's counters page), then
measures:

  1. sequential probes: one new connection per GET /health, p50/p99 latency;
  2. 50 concurrent clients for a few seconds: requests/s and p50/p99 latency;
  3. the same for /ready (it also connects to "Squid", result shared for 1 s);
  4. probe latency while 200 slow clients hold connections open;
  5. ``cephaloinit check`` end to end (a new interpreter each time);
  6. the child's RSS (VmRSS, and VmHWM, its peak) from /proc.

The load generator is a single-threaded selectors client in this process, so
with few CPUs it competes with the server: the figures are a lower bound.

    python benchmarks/health.py [--seconds 5] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import select
import selectors
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from cephaloinit import procfs, statefile  # noqa: E402
from cephaloinit.states import State  # noqa: E402


FAKE_SQUID = r"""
import socket, threading
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(4096)
print(sock.getsockname()[1], flush=True)
BODY = b"client_http.requests = 12\nclient_http.hits = 3\nclient_http.kbytes_out = 10\ncpu_time = 0.5\n"
def answer(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY)
while True:
    conn, _ = sock.accept()
    threading.Thread(target=answer, args=(conn,), daemon=True).start()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def p50_p99(seconds: list[float]) -> str:
    """A row's value; a loaded machine can let no request finish in the time given."""
    if not seconds:
        return "none finished"
    return f"{percentile(seconds, .5) * 1e3:.2f} / {percentile(seconds, .99) * 1e3:.2f} ms"


def one_get(port: int, path: str = "/health") -> float:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    elapsed = time.perf_counter() - start
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    return elapsed


def sequential(port: int, count: int, path: str = "/health") -> list[float]:
    return [one_get(port, path) for _ in range(count)]


def concurrent(port: int, path: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    """``clients`` connections in flight at all times for ``seconds``."""
    request = f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    failures = 0

    def start_one():
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE, [time.perf_counter(), b""])

    for _ in range(clients):
        start_one()
    end = time.perf_counter() + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        for key, events in selector.select(end - now):
            sock, data = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                sock.send(request)
                selector.modify(sock, selectors.EVENT_READ, data)
                continue
            try:
                chunk = sock.recv(65536)
            except ConnectionError:
                chunk = b""
                failures += 1
            if chunk:
                data[1] += chunk
                continue
            selector.unregister(sock)
            sock.close()
            if data[1].startswith(b"HTTP/1.1 200 "):
                latencies.append(time.perf_counter() - data[0])
            else:
                failures += 1
            start_one()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    selector.close()
    return failures, latencies


def rss_kib(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM (the peak), in KiB."""
    fields = procfs.status(pid)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load phase")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=2000)
    options = parser.parse_args()

    run_dir = tempfile.mkdtemp(prefix="cephaloproxy-bench-")
    squid = subprocess.Popen([sys.executable, "-c", FAKE_SQUID], stdout=subprocess.PIPE)
    squid_port = int(squid.stdout.readline())
    config = os.path.join(run_dir, "squid.conf")
    with open(config, "w") as file:
        file.write("http_port 3128\n")
    statefile.publish(os.path.join(run_dir, "cephaloinit.state"), statefile.Published(
        state=State.RUNNING, ready=True, supervisor_pid=os.getpid(), squid_pid=squid.pid,
        health_restarts=0, started_at=time.time(), state_since=time.time(),
        squid_port=squid_port, config=config, cache_dirs=(run_dir,), version="bench",
    ))
    port = free_port()
    read_end, write_end = os.pipe()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": REPO, "SQUID_RUN_DIR": run_dir,
           "HEALTH_PORT": str(port), "HEALTH_BIND": "127.0.0.1", "NOTIFY_FD": str(write_end)}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "cephaloinit", "health-server"], env=env,
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL)
    os.close(write_end)
    assert select.select([read_end], [], [], 10)[0], "the server did not notify readiness"
    assert os.read(read_end, 100) == b"READY=1\n"
    startup = time.perf_counter() - started
    rows: list[tuple[str, str]] = []
    try:
        rss_idle, _ = rss_kib(server.pid)
        rows.append(("start-up to READY=1 (interpreter included)", f"{startup * 1000:.0f} ms"))
        rows.append(("RSS idle", f"{rss_idle / 1024:.1f} MiB"))
        sequential(port, 200)  # warm up
        seq = sequential(port, options.sequential)
        rows.append((f"sequential GET /health x{options.sequential}: p50 / p99",
                     p50_p99(seq)))
        for path in ("/health", "/ready", "/metrics"):
            failures, lat = concurrent(port, path, options.concurrency, options.seconds)
            rows.append((f"{options.concurrency} concurrent GET {path}: requests/s",
                         f"{len(lat) / options.seconds:.0f}" + (f" ({failures} failed)" if failures else "")))
            rows.append((f"{options.concurrency} concurrent GET {path}: p50 / p99",
                         p50_p99(lat)))
        slow = []
        for _ in range(200):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
            slow.append(client)
        under = sequential(port, 200)
        rows.append(("GET /health with 200 slow clients connected: p50 / p99",
                     p50_p99(under)))
        for client in slow:
            client.close()
        checks = []
        for _ in range(20):
            begin = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "cephaloinit", "check"], env=env, cwd=REPO)
            checks.append(time.perf_counter() - begin)
            assert result.returncode == 0
        rows.append(("`cephaloinit check` end to end x20: p50 / max",
                     f"{percentile(checks, .5) * 1e3:.1f} / {max(checks) * 1e3:.1f} ms"))
        rss, hwm = rss_kib(server.pid)
        rows.append(("RSS after the load / peak (VmHWM)", f"{rss / 1024:.1f} / {hwm / 1024:.1f} MiB"))
    finally:
        server.terminate()
        server.wait(10)
        squid.kill()
        squid.wait(10)
        shutil.rmtree(run_dir, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load generator in the same machine")
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
