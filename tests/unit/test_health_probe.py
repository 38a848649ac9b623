"""``cephaloinit check``: arguments, URL parsing, answers and failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from cephaloinit.health import probe
from cephaloinit.settings import Settings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_check(args, capsys, settings=Settings()):
    code = probe.check(args, settings)
    return code, capsys.readouterr().err


@pytest.fixture
def listener():
    """A listening socket that never accepts: connects succeed, nothing answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def serve_once(answer: bytes) -> tuple[int, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def run():
        conn, _ = sock.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(1024)
            conn.sendall(answer)
        sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return sock.getsockname()[1], thread


# -- arguments ---------------------------------------------------------------------
def test_default_url_is_loopback_health_port():
    target, timeout = probe.parse_args([], Settings(health_port=9999))
    assert (target.host, target.port, target.path, timeout) == ("127.0.0.1", 9999, "/health", 3.0)


def test_default_url_follows_a_specific_bind_address():
    assert probe.default_url(Settings(health_bind="::1")) == "http://[::1]:8080/health"
    assert probe.default_url(Settings(health_bind="::")) == "http://127.0.0.1:8080/health"
    assert probe.default_url(Settings(health_bind="10.1.2.3")) == "http://10.1.2.3:8080/health"


def test_url_and_timeout_in_both_spellings():
    for args in (["--url", "http://h:81/ready", "--timeout", "0.5"],
                 ["--url=http://h:81/ready", "--timeout=0.5"]):
        target, timeout = probe.parse_args(args, Settings())
        assert (target.host, target.port, target.path, timeout) == ("h", 81, "/ready", 0.5)


@pytest.mark.parametrize("url, host, port, path", [
    ("http://[::1]:8080/health", "::1", 8080, "/health"),
    ("http://127.0.0.1", "127.0.0.1", 80, "/"),
    ("HTTP://localhost:1/a?b=c#frag", "localhost", 1, "/a?b=c"),
])
def test_urls(url, host, port, path):
    target = probe.parse_url(url)
    assert (target.host, target.port, target.path) == (host, port, path)


@pytest.mark.parametrize("url, host, port, path", [
    ("http://[::1]/", "::1", 80, "/"),
    ("http://h:/", "h", 80, "/"),
    ("http://H:65535", "H", 65535, "/"),
    ("http://h#frag/x@y", "h", 80, "/"),  # the fragment is cut before anything is looked at
])
def test_urls_at_the_edges(url, host, port, path):
    assert probe.parse_url(url) == probe.Target(url, host, port, path)


@pytest.mark.parametrize("url, reason", [
    ("ftp://h/", "only http:// URLs are supported"),
    ("http:/h", "only http:// URLs are supported"),
    ("https://u@h/", "only http:// URLs are supported"),  # the scheme is looked at first
    ("http://h\x7f/", "not a valid http URL"),
    ("http://h/\tx", "not a valid http URL"),
    ("http://u@[::1/", "not a valid http URL"),  # before the address
    ("http://[::1]x/", "malformed IPv6 address"),
    ("http://[::1]80/", "malformed IPv6 address"),
    ("http://[]:80/", "no host"),
    ("http://:x/", "no host"),  # before the port
    ("http://a..b/", "'a..b' is not a valid host name"),
    ("http://a..b:x/", "'a..b' is not a valid host name"),  # before the port
    ("http://h:0/", "port must be a number 1-65535"),
    ("http://h:+1/", "port must be a number 1-65535"),
    ("http://h:\u0661/", "port must be a number 1-65535"),  # digits, but not ASCII ones
    ("http://[::1]:65536/", "port must be a number 1-65535"),
])
def test_bad_urls_name_the_url_and_the_first_thing_wrong(url, reason):
    with pytest.raises(probe.ProbeError) as raised:
        probe.parse_url(url)
    assert str(raised.value) == f"--url {url!r}: {reason}"


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["extra"], "unknown argument 'extra'"),
    (["--url"], "--url needs a value"),
    (["--timeout"], "--timeout needs a value"),
    (["--timeout", "soon"], "--timeout 'soon': expected a number of seconds > 0"),
    (["--timeout", "0"], "--timeout '0': expected a number of seconds > 0"),
    (["--timeout", "nan"], "expected a number of seconds > 0"),
    (["--timeout=-1"], "expected a number of seconds > 0"),
    (["--url", "https://127.0.0.1/health"], "only http:// URLs are supported"),
    (["--url", "127.0.0.1:8080/health"], "only http:// URLs are supported"),
    (["--url", "http://:8080/health"], "no host"),
    (["--url", "http://h:99999/"], "port must be a number 1-65535"),
    (["--url", "http://h:x/"], "port must be a number 1-65535"),
    (["--url", "http://[::1/"], "malformed IPv6 address"),
    (["--url", "http://u@h/"], "not a valid http URL"),
    (["--url", "http://h/a b"], "not a valid http URL"),
])
def test_bad_arguments_are_one_line_and_exit_1(args, message, capsys):
    code, err = run_check(args, capsys)
    assert code == 1
    assert err.startswith("cephaloinit check: ") and message in err
    assert err.count("\n") == 1


def test_help_goes_to_stdout_and_exits_0(capsys):
    assert probe.check(["--help"], Settings()) == 0
    assert capsys.readouterr().out.startswith("usage: cephaloinit check")


# -- answers -------------------------------------------------------------------------
def test_200_exits_0_silently(capsys):
    port, thread = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n")
    assert run_check(["--url", f"http://127.0.0.1:{port}/health"], capsys) == (0, "")
    thread.join(5)


def test_503_exits_1_naming_the_url_and_reason(capsys):
    port, thread = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\nSquid (PID 7) is not running\n")
    url = f"http://127.0.0.1:{port}/health"
    code, err = run_check(["--url", url], capsys)
    assert code == 1
    assert err == f"cephaloinit check: {url}: HTTP 503: Squid (PID 7) is not running\n"
    thread.join(5)


def test_garbage_answer_exits_1(capsys):
    port, thread = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n")
    code, err = run_check(["--url", f"http://127.0.0.1:{port}/"], capsys)
    assert code == 1 and "not an HTTP answer" in err
    thread.join(5)


def test_refused_connection_exits_1(capsys, listener):
    port = listener.getsockname()[1]
    listener.close()  # now nothing listens there
    code, err = run_check(["--url", f"http://127.0.0.1:{port}/health"], capsys)
    assert code == 1
    assert err == f"cephaloinit check: http://127.0.0.1:{port}/health: cannot connect: Connection refused\n"


def test_silent_server_times_out_within_the_deadline(capsys, listener):
    port = listener.getsockname()[1]
    code, err = run_check(["--url", f"http://127.0.0.1:{port}/health", "--timeout", "0.2"], capsys)
    assert code == 1 and err.endswith("no answer within 0.2s\n")


def test_parse_answer_takes_the_first_body_line():
    assert probe.parse_answer(b"HTTP/1.1 503 X\r\nA: b\r\n\r\nwhy\nmore\n") == (503, "why")
    with pytest.raises(probe.ProbeError):
        probe.parse_answer(b"")


def test_the_check_command_imports_no_heavy_http_library():
    code = ("import sys; from cephaloinit.health import probe; "
            "heavy = {'urllib.request', 'http.client', 'email.parser', 'ssl'} & set(sys.modules); "
            "print(sorted(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=30)
    assert result.stdout.strip() == "[]", result.stderr
