"""A user's own squid.conf, mounted unchanged, with real Squid as a true PID 1
as an arbitrary UID: the container layer gives it a pid file it can write,
logs in the container's output, and a prompt stop (docs/configuration.md)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from .conftest import poll
from .test_proxy_run import fetch, origin, proxy, run  # noqa: F401

pytestmark = pytest.mark.timeout(90)

DEBIAN_STOCK = "/etc/squid/squid.conf"  # the file the Debian package installs
MINIMAL = "http_port {port}\nhttp_access allow localhost\nhttp_access deny all\n"


def serve_and_stop(init, proxy, origin) -> float:
    """Become ready, proxy one request, stop; return the stop's duration."""
    init.wait_for_line("Container ready", timeout=30)
    assert fetch(proxy, f"{origin}/") == b"hello from the origin\n"
    # the access log line, from Squid's own log to our output
    init.wait_for_line(f"{origin}/")
    started = time.monotonic()
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=30) == 0
    return time.monotonic() - started


def assert_clean_stop(init, took: float) -> None:
    text = init.text()
    assert "Shutdown timeout" not in text
    assert took < 8  # Squid's own floor is about 1.5 s; its default shutdown_lifetime is 30 s
    assert "[ERROR]" not in text and "Traceback" not in text


@pytest.mark.skipif(not os.path.exists(DEBIAN_STOCK), reason="needs Debian's squid package")
def test_debians_stock_squid_conf_runs_with_its_logs_in_our_output(run, proxy, origin):
    with open(DEBIAN_STOCK) as file:
        stock = file.read()
    # The one change: this test's port instead of 3128, which the host may use.
    assert stock.count("\nhttp_port 3128\n") == 1
    proxy.write_config(stock.replace("\nhttp_port 3128\n", f"\nhttp_port {proxy.squid_port}\n"))
    init = run()
    took = serve_and_stop(init, proxy, origin)
    assert_clean_stop(init, took)
    assert os.path.exists(f"{proxy.root}/run/squid.pid") is False  # Squid removed its own


def test_a_minimal_squid_conf_runs_with_its_logs_in_our_output(run, proxy, origin):
    proxy.write_config(MINIMAL.format(port=proxy.squid_port))
    init = run()
    took = serve_and_stop(init, proxy, origin)
    assert_clean_stop(init, took)


def test_a_typo_is_reported_as_squids_parse_error(run, proxy):
    proxy.write_config(MINIMAL.format(port=proxy.squid_port) + "this_is_not_a_directive on\n")
    init = run()
    assert init.wait(timeout=30) == 1
    errors = [line.decode() for line in init.lines if b"[ERROR]" in line]
    assert len(errors) == 1
    assert f"Squid configuration {proxy.env['SQUID_CONFIG']} is invalid" in errors[0]
    assert "this_is_not_a_directive" in errors[0]


def test_a_config_naming_its_own_log_files_keeps_them(run, proxy, origin):
    logs = f"{proxy.root}/log"
    proxy.write_config(MINIMAL.format(port=proxy.squid_port)
                       + f"access_log stdio:{logs}/access.log\ncache_log {logs}/cache.log\n")
    init = run()
    init.wait_for_line("Container ready", timeout=30)
    assert fetch(proxy, f"{origin}/") == b"hello from the origin\n"
    poll(lambda: os.path.exists(f"{logs}/access.log") and f"{origin}/" in open(f"{logs}/access.log").read(),
         what="the request in the config's own access.log")
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=30) == 0
    assert f"{origin}/" not in init.text()  # not on stdout as well
    assert os.path.getsize(f"{logs}/cache.log") > 0


def test_a_user_named_log_directory_that_is_not_writable_names_the_directive(run, proxy):
    locked = f"{proxy.root}/locked"
    os.makedirs(locked, mode=0o755)  # root's, not group-writable
    proxy.write_config(MINIMAL.format(port=proxy.squid_port) + f"cache_log {locked}/cache.log\n")
    init = run()
    assert init.wait(timeout=30) == 1
    errors = [line.decode() for line in init.lines if b"[ERROR]" in line]
    assert len(errors) == 1
    assert f"Directory {locked} (cache_log, {proxy.env['SQUID_CONFIG']} line 4) is not writable" in errors[0]
