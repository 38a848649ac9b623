"""The health server in-process: its loop pumped by the test, real loopback sockets,
the state supplied by the test. Every status code the server sends, and its limits."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from cephaloinit import statefile
from cephaloinit.health import connections, http, outbound, server
from cephaloinit.logs import Logger
from cephaloinit.loop import Loop
from cephaloinit.settings import Settings


class Harness:
    def __init__(self, state):
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK)
        self.loop = Loop(self.wakeup_r, lambda signums: None)
        self.state = state
        self.server = server.Server(Settings(health_bind="127.0.0.1", health_port=0),
                                    Logger("ERROR"), self.loop, read_state=self.published)
        self.address = self.server.listen()

    def published(self):
        """The test's state as the server reads it: through the state file's parser."""
        return None if self.state is None else statefile.from_json(json.dumps(self.state))

    def pump(self, until, timeout=5.0):
        """Run the server's loop until ``until()`` is true (never blocks long)."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "condition not reached in time"
            self.loop.call_later(0.005, lambda: None)
            self.loop.run_once()

    def connect(self) -> socket.socket:
        client = socket.create_connection(self.address)
        client.setblocking(False)
        return client

    def read_all(self, client) -> bytes:
        """Pump until the server has sent everything and half-closed."""
        received = bytearray()
        done = []

        def eof():
            while True:
                try:
                    chunk = client.recv(65536)
                except BlockingIOError:
                    return False
                except ConnectionResetError:
                    done.append("reset")
                    return True
                if not chunk:
                    return True
                received.extend(chunk)

        self.pump(eof)
        assert not done, "connection reset"
        return bytes(received)

    def exchange(self, raw: bytes) -> tuple[int, dict, bytes]:
        client = self.connect()
        client.sendall(raw)
        answer = self.read_all(client)
        client.close()
        return split(answer)

    def get(self, path, method="GET"):
        return self.exchange(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())

    def close(self):
        self.server.close_all()
        self.loop.close()
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)


def split(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
def squid_port():
    """A port that accepts connections (the kernel completes them; nobody reads)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def running(tmp_path, squid_port):
    conf = tmp_path / "squid.conf"
    conf.write_text("http_port 3128\n")
    return {
        "state": "RUNNING", "ready": True, "reason": "", "supervisor_pid": os.getpid(),
        "squid_pid": os.getpid(), "health_pid": None, "health_restarts": 0,
        "started_at": time.time() - 60, "state_since": time.time(), "squid_port": squid_port,
        "ports": [squid_port], "cachemgr_host": "127.0.0.1", "cachemgr_port": squid_port,
        "config": str(conf), "cache_dirs": [str(tmp_path)], "version": "0.1.0", "squid_version": "5.7",
    }


@pytest.fixture
def harness(running):
    h = Harness(running)
    yield h
    h.close()


# -- 200 and 503 ------------------------------------------------------------------
def test_health_200_ok(harness):
    status, headers, body = harness.get("/health")
    assert (status, body) == (200, b"OK\n")
    assert headers["Connection"] == "close" and headers["Content-Length"] == "3"


def test_ready_200_when_squid_port_listens(harness):
    assert harness.get("/ready")[::2] == (200, b"READY\n")


def test_ready_503_when_nothing_listens_on_squids_port(harness, closed_port):
    harness.state["squid_port"] = closed_port
    status, _, body = harness.get("/ready")
    assert status == 503
    assert body == f"Squid is not listening on port {closed_port}\n".encode()


def test_health_and_ready_503_without_state(harness):
    harness.state = None
    assert harness.get("/health")[::2] == (503, b"no supervisor state published yet\n")
    assert harness.get("/ready")[::2] == (503, b"no supervisor state published yet\n")


@pytest.mark.parametrize("data, reason", [
    (b"[1]", b"state file does not hold a JSON object"),
    (b"{not json", b"state file is not valid JSON"),
    (b'{"state": "RUNNING", "supervisor_pid": -1, "squid_pid": 0}', b"supervisor PID not published"),
])
def test_a_broken_state_file_is_a_503_on_every_check_and_200_elsewhere(harness, data, reason):
    harness.server.read_state = lambda: statefile.from_json(data)
    assert harness.get("/health")[::2] == (503, reason + b"\n")
    assert harness.get("/ready")[::2] == (503, reason + b"\n")
    status, _, body = harness.get("/status")
    assert status == 200 and json.loads(body)["squid_pid"] is None
    status, _, body = harness.get("/metrics")
    assert status == 200 and b"\ncephaloproxy_ready 0\n" in body


def test_ready_503_during_reload(harness):
    harness.state["ready"] = False
    harness.state["reason"] = "reloading the configuration"
    assert harness.get("/ready")[::2] == (503, b"not ready: reloading the configuration\n")
    assert harness.get("/health")[0] == 200


def test_head_has_no_body(harness):
    client = harness.connect()
    client.sendall(b"HEAD /health HTTP/1.0\r\n\r\n")
    answer = harness.read_all(client)
    client.close()
    assert answer.endswith(b"Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")


def test_status_json(harness):
    import json

    status, headers, body = harness.get("/status")
    document = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert document["state"] == "RUNNING" and document["health_pid"] == os.getpid()
    assert 59 < document["uptime_seconds"] < 120


def test_metrics_without_cachemgr_still_answers(harness):
    # The squid_port fixture accepts but never answers: the fetch must time out
    # without holding up the loop.
    server.CACHEMGR_TIMEOUT, saved = 0.2, server.CACHEMGR_TIMEOUT
    try:
        status, headers, body = harness.get("/metrics")
    finally:
        server.CACHEMGR_TIMEOUT = saved
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"\ncephaloproxy_squid_cachemgr_up 0\n" in body
    assert b'\ncephaloproxy_state{state="RUNNING"} 1\n' in body


class FakeCacheManager:
    """Answers /squid-internal-mgr/counters from a thread; counts the requests."""

    def __init__(self, answer: bytes):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.paths = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                self.paths.append(data.split(b" ")[1].decode())
                conn.sendall(self.answer)

    def close(self):
        self.sock.close()


def test_metrics_with_cachemgr_and_shared_fetch(harness):
    fake = FakeCacheManager(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                            b"client_http.requests = 41\nclient_http.kbytes_out = 2\n")
    harness.state["squid_port"] = harness.state["cachemgr_port"] = fake.port
    harness.server.cachemgr.ttl = 60  # however slow this machine, "again" is within the TTL
    try:
        clients = [harness.connect() for _ in range(3)]
        for client in clients:
            client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        bodies = [split(harness.read_all(client))[2] for client in clients]
        again = harness.get("/metrics")[2]  # within the TTL: served from the cache
    finally:
        fake.close()
    for body in bodies + [again]:
        assert b"\ncephaloproxy_squid_cachemgr_up 1\n" in body
        assert b"\ncephaloproxy_squid_client_http_requests_total 41\n" in body
        assert b"\ncephaloproxy_squid_client_http_sent_bytes_total 2048\n" in body
    assert fake.paths == ["/squid-internal-mgr/counters", "/squid-internal-mgr/info"]  # once


def test_cachemgr_denied_counts_as_down(harness):
    fake = FakeCacheManager(b"HTTP/1.1 403 Forbidden\r\n\r\n<html>Access Denied</html>")
    harness.state["squid_port"] = harness.state["cachemgr_port"] = fake.port
    try:
        body = harness.get("/metrics")[2]
    finally:
        fake.close()
    assert b"\ncephaloproxy_squid_cachemgr_up 0\n" in body


def test_handler_bug_is_a_500_not_a_crash(harness):
    def broken():
        raise RuntimeError("bug")

    harness.server.read_state = broken
    assert harness.get("/health")[0] == 500
    harness.server.read_state = harness.published
    assert harness.get("/health")[0] == 200


# -- 4xx -----------------------------------------------------------------------------
def test_unknown_path_404(harness):
    assert harness.get("/")[0] == 404
    assert harness.get("/health/")[0] == 404
    assert harness.get("/nope", method="POST")[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "TRACE"])
def test_other_methods_405_with_allow(harness, method):
    status, headers, _ = harness.get("/health", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_oversize_head_431(harness):
    status, _, body = harness.exchange(b"GET /health HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    assert status == 431 and b"8192" in body


def test_garbage_400(harness):
    assert harness.exchange(b"\x00\x01\x02 garbage\r\n\r\n")[0] == 400


def test_http2_505(harness):
    assert harness.exchange(b"GET /health HTTP/2.0\r\n\r\n")[0] == 505


def test_partial_request_then_half_close_is_400(harness):
    client = harness.connect()
    client.sendall(b"GET /health HTTP/1.1\r\nHost")
    client.shutdown(socket.SHUT_WR)
    status = split(harness.read_all(client))[0]
    client.close()
    assert status == 400


def test_request_split_in_single_bytes_is_answered(harness):
    client = harness.connect()
    for byte in b"GET /health HTTP/1.1\r\n\r\n":
        client.send(bytes([byte]))
        harness.loop.call_later(0.001, lambda: None)
        harness.loop.run_once()
    assert split(harness.read_all(client))[0] == 200
    client.close()


# -- limits ----------------------------------------------------------------------------
def test_connection_closed_when_the_client_closes_after_the_answer(harness):
    client = harness.connect()
    client.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    harness.read_all(client)
    assert len(harness.server.connections) == 1  # lingering, waiting for our close
    client.close()
    harness.pump(lambda: not harness.server.connections)


def test_silent_connection_is_closed_after_the_request_timeout(harness, monkeypatch):
    monkeypatch.setattr(connections, "REQUEST_TIMEOUT", 0.05)
    client = harness.connect()
    assert harness.read_all(client) == b""
    client.close()


def test_partial_request_gets_408_at_the_timeout(harness, monkeypatch):
    monkeypatch.setattr(connections, "REQUEST_TIMEOUT", 0.05)
    client = harness.connect()
    client.sendall(b"GET /hea")
    assert split(harness.read_all(client))[0] == 408
    client.close()


def test_at_the_limit_the_oldest_connection_is_closed(harness, monkeypatch):
    monkeypatch.setattr(connections, "MAX_CONNECTIONS", 4)
    idle = [harness.connect() for _ in range(4)]
    harness.pump(lambda: len(harness.server.connections) == 4)
    status = harness.get("/health")[0]
    assert status == 200
    assert harness.read_all(idle[0]) == b""  # the oldest was closed
    assert harness.server.evicted >= 1
    for client in idle:
        client.close()


def test_lingering_discards_a_flood_and_closes(harness, monkeypatch):
    monkeypatch.setattr(connections, "LINGER_MAX", 1000)
    client = harness.connect()
    client.sendall(b"GET /health HTTP/1.0\r\n\r\n" + b"x" * 5000)
    harness.pump(lambda: not harness.server.connections)
    client.close()


def test_slow_reader_gets_the_whole_answer(harness, monkeypatch):
    """An answer bigger than the socket buffers is written as the client reads."""
    payload = b"HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\n\r\n" + b"y" * 20_000_000
    monkeypatch.setattr(http, "response", lambda *args, **kwargs: payload)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    client.connect(harness.address)
    client.setblocking(False)
    client.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    harness.loop.run_once()
    connection = next(iter(harness.server.connections.values()))
    assert connection.phase == connections.WRITING  # the kernel buffers are full
    assert harness.read_all(client) == payload
    client.close()


# -- outbound ----------------------------------------------------------------------------
def test_http_get_rejects_an_answer_that_is_not_http(harness):
    fake = FakeCacheManager(b"SSH-2.0-OpenSSH_9.2\r\n")
    results = []
    try:
        outbound.http_get(harness.loop, "127.0.0.1", fake.port, "/x", 2.0, lambda *r: results.append(r))
        harness.pump(lambda: results)
    finally:
        fake.close()
    assert results == [(None, b"", "malformed HTTP response")]


def test_shared_runs_one_operation_per_key_and_caches_it(harness):
    started = []
    pending = []
    shared = outbound.Shared(harness.loop, 60, lambda key, done: (started.append(key), pending.append(done)))
    got = []
    shared.get("a", got.append)
    shared.get("a", got.append)
    assert started == ["a"] and got == []
    pending[0]("result")
    assert got == ["result", "result"]
    shared.get("a", got.append)
    assert started == ["a"] and got[-1] == "result"
    shared.get("b", got.append)
    assert started == ["a", "b"]
