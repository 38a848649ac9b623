"""Round two of trying to break ``cephaloinit run`` the way users and attackers
would: a stop during start-up, validate beside a running proxy, reloads that
used to take it down, FIFOs, key material in error lines, a PID 1 started
without stdout. Real Squid as a true PID 1, as an arbitrary UID in group 0.
docs/reliability.md lists each finding with its test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from .conftest import REPO, UNPRIVILEGED_UID, poll
from .test_proxy_run import basic_config, fetch, make_ca, origin, proxy, run  # noqa: F401

pytestmark = pytest.mark.timeout(90)


def wait_ready(init) -> None:
    init.wait_for_line("Container ready", timeout=30)


def serving(run, proxy, env: dict | None = None):
    """cephaloinit on the basic config, once it is ready."""
    proxy.write_config(basic_config(proxy))
    init = run(env=env)
    wait_ready(init)
    return init


def stops_cleanly(init) -> None:
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


# -- F7: a stop right after the health server was started -----------------------------
def test_a_stop_right_after_the_health_server_starts_is_never_lost(run, proxy):
    """The health child used to reset its handlers for a moment after start:
    a TERM then was lost and the stop waited for the SIGKILL deadline."""
    proxy.write_config(basic_config(proxy))
    for _ in range(10):
        init = run(env={"SHUTDOWN_TIMEOUT": "5"})
        init.wait_for_line("Starting health check server")
        init.signal(signal.SIGTERM)
        assert init.wait(timeout=15) == 0
        assert "Shutdown timeout" not in init.text()
        assert "Traceback" not in init.text()
        init.stop()


# -- F8: `validate` beside a running proxy ------------------------------------------------
def test_validate_beside_a_running_proxy_touches_nothing_it_owns(run, proxy, origin):
    init = serving(run, proxy)
    before = proxy.state
    pid_file = f"{proxy.root}/run/squid.pid"
    with open(pid_file) as file:
        squid_pid = file.read()
    env = {**proxy.env, "PATH": os.environ["PATH"], "PYTHONPATH": REPO}
    result = subprocess.run(["setpriv", f"--reuid={UNPRIVILEGED_UID}", "--regid=0", "--clear-groups",
                             sys.executable, "-m", "cephaloinit", "validate"],
                            env=env, cwd=REPO, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    assert proxy.state == before  # the state file is the running supervisor's
    with open(pid_file) as file:
        assert file.read() == squid_pid
    assert not [name for name in os.listdir(f"{proxy.root}/run") if name.startswith(".validate")]
    init.signal(signal.SIGHUP)
    init.wait_for_line("Squid reloaded its configuration")
    assert fetch(proxy, f"{origin}/") == b"hello from the origin\n"
    stops_cleanly(init)


# -- F9: reloads that used to end the container ---------------------------------------------
def test_a_reload_that_adds_a_cache_dir_initialises_it_and_keeps_serving(run, proxy, origin):
    init = serving(run, proxy)
    cache = f"{proxy.root}/cache/new"
    proxy.write_config(basic_config(proxy, f"cache_dir ufs {cache} 10 4 4\n"))
    init.signal(signal.SIGHUP)
    init.wait_for_line("Squid reloaded its configuration")
    assert os.path.isdir(f"{cache}/00")
    assert fetch(proxy, f"{origin}/") == b"hello from the origin\n"
    stops_cleanly(init)
    assert "Squid process died" not in init.text()


def test_a_reload_after_the_mounted_config_was_deleted_is_rejected(run, proxy, origin):
    init = serving(run, proxy)
    os.unlink(proxy.env["SQUID_CONFIG"])
    init.signal(signal.SIGHUP)
    line = init.wait_for_line("Reload rejected")
    assert b"is gone" in line
    assert fetch(proxy, f"{origin}/") == b"hello from the origin\n"
    poll(lambda: proxy.state["ready"], what="ready again after the rejected reload")
    stops_cleanly(init)


def test_a_reload_onto_a_fifo_is_rejected_without_blocking(run, proxy, origin):
    init = serving(run, proxy)
    os.unlink(proxy.env["SQUID_CONFIG"])
    os.mkfifo(proxy.env["SQUID_CONFIG"])
    init.signal(signal.SIGHUP)
    assert b"is a FIFO, not a regular file" in init.wait_for_line("Reload rejected")
    stops_cleanly(init)  # PID 1 still sees signals


# -- F10: a macro in pid_filename -------------------------------------------------------------
def test_a_pid_filename_with_the_service_name_macro_becomes_ready(run, proxy):
    config = basic_config(proxy).replace(f"{proxy.root}/run/squid.pid",
                                         f"{proxy.root}/run/${{service_name}}.pid")
    proxy.write_config(config)
    init = run(env={"STARTUP_TIMEOUT": "10"})
    wait_ready(init)
    stops_cleanly(init)


# -- F11: key material in an error line ---------------------------------------------------------
def test_a_config_including_the_ca_key_fails_without_printing_it(run, proxy):
    make_ca(f"{proxy.root}/etc/tls")
    proxy.write_config(basic_config(proxy, f"include {proxy.root}/etc/tls/*\n"))
    init = run()
    assert init.wait(timeout=15) == 1
    text = init.text()
    with open(f"{proxy.root}/etc/tls/tls.key") as file:
        body = [line for line in file.read().splitlines() if "-----" not in line]
    assert not any(line in text for line in body)
    assert "holds a private key" in text


# -- F12: a FIFO as squid.conf at start-up --------------------------------------------------------
def test_a_fifo_as_squid_conf_is_refused_and_pid_1_stays_responsive(run, proxy):
    os.mkfifo(proxy.env["SQUID_CONFIG"])
    init = run()
    assert init.wait(timeout=15) == 1
    assert "is a FIFO, not a regular file" in init.text()


# -- F13: a stale pid file that cannot be removed ----------------------------------------------------
def test_a_stale_pid_file_that_cannot_be_removed_is_one_error_line(run, proxy):
    sticky = f"{proxy.root}/sticky"
    os.makedirs(sticky)
    os.chmod(sticky, 0o1777)  # anyone may create, only the owner may remove
    with open(f"{sticky}/squid.pid", "w") as file:
        file.write("12345\n")  # owned by root, not by the test UID
    proxy.write_config(basic_config(proxy).replace(f"{proxy.root}/run/squid.pid",
                                                   f"{sticky}/squid.pid"))
    init = run()
    assert init.wait(timeout=15) == 1
    text = init.text()
    assert f"Cannot remove the stale pid file {sticky}/squid.pid: Operation not permitted" in text
    assert "Traceback" not in text


# -- F14: PID 1 started without stdout ---------------------------------------------------------------
def test_pid_1_started_with_stdout_closed_still_sees_signals(start, proxy):
    proxy.write_config(basic_config(proxy))
    init = start(["run"], env=proxy.env, uid=UNPRIVILEGED_UID,
                 wrapper=["sh", "-c", 'exec 1>&- "$@"', "sh"])
    poll(lambda: (proxy.state or {}).get("state") == "RUNNING", timeout=30, what="RUNNING")
    stops_cleanly(init)
    poll(lambda: proxy.state["state"] == "EXITED", what="EXITED published")


def test_a_reload_that_changes_pid_filename_is_rejected_and_squid_keeps_serving(run, proxy, origin):
    """Squid writes its pid file when it starts, not when it reconfigures:
    accepted, this reload waited for a file that never came and ended the container."""
    init = serving(run, proxy, env={"STARTUP_TIMEOUT": "5"})
    proxy.write_config(basic_config(proxy).replace(f"{proxy.root}/run/squid.pid",
                                                   f"{proxy.root}/run/other.pid"))
    init.signal(signal.SIGHUP)
    assert b"pid_filename changed from" in init.wait_for_line("Reload rejected")
    poll(lambda: proxy.state["ready"], what="ready again after the rejected reload")
    assert fetch(proxy, f"{origin}/") == b"hello from the origin\n"
    stops_cleanly(init)
