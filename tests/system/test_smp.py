"""Squid's SMP mode (`workers 2`) under cephaloinit as a true PID 1, as an
arbitrary UID in group 0, with real Squid: the kids serve, readiness waits
for every worker, HUP reaches them all, a kid's death is logged and counted,
and a stop or the deadline ends the whole tree."""

from __future__ import annotations

import os
import signal

import pytest

from cephaloinit import procfs, smp, squid

from .. import proctree
from ..ports import free_port
from .conftest import poll
from .test_proxy_run import (basic_config, fetch, health_get, origin,  # noqa: F401 (fixtures)
                             proxy, run, squid_pid, start_download, stop_during_a_download,
                             term_ends_at_the_deadline)

pytestmark = pytest.mark.timeout(90)

WORKERS_2 = "workers 2\n"


def workers_of(master: int) -> list[smp.Kid]:
    return sorted((kid for kid in smp.kids(master) if kid.is_worker), key=lambda kid: kid.name)


def start_with_two_workers(run, proxy):
    proxy.write_config(basic_config(proxy, WORKERS_2))
    init = run()
    init.wait_for_line("Container ready")
    return init


def serves_then_stops_with_0(init, proxy, origin) -> None:
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_workers_2_runs_two_serving_kids_below_squids_master(run, proxy, origin):
    init = start_with_two_workers(run, proxy)
    assert "Squid serves with 2 workers (SMP)" in init.text()
    master = squid_pid(init)
    assert "--foreground" in procfs.cmdline(master) and "-N" not in procfs.cmdline(master)
    names = sorted(kid.name for kid in smp.kids(master))
    assert names == ["squid-1", "squid-2", "squid-coord-3"]
    # Ready only once both workers hold the listening socket.
    assert squid.listening_workers(proxy.squid_port, master) == 2
    assert health_get(proxy, "/ready").decode() == "READY\n"  # the master holds no socket: its workers do
    assert fetch(proxy, origin + "/") == b"hello from the origin\n"
    init.wait_for_line("TCP_MISS/200")  # the access log of a kid is relayed
    init.signal(signal.SIGTERM)
    assert init.wait(timeout=15) == 0


def test_not_ready_while_a_worker_does_not_listen_on_the_port(run, proxy):
    # Worker 2 listens elsewhere: the port has a listener (worker 1), yet
    # not every worker serves it, so Squid never counts as ready.
    other = free_port()
    proxy.write_config(basic_config(proxy, WORKERS_2).replace(
        f"http_port {proxy.squid_port}\n",
        f"if ${{process_number}} = 2\nhttp_port {other}\nelse\nhttp_port {proxy.squid_port}\nendif\n"))
    init = run(env={"STARTUP_TIMEOUT": "3"})
    error = init.wait_for_line("did not start accepting connections", timeout=20).decode()
    assert f"on port {proxy.squid_port} within 3s" in error
    assert init.wait(timeout=15) == 1
    assert "Container ready" not in init.text()


def test_hup_reaches_every_kid_and_ready_returns_once_both_listen(run, proxy, origin):
    init = start_with_two_workers(run, proxy)
    master = squid_pid(init)
    before = workers_of(master)
    proxy.write_config(basic_config(proxy, WORKERS_2 + "acl blocked dstdomain .example.invalid\n"))
    init.signal(signal.SIGHUP)
    init.wait_for_line("Squid reloaded its configuration")
    text = init.text()
    for kid in ("kid1", "kid2", "kid3"):
        assert f"{kid}| Reconfiguring Squid Cache" in text, kid
    assert workers_of(master) == before  # reconfigured, not restarted
    assert squid.listening_workers(proxy.squid_port, master) == 2
    serves_then_stops_with_0(init, proxy, origin)


def test_hup_that_changes_workers_is_rejected_and_squid_keeps_running(run, proxy, origin):
    init = start_with_two_workers(run, proxy)
    proxy.write_config(basic_config(proxy, "workers 3\n"))
    init.signal(signal.SIGHUP)
    error = init.wait_for_line("Reload rejected").decode()
    assert "workers changed from 2 to 3" in error and "restart the container" in error
    serves_then_stops_with_0(init, proxy, origin)


def test_a_killed_kid_is_logged_counted_and_the_container_stays_up(run, proxy, origin):
    init = start_with_two_workers(run, proxy)
    master = squid_pid(init)
    victim = workers_of(master)[0]
    os.kill(victim.pid, signal.SIGKILL)
    init.wait_for_line("Squid kid squid-1 (PID ")
    init.wait_for_line("Squid restarted its kid squid-1 (PID ")
    assert "[WARNING] Squid kid squid-1" in init.text()
    poll(lambda: proxy.state["squid_kid_restarts"] == 1, what="one kid restart published")
    assert proxy.state["state"] == "RUNNING" and proxy.state["ready"] is True
    assert "cephaloproxy_squid_kid_restarts_total 1\n" in health_get(proxy, "/metrics").decode()
    poll(lambda: squid.listening_workers(proxy.squid_port, master) == 2, what="both workers back")
    serves_then_stops_with_0(init, proxy, origin)


def test_a_worker_squid_stopped_restarting_comes_back_with_a_reload_and_is_watched_again(
        run, proxy, origin):
    # Squid's master stops restarting a kid that fails 5 times within seconds
    # of its start and serves on with the others; on HUP it forgets those
    # failures and starts the kid again. (Here the HUP comes within
    # KID_RESTART_WAIT, so cephaloinit is still looking for the kid; after
    # it gave up, the reload makes it look again: tests/unit/test_smp.py.)
    init = start_with_two_workers(run, proxy)
    master = squid_pid(init)
    for failure in range(1, 6):
        victim = workers_of(master)[1]
        assert victim.name == "squid-2"
        os.kill(victim.pid, signal.SIGKILL)
        init.wait_for_lines("Squid kid squid-2 (PID ", failure)  # its PID in the namespace
        if failure < 5:
            init.wait_for_lines("Squid restarted its kid squid-2", failure)
    init.signal(signal.SIGHUP)
    init.wait_for_line("Squid reloaded its configuration", timeout=20)
    init.wait_for_lines("Squid restarted its kid squid-2", 5)
    text = init.text()
    assert text.rindex("Squid restarted its kid squid-2") > text.index("Squid is reloading it")
    assert squid.listening_workers(proxy.squid_port, master) == 2
    poll(lambda: proxy.state["ready"] is True, what="ready after the reload")
    # The kid that came back is watched like any other.
    os.kill(workers_of(master)[1].pid, signal.SIGKILL)
    init.wait_for_lines("Squid kid squid-2 (PID ", 6)
    serves_then_stops_with_0(init, proxy, origin)


def test_the_masters_death_is_fatal_and_takes_its_kids(run, proxy):
    init = start_with_two_workers(run, proxy)
    master = squid_pid(init)
    kids = [kid.pid for kid in smp.kids(master)]
    os.kill(master, signal.SIGKILL)
    # The kids go while cephaloinit still runs (its exit as PID 1 would end
    # them anyway): seen before it has exited.
    poll(lambda: not any(proctree.is_alive(pid) for pid in kids), what="every kid gone")
    assert proctree.is_alive(init.pid), "the kids outlived cephaloinit"
    init.wait_for_line("Squid process died: killed by SIGKILL")
    assert init.wait(timeout=15) == 1


def test_a_download_on_any_kid_finishes_before_squid_stops(run, proxy, origin):
    init = start_with_two_workers(run, proxy)
    tree = procfs.descendants(init.pid)
    stop_during_a_download(init, proxy, origin)
    assert "Shutdown complete" in init.text()
    assert [pid for pid in tree if proctree.is_alive(pid)] == []


def test_the_deadline_kills_and_reaps_the_whole_tree(run, proxy, origin):
    # shutdown_lifetime far beyond SHUTDOWN_TIMEOUT, and a client that stays:
    # only the deadline ends it, for the master and every kid.
    proxy.write_config(basic_config(proxy, WORKERS_2).replace(
        "shutdown_lifetime 5 seconds", "shutdown_lifetime 60 seconds"))
    init = run(env={"SHUTDOWN_TIMEOUT": "3"})
    init.wait_for_line("Container ready")
    tree = procfs.descendants(init.pid)
    assert len(tree) >= 5  # health, master, coordinator, two workers
    start_download(proxy, origin + "/slow/600")  # 60 s: cut by the deadline
    term_ends_at_the_deadline(init, timeout=3, slack=1.5)
    assert [pid for pid in tree if proctree.is_alive(pid)] == []
