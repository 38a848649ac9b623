"""``cephaloinit run`` as a true PID 1 with real Squid, as an arbitrary UID in group 0."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

from cephaloinit import procfs

from .. import proctree
from ..ports import free_port
from .conftest import REPO, UNPRIVILEGED_UID, poll

SQUID = shutil.which("squid") or "/usr/sbin/squid"
CERTGEN = "/usr/lib/squid/security_file_certgen"

if not os.path.exists(SQUID):
    pytest.skip("needs Squid: apt-get install squid-openssl", allow_module_level=True)

pytestmark = pytest.mark.timeout(90)


class Origin(http.server.BaseHTTPRequestHandler):
    """/ answers at once; /slow/N sends N chunks of 1 KiB, one every 0.1 s."""

    protocol_version = "HTTP/1.1"
    # Set when a /slow/ answer begins: Squid has read the client's request and
    # forwarded it, so a stop from then on finds the download in flight (a
    # connection merely established may still sit in the listen backlog,
    # which Squid's stop resets).
    sending = threading.Event()

    def do_GET(self):
        if self.path.startswith("/slow/"):
            chunks = int(self.path.rsplit("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Length", str(chunks * 1024))
            self.end_headers()
            Origin.sending.set()
            for _ in range(chunks):
                self.wfile.write(b"x" * 1024)
                self.wfile.flush()
                time.sleep(0.1)  # the origin is slow on purpose
            return
        body = b"hello from the origin\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Proxy:
    """Directories laid out like the image's: root-owned, group 0, group-writable."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="cephaloproxy-")
        os.chmod(self.root, 0o755)
        self.squid_port = free_port()
        self.health_port = free_port()
        self.env = {
            "SQUID_PORT": str(self.squid_port),
            "HEALTH_PORT": str(self.health_port),
            "HEALTH_BIND": "127.0.0.1",
            "SQUID_CONFIG": f"{self.root}/etc/squid.conf",
            "SQUID_DEFAULT_CONFIG": f"{REPO}/container/squid.conf.default",
            "SQUID_BINARY": SQUID,
            "SQUID_CERTGEN": CERTGEN,
            "TLS_DIR": f"{self.root}/etc/tls",
            "SHUTDOWN_TIMEOUT": "10",
        }
        for name in ("run", "log", "lib", "spool", "cache"):
            path = f"{self.root}/{name}"
            self.env[f"SQUID_{name.upper()}_DIR"] = path
            self.writable_dir(path)
        os.makedirs(f"{self.root}/etc/tls")
        os.chmod(f"{self.root}/etc", 0o755)

    @staticmethod
    def writable_dir(path: str) -> None:
        os.makedirs(path, exist_ok=True)
        os.chown(path, 0, 0)
        os.chmod(path, 0o775)

    def write_config(self, text: str) -> str:
        path = self.env["SQUID_CONFIG"]
        with open(path, "w") as file:
            file.write(text)
        os.chmod(path, 0o644)
        return path

    @property
    def state(self) -> dict | None:
        try:  # the file itself, as the supervisor wrote it
            with open(f"{self.root}/run/cephaloinit.state") as file:
                return json.load(file)
        except FileNotFoundError:
            return None

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def proxy():
    made = Proxy()
    yield made
    made.cleanup()


@pytest.fixture
def run(start, proxy):
    def _run(args=("run",), env=None):
        return start(list(args), env={**proxy.env, **(env or {})}, uid=UNPRIVILEGED_UID)
    return _run


def fetch(proxy: Proxy, url: str, timeout: float = 10) -> bytes:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy.squid_port}"}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


def health_get(proxy: Proxy, path: str) -> bytes:
    """The body of a health endpoint; an HTTPError for any status but 2xx."""
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.health_port}{path}", timeout=10) as answer:
        return answer.read()


def squid_pid(init) -> int:
    """Squid (with SMP, its master) as the host sees it: the state file has
    its PID in cephaloinit's namespace."""
    return [child.pid for child in init.children() if child.comm == "squid"][0]


def basic_config(proxy: Proxy, extra: str = "") -> str:
    return f"""\
http_port {proxy.squid_port}
http_access allow localhost
http_access deny all
pid_filename {proxy.root}/run/squid.pid
access_log stdio:/dev/stdout
cache_log /dev/stderr
cache_store_log none
pinger_enable off
max_filedescriptors 1024
shutdown_lifetime 5 seconds
{extra}"""


STARTUP_LINES = [
    "CephaloProxy entrypoint starting (UID: {uid}, GID: 0)",
    "Validating Squid configuration...",
    "Configuration validation passed",
    "Starting health check server on port {health_port}",
    "Health check server started (PID: ",
    "Starting Squid proxy...",
    "Squid started with PID ",
    "Container ready, entering monitoring loop",
]


def assert_in_order(text: str, expected: list[str]) -> None:
    position = 0
    for line in expected:
        found = text.find(line, position)
        assert found != -1, f"{line!r} missing or out of order in:\n{text}"
        position = found + len(line)


def test_start_serve_and_stop_log_the_contract_lines_in_order(run, proxy, origin):
    init = run()
    init.wait_for_line("Container ready")
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    # readiness is published just after the line is logged
    poll(lambda: proxy.state["state"] == "RUNNING" and proxy.state["ready"] is True,
         what="RUNNING and ready again")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0
    expected = [line.format(uid=UNPRIVILEGED_UID, health_port=proxy.health_port)
                for line in STARTUP_LINES]
    assert_in_order(init.text(), expected + [
        "Received signal SIGTERM, initiating graceful shutdown...",
        "Shutdown complete",
    ])
    assert "Traceback" not in init.text()


def test_an_idle_proxy_stops_in_about_squids_own_floor(run, proxy):
    init = run()
    init.wait_for_line("Container ready")
    sent = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0
    elapsed = time.monotonic() - sent
    assert elapsed < 4, f"idle stop took {elapsed:.1f}s"
    assert "Exiting normally" in init.text()  # Squid's own clean exit, relayed


def start_download(proxy: Proxy, url: str) -> tuple[threading.Thread, dict]:
    """A download through the proxy in a thread; its body or error lands in the
    dict. Returns once the origin has begun to answer it, Squid's client
    connection established."""
    result: dict = {}
    Origin.sending.clear()

    def download():
        try:
            result["body"] = fetch(proxy, url, timeout=20)
        except Exception as error:  # reported by the caller's assertion
            result["error"] = error

    client = threading.Thread(target=download, daemon=True)
    client.start()
    assert Origin.sending.wait(timeout=10), f"the origin never began to answer: {result}"
    assert _established(proxy.squid_port)
    return client, result


def stop_during_a_download(init, proxy, origin) -> None:
    """TERM while a download of about 2 s is in flight: it finishes whole,
    then cephaloinit exits 0."""
    client, result = start_download(proxy, origin + "/slow/20")
    init.signal(signal.SIGTERM)
    client.join(timeout=20)
    assert result.get("body") == b"x" * 20 * 1024, result
    assert init.wait(timeout=15) == 0


def test_a_download_in_flight_finishes_before_squid_stops(run, proxy, origin):
    init = run()
    init.wait_for_line("Container ready")
    stop_during_a_download(init, proxy, origin)


def _established(port: int) -> bool:
    from cephaloinit import squid
    return squid.established_connections((port,)) > 0


def test_invalid_config_exits_1_with_squids_message(run, proxy):
    proxy.write_config(basic_config(proxy, "no_such_directive on\n"))
    init = run()
    assert init.wait() == 1
    errors = [line for line in init.lines if b"[ERROR]" in line]
    assert len(errors) == 1
    assert b"is invalid" in errors[0] and b"no_such_directive" in errors[0]


def test_unwritable_directory_exits_1_naming_it(run, proxy):
    os.chmod(f"{proxy.root}/lib", 0o755)  # root-owned, not group-writable
    init = run()
    assert init.wait() == 1
    error = init.wait_for_line("[ERROR]").decode()
    assert f"Directory {proxy.root}/lib is not writable by UID {UNPRIVILEGED_UID} (GID 0)" in error
    assert "group 0 and group-writable" in error


def make_ca(directory: str, name: str = "tls") -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=CephaloProxy test CA", "-keyout", f"{directory}/{name}.key",
                    "-out", f"{directory}/{name}.crt"], check=True, capture_output=True)
    for suffix in ("crt", "key"):
        os.chmod(f"{directory}/{name}.{suffix}", 0o644)


def bump_config(proxy: Proxy) -> str:
    return basic_config(proxy, "").replace(
        f"http_port {proxy.squid_port}",
        f"http_port {proxy.squid_port} ssl-bump generate-host-certificates=on "
        f"dynamic_cert_mem_cache_size=4MB tls-cert={proxy.root}/lib/squid-ca.pem") + f"""
sslcrtd_program {CERTGEN} -s {proxy.root}/lib/ssl_db -M 4MB
sslcrtd_children 2
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
"""


@pytest.mark.skipif(not os.path.exists(CERTGEN) or not shutil.which("openssl"),
                    reason="needs Squid's certgen helper and openssl")
def test_ssl_bump_merges_the_ca_0600_and_squid_starts(run, proxy):
    make_ca(f"{proxy.root}/etc/tls")
    proxy.write_config(bump_config(proxy))
    init = run()
    init.wait_for_line("Container ready", timeout=30)
    merged = f"{proxy.root}/lib/squid-ca.pem"
    assert os.stat(merged).st_mode & 0o777 == 0o600
    assert os.stat(merged).st_uid == UNPRIVILEGED_UID
    assert os.path.isdir(f"{proxy.root}/lib/ssl_db")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_mismatched_key_exits_1_and_never_prints_the_key(run, proxy):
    tls = f"{proxy.root}/etc/tls"
    make_ca(tls)
    make_ca(tls, "other")
    os.replace(f"{tls}/other.key", f"{tls}/tls.key")
    proxy.write_config(bump_config(proxy))
    init = run()
    assert init.wait() == 1
    error = init.wait_for_line("[ERROR]").decode()
    assert "cannot be used together: they do not match" in error
    with open(f"{tls}/tls.key") as file:
        key_lines = [line for line in file.read().splitlines() if "-----" not in line]
    assert not any(line in init.text() for line in key_lines)
    assert "PRIVATE KEY" not in init.text()


@pytest.mark.parametrize("wait_for", [
    "Validating Squid configuration...",
    "Starting health check server",
    "Starting Squid proxy...",
    "Container ready",
])
def test_sigterm_in_each_start_up_state_exits_0_with_no_child_left(run, proxy, wait_for):
    init = run()
    init.wait_for_line(wait_for)
    pid = init.pid
    init.signal(signal.SIGTERM)
    tree = procfs.descendants(pid)
    assert init.wait(timeout=15) == 0
    assert "Shutdown complete" in init.text()
    assert [p for p in tree if proctree.is_alive(p)] == []


def test_squid_killed_in_running_exits_1_within_milliseconds(run, proxy):
    init = run()
    init.wait_for_line("Container ready")
    killed = time.monotonic()
    os.kill(squid_pid(init), signal.SIGKILL)
    init.wait_for_line("Squid process died: killed by SIGKILL")
    detected = time.monotonic() - killed
    assert init.wait(timeout=15) == 1
    assert detected < 1.0


def test_hup_with_a_valid_config_reloads_and_keeps_serving(run, proxy, origin):
    proxy.write_config(basic_config(proxy))
    init = run()
    init.wait_for_line("Container ready")
    squid_pid = proxy.state["squid_pid"]
    proxy.write_config(basic_config(proxy, "acl blocked dstdomain .example.invalid\n"))
    init.signal(signal.SIGHUP)
    init.wait_for_line("Squid reloaded its configuration")
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    assert proxy.state["squid_pid"] == squid_pid
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_hup_with_an_invalid_config_keeps_the_old_one(run, proxy, origin):
    proxy.write_config(basic_config(proxy))
    init = run()
    init.wait_for_line("Container ready")
    proxy.write_config(basic_config(proxy, "no_such_directive on\n"))
    init.signal(signal.SIGHUP)
    error = init.wait_for_line("Reload rejected").decode()
    assert "no_such_directive" in error
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    # readiness is published just after the line is logged
    poll(lambda: proxy.state["state"] == "RUNNING" and proxy.state["ready"] is True,
         what="RUNNING and ready again")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_a_squid_that_ignores_term_is_killed_at_the_shutdown_timeout(run, proxy):
    stubborn = f"{proxy.root}/stubborn-squid"
    with open(stubborn, "w") as file:
        file.write(f"#!/bin/sh\nexec {sys.executable} {REPO}/tests/system/programs/scripted_squid.py \"$@\"\n")
    os.chmod(stubborn, 0o755)
    proxy.write_config(basic_config(proxy))
    init = run(env={"SQUID_BINARY": stubborn, "SHUTDOWN_TIMEOUT": "2", "FAKE_IGNORE": "TERM,INT"})
    init.wait_for_line("Container ready")
    term_ends_at_the_deadline(init, timeout=2, slack=0.5)


def term_ends_at_the_deadline(init, timeout: int, slack: float) -> None:
    """TERM, and something refuses to stop: SHUTDOWN_TIMEOUT (``timeout``)
    later, no more than ``slack`` after it, SIGKILL ends it, exit 0."""
    sent = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0
    elapsed = time.monotonic() - sent
    assert timeout <= elapsed < timeout + slack, elapsed
    assert f"Shutdown timeout of {timeout}s passed; sending SIGKILL" in init.text()


def test_readiness_drain_turns_ready_off_while_squid_still_serves(run, proxy, origin):
    init = run(env={"READINESS_DRAIN": "3"})
    init.wait_for_line("Container ready")
    init.signal(signal.SIGTERM)
    init.wait_for_line("Readiness set to 503; Squid keeps serving for 3s")
    assert proxy.state["ready"] is False and proxy.state["state"] == "SHUTTING_DOWN"
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    assert init.wait(timeout=15) == 0


def test_validate_alone_exits_0_for_a_valid_config_and_1_for_an_invalid_one(run, proxy):
    init = run(args=("validate",))
    assert init.wait() == 0
    assert "Configuration validation passed" in init.text()
    assert "Starting Squid" not in init.text()
    proxy.write_config(basic_config(proxy, "no_such_directive on\n"))
    init = run(args=("validate",))
    assert init.wait() == 1
    assert "is invalid" in init.text()
