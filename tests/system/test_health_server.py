"""The health server as a real child process: endpoints for each published state,
the readiness notification, hostile clients, and SIGTERM.

The server is started the way the supervisor starts it: ``cephaloinit
health-server`` with NOTIFY_FD naming a pipe (os.pipe + pass_fds), a temporary
SQUID_RUN_DIR, and a state file written as the supervisor writes it. "Squid" is a
small Python process that listens on a port and answers the cache manager's
counters page (or, in ``silent`` mode, accepts and never answers).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest


from ..ports import free_port
from ..statefiles import write_state
from .conftest import REPO

PY = sys.executable

FAKE_SQUID = r"""
import socket, sys, threading
mode = sys.argv[1]
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(64)
print(sock.getsockname()[1], flush=True)
BODY = b"sample_time = 1.0 (x)\nclient_http.requests = 12\nclient_http.hits = 3\nclient_http.errors = 1\nclient_http.kbytes_in = 2\nclient_http.kbytes_out = 10\nserver.all.requests = 9\n"
held = []
def answer(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        if b"/squid-internal-mgr/counters" in data:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + BODY)
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\n\r\n")
while True:
    conn, _ = sock.accept()
    if mode == "silent":
        held.append(conn)
    else:
        threading.Thread(target=answer, args=(conn,), daemon=True).start()
"""


class FakeSquid:
    def __init__(self, mode: str = "answer"):
        self.process = subprocess.Popen([PY, "-c", FAKE_SQUID, mode], stdout=subprocess.PIPE)
        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        assert ready, "fake squid did not start"
        self.port = int(self.process.stdout.readline())
        self.pid = self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.process.stdout.close()


class HealthServer:
    def __init__(self, tmp_path, env: dict | None = None, host: str = "127.0.0.1"):
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.log_path = tmp_path / "health.log"
        read_end, write_end = os.pipe()
        full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, "SQUID_RUN_DIR": str(self.run_dir),
                    "HEALTH_PORT": str(self.port), "HEALTH_BIND": host,
                    "NOTIFY_FD": str(write_end), **(env or {})}
        full_env.update({k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")})
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([PY, "-m", "cephaloinit", "health-server"], env=full_env,
                                            stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_end,),
                                            cwd=REPO)
        os.close(write_end)
        self.notify_fd = read_end

    def wait_ready(self, timeout: float = 10) -> bytes:
        """What the server wrote on its notification pipe, up to EOF."""
        received = b""
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.notify_fd], [], [], max(0, deadline - time.monotonic()))
            assert ready, f"no readiness notification; log: {self.log()}"
            chunk = os.read(self.notify_fd, 100)
            if not chunk:
                return received
            received += chunk

    def publish(self, state: dict | None) -> None:
        path = str(self.run_dir / "cephaloinit.state")
        if state is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            write_state(path, state)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        os.close(self.notify_fd)


def get(port: int, path: str, timeout: float = 5.0, host: str = "127.0.0.1",
        raw: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request on a new connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.sendall(raw if raw is not None else f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def timed_get(port, path="/health"):
    start = time.monotonic()
    status, body = get(port, path)
    return status, body, time.monotonic() - start


@pytest.fixture
def squid():
    fake = FakeSquid()
    yield fake
    fake.stop()


@pytest.fixture
def health(tmp_path):
    server = HealthServer(tmp_path)
    assert server.wait_ready() == b"READY=1\n"
    yield server
    server.stop()


def state(squid: FakeSquid, tmp_path, **changes) -> dict:
    conf = tmp_path / "squid.conf"
    conf.write_text("http_port 3128\n")
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    published = {
        "state": "RUNNING", "ready": True, "reason": "", "supervisor_pid": os.getpid(),
        "squid_pid": squid.pid, "health_pid": None, "health_restarts": 1,
        "started_at": time.time() - 30, "state_since": time.time(), "squid_port": squid.port,
        "config": str(conf), "cache_dirs": [str(cache)], "version": "0.1.0", "squid_version": "5.7",
    }
    published.update(changes)
    # The supervisor publishes where to ask the cache manager: Squid's port on loopback.
    if isinstance(published.get("squid_port"), int):
        published.setdefault("ports", [published["squid_port"]])
        published.setdefault("cachemgr_host", "127.0.0.1")
        published.setdefault("cachemgr_port", published["squid_port"])
    return published


# -- start-up and stop ---------------------------------------------------------------------
def test_readiness_notification_arrives_once_listening(tmp_path):
    server = HealthServer(tmp_path)
    try:
        assert server.wait_ready() == b"READY=1\n"  # then EOF: the server closed the pipe
        assert get(server.port, "/health")[0] == 503  # listening at once (no state yet)
    finally:
        server.stop()


def test_sigterm_exits_0(health):
    assert get(health.port, "/health")[0] == 503
    health.process.send_signal(signal.SIGTERM)
    assert health.process.wait(10) == 0
    assert "Health server stopped on SIGTERM" in health.log()


def test_sigterm_with_clients_connected_exits_0(health):
    clients = [socket.create_connection(("127.0.0.1", health.port)) for _ in range(20)]
    get(health.port, "/health")
    health.process.send_signal(signal.SIGTERM)
    assert health.process.wait(10) == 0
    for client in clients:
        client.close()


def test_port_in_use_exits_1_with_one_line(tmp_path, health):
    (tmp_path / "second").mkdir()
    second = HealthServer(tmp_path / "second", env={"HEALTH_PORT": str(health.port)})
    try:
        assert second.process.wait(10) == 1
        assert second.wait_ready() == b""  # never notified
        lines = second.log().splitlines()
        assert len(lines) == 1
        assert lines[0].endswith(f"[ERROR] Health server cannot listen on 127.0.0.1:{health.port}: "
                                 "Address already in use")
    finally:
        second.stop()


def test_ipv6_bind(tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = HealthServer(tmp_path, env={"LOG_LEVEL": "DEBUG"}, host="::1")
    try:
        assert server.wait_ready() == b"READY=1\n"
        assert get(server.port, "/health", host="::1")[0] == 503
        assert "listening on [::1]:" in server.log()
    finally:
        server.stop()


# -- each endpoint for each published state ----------------------------------------------
CASES = [
    # (name, state changes or None for no state file, /health, /ready, /health or /ready body)
    ("no state", None, 503, 503, b"no supervisor state published yet\n"),
    ("INITIALIZING", {"state": "INITIALIZING", "squid_pid": None}, 200, 503, b"not ready: INITIALIZING\n"),
    ("VALIDATING", {"state": "VALIDATING", "squid_pid": None}, 200, 503, b"not ready: VALIDATING\n"),
    ("STARTING_HEALTH", {"state": "STARTING_HEALTH", "squid_pid": None}, 200, 503,
     b"not ready: STARTING_HEALTH\n"),
    ("STARTING_SQUID", {"state": "STARTING_SQUID", "reason": "waiting for Squid to listen"}, 200, 503,
     b"not ready: STARTING_SQUID: waiting for Squid to listen\n"),
    ("RUNNING", {}, 200, 200, b"READY\n"),
    ("RUNNING reloading", {"ready": False, "reason": "reloading"}, 200, 503, b"not ready: reloading\n"),
    ("RUNNING draining", {"ready": False, "reason": "draining before shutdown"}, 200, 503,
     b"not ready: draining before shutdown\n"),
    ("RUNNING squid dead", {"squid_pid": "DEAD"}, 503, 503, b"is not running\n"),
    ("RUNNING config unreadable", {"config": "/nonexistent/squid.conf"}, 200, 503,
     b"config /nonexistent/squid.conf is not readable\n"),
    ("RUNNING cache dir gone", {"cache_dirs": ["/nonexistent/cache"]}, 200, 503,
     b"cache directory /nonexistent/cache is not writable\n"),
    ("SHUTTING_DOWN", {"state": "SHUTTING_DOWN", "ready": False}, 200, 503, b"not ready: SHUTTING_DOWN\n"),
    ("ERROR", {"state": "ERROR", "reason": "Squid exited with code 1"}, 503, 503,
     b"supervisor in ERROR: Squid exited with code 1\n"),
    ("EXITED", {"state": "EXITED"}, 503, 503, b"supervisor has exited\n"),
    ("supervisor dead", {"supervisor_pid": "DEAD"}, 503, 503, b"is not running\n"),
]


def test_each_endpoint_for_each_published_state(health, squid, tmp_path):
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()  # a PID that existed and is gone now
    for name, changes, health_code, ready_code, body in CASES:
        if changes is None:
            published = None
        else:
            published = state(squid, tmp_path, **changes)
            for key in ("squid_pid", "supervisor_pid"):
                if published[key] == "DEAD":
                    published[key] = dead.pid
        health.publish(published)
        got_health, health_body = get(health.port, "/health")
        got_ready, ready_body = get(health.port, "/ready")
        assert (got_health, got_ready) == (health_code, ready_code), name
        assert (health_body if health_code == 503 else ready_body).endswith(body), (name, health_body, ready_body)
        if health_code == 200:
            assert health_body == b"OK\n", name
        # /status and /metrics answer 200 in every state
        status, status_body = get(health.port, "/status")
        document = json.loads(status_body)
        assert status == 200 and document["state"] == (published or {}).get("state"), name
        status, metrics_body = get(health.port, "/metrics")
        assert status == 200, name
        current = (published or {}).get("state")
        if current:
            assert f'cephaloproxy_state{{state="{current}"}} 1\n'.encode() in metrics_body, name


def test_head_and_unknown_paths_and_methods(health, squid, tmp_path):
    health.publish(state(squid, tmp_path))
    assert get(health.port, "", raw=b"HEAD /ready HTTP/1.0\r\n\r\n") == (200, b"")
    assert get(health.port, "/nope")[0] == 404
    assert get(health.port, "", raw=b"POST /health HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")[0] == 405


# -- metrics and the cache manager -------------------------------------------------------------
def test_metrics_include_squid_counters_from_the_cache_manager(health, squid, tmp_path):
    health.publish(state(squid, tmp_path))
    status, body = get(health.port, "/metrics")
    assert status == 200
    text = body.decode()
    assert "\ncephaloproxy_squid_cachemgr_up 1\n" in text
    assert "\ncephaloproxy_squid_client_http_requests_total 12\n" in text
    assert "\ncephaloproxy_squid_client_http_sent_bytes_total 10240\n" in text
    assert "\ncephaloproxy_squid_up 1\n" in text
    assert "\ncephaloproxy_health_restarts_total 1\n" in text
    assert "\ncephaloproxy_squid_client_connections " in text


def test_metrics_when_the_cache_manager_cannot_be_reached(health, squid, tmp_path):
    health.publish(state(squid, tmp_path, squid_port=free_port()))
    status, body = get(health.port, "/metrics")
    assert status == 200
    assert b"\ncephaloproxy_squid_cachemgr_up 0\n" in body
    assert b'\ncephaloproxy_state{state="RUNNING"} 1\n' in body
    assert b"client_http_requests_total" not in body
    assert "Squid cache manager not reachable" in health.log()


def test_a_hanging_cache_manager_never_delays_a_probe(health, tmp_path):
    silent = FakeSquid("silent")
    try:
        health.publish(state(silent, tmp_path))
        scrape = socket.create_connection(("127.0.0.1", health.port))
        scrape.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        started = time.monotonic()
        for _ in range(5):
            status, _, elapsed = timed_get(health.port, "/health")
            assert status == 200 and elapsed < 0.5
        scrape.settimeout(10)
        answer = b""
        while chunk := scrape.recv(65536):
            answer += chunk
        scrape.close()
        assert b"\ncephaloproxy_squid_cachemgr_up 0\n" in answer
        assert 1.5 < time.monotonic() - started < 5  # the cache manager's 2 s deadline
    finally:
        silent.stop()


# -- hostile clients -----------------------------------------------------------------------
def test_garbage_and_oversize_heads(health, squid, tmp_path):
    health.publish(state(squid, tmp_path))
    assert get(health.port, "", raw=os.urandom(64).replace(b"\n", b"") + b"\r\n\r\n")[0] == 400
    tls = socket.create_connection(("127.0.0.1", health.port))  # a TLS hello: no newline, ever
    tls.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(160).replace(b"\n", b""))
    assert timed_get(health.port)[2] < 0.5
    tls.close()
    big = b"GET /health HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 10000 + b"\r\n\r\n"
    assert get(health.port, "", raw=big)[0] == 431
    assert get(health.port, "/health")[0] == 200


def test_200_slow_clients_never_delay_a_probe(health, squid, tmp_path):
    health.publish(state(squid, tmp_path))
    slow = []
    for i in range(200):
        client = socket.create_connection(("127.0.0.1", health.port))
        client.sendall(b"GET /health HTTP/1.1\r\nX-Slow: " if i % 2 else b"")  # half never send a byte
        slow.append(client)
    try:
        latencies = []
        for _ in range(20):
            status, _, elapsed = timed_get(health.port, "/health")
            assert status == 200
            latencies.append(elapsed)
        assert max(latencies) < 0.5, latencies
        result = subprocess.run([PY, "-m", "cephaloinit", "check", "--timeout", "2"], cwd=REPO,
                                env={"PATH": os.environ["PATH"], "PYTHONPATH": REPO,
                                     "HEALTH_PORT": str(health.port)}, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
    finally:
        for client in slow:
            client.close()


def test_half_closed_sockets_are_closed_or_answered(health, squid, tmp_path):
    health.publish(state(squid, tmp_path))
    empty = []
    for _ in range(50):
        client = socket.create_connection(("127.0.0.1", health.port))
        client.shutdown(socket.SHUT_WR)  # nothing sent, nothing more to come
        empty.append(client)
    for client in empty:
        client.settimeout(5)
        assert client.recv(100) == b""  # closed by the server, not at a timeout
        client.close()
    partial = socket.create_connection(("127.0.0.1", health.port))
    partial.sendall(b"GET /health HTTP/1.1\r\nHo")
    partial.shutdown(socket.SHUT_WR)
    partial.settimeout(5)
    assert partial.recv(100).startswith(b"HTTP/1.1 400 ")
    partial.close()
    assert timed_get(health.port)[2] < 0.5


def test_more_connections_than_the_limit_evict_the_oldest(health, squid, tmp_path):
    health.publish(state(squid, tmp_path))
    idle = [socket.create_connection(("127.0.0.1", health.port)) for _ in range(300)]
    try:
        status, _, elapsed = timed_get(health.port)
        assert status == 200 and elapsed < 0.5
        idle[0].settimeout(5)
        assert idle[0].recv(10) == b""  # the oldest went first
        _, body = get(health.port, "/metrics")
        assert b"\ncephaloproxy_health_connections_evicted_total 0\n" not in body
    finally:
        for client in idle:
            client.close()


def test_idle_connection_is_closed_after_the_request_timeout(health):
    from cephaloinit.health.connections import REQUEST_TIMEOUT

    client = socket.create_connection(("127.0.0.1", health.port))
    client.settimeout(REQUEST_TIMEOUT + 5)
    started = time.monotonic()
    assert client.recv(10) == b""
    assert REQUEST_TIMEOUT - 0.5 < time.monotonic() - started < REQUEST_TIMEOUT + 2
    client.close()


# -- the probe client against the real server ------------------------------------------------
def test_check_command_exit_codes_and_reason(health, squid, tmp_path):
    health.publish(state(squid, tmp_path, ready=False, reason="reloading"))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, "HEALTH_PORT": str(health.port)}
    ok = subprocess.run([PY, "-m", "cephaloinit", "check"], cwd=REPO, env=env, capture_output=True, timeout=30)
    assert (ok.returncode, ok.stderr) == (0, b"")
    url = f"http://127.0.0.1:{health.port}/ready"
    bad = subprocess.run([PY, "-m", "cephaloinit", "check", "--url", url], cwd=REPO, env=env,
                         capture_output=True, timeout=30)
    assert bad.returncode == 1
    assert bad.stderr == f"cephaloinit check: {url}: HTTP 503: not ready: reloading\n".encode()
