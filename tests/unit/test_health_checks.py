"""Liveness, readiness and /status decisions from the published state."""

import json

import pytest

from cephaloinit import statefile
from cephaloinit.health import checks

SUPERVISOR, SQUID = 100, 200


def state(**changes):
    base = {
        "state": "RUNNING", "ready": True, "reason": "", "supervisor_pid": SUPERVISOR,
        "squid_pid": SQUID, "health_pid": 300, "health_restarts": 0, "started_at": 1000.0,
        "state_since": 1010.0, "squid_port": 3128, "config": "/etc/squid/squid.conf",
        "cache_dirs": ["/var/cache/squid"], "version": "0.1.0", "squid_version": "5.7",
    }
    base.update(changes)
    return statefile.from_json(json.dumps(base))


def alive_only(*pids):
    return lambda pid: pid in pids


ALL_ALIVE = alive_only(SUPERVISOR, SQUID)


def ready(s, alive=ALL_ALIVE, readable=lambda p: True, writable=lambda p: True):
    return checks.readiness(s, alive, readable, writable)


# -- liveness -----------------------------------------------------------------
def test_no_state_published_is_not_alive():
    assert checks.liveness(None, ALL_ALIVE) == checks.Verdict(False, "no supervisor state published yet")


@pytest.mark.parametrize("name", ["INITIALIZING", "VALIDATING", "STARTING_HEALTH", "STARTING_SQUID"])
def test_start_up_states_without_squid_are_alive(name):
    assert checks.liveness(state(state=name, squid_pid=None), alive_only(SUPERVISOR)).ok


def test_running_with_both_alive_is_ok():
    assert checks.liveness(state(), ALL_ALIVE) == checks.Verdict(True, "OK")


def test_dead_squid_is_not_alive_and_named():
    verdict = checks.liveness(state(), alive_only(SUPERVISOR))
    assert verdict == checks.Verdict(False, f"Squid (PID {SQUID}) is not running")


def test_dead_squid_during_start_up_is_not_alive():
    assert not checks.liveness(state(state="STARTING_SQUID"), alive_only(SUPERVISOR)).ok


def test_dead_supervisor_is_not_alive():
    verdict = checks.liveness(state(), alive_only(SQUID))
    assert verdict.reason == f"supervisor (PID {SUPERVISOR}) is not running"


def test_running_without_squid_pid_is_not_alive():
    assert checks.liveness(state(squid_pid=None), ALL_ALIVE).reason == "Squid PID not published"


def test_shutting_down_checks_only_the_supervisor():
    assert checks.liveness(state(state="SHUTTING_DOWN"), alive_only(SUPERVISOR)).ok


def test_error_state_is_not_alive_with_its_reason():
    verdict = checks.liveness(state(state="ERROR", reason="squid exited with code 1"), ALL_ALIVE)
    assert verdict == checks.Verdict(False, "supervisor in ERROR: squid exited with code 1")


def test_exited_state_is_not_alive():
    assert checks.liveness(state(state="EXITED"), ALL_ALIVE).reason == "supervisor has exited"


def test_unknown_state_is_not_alive():
    assert "unknown supervisor state" in checks.liveness(state(state="DANCING"), ALL_ALIVE).reason


@pytest.mark.parametrize("pid", [0, -1, True, "100", 1.5, None])
def test_invalid_supervisor_pid_is_never_signalled(pid):
    signalled = []
    verdict = checks.liveness(state(supervisor_pid=pid), lambda p: signalled.append(p) or True)
    assert verdict.reason == "supervisor PID not published"
    assert signalled == []


def test_process_alive_on_this_process_and_a_free_pid():
    import os
    assert checks.process_alive(os.getpid())
    assert not checks.process_alive(2 ** 22 + 1)  # above pid_max's maximum


def test_a_stopped_process_is_not_alive_until_it_continues():
    """A Squid frozen by SIGSTOP exists but answers nobody: liveness must fail."""
    import os
    import signal
    import subprocess

    from cephaloinit import procfs

    child = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(child.pid, signal.SIGSTOP)
        deadline = 100
        while procfs.stat(child.pid).state not in ("T", "t") and deadline:
            os.sched_yield()  # the stop takes effect at the child's next scheduling
            deadline -= 1
        assert not checks.process_alive(child.pid)
        os.kill(child.pid, signal.SIGCONT)
        assert checks.process_alive(child.pid)
    finally:
        child.kill()
        child.wait()


# -- readiness ----------------------------------------------------------------
def test_running_ready_and_all_checks_pass_is_ready():
    assert ready(state()) == checks.Verdict(True, "READY")


@pytest.mark.parametrize("name", ["INITIALIZING", "VALIDATING", "STARTING_HEALTH", "STARTING_SQUID"])
def test_start_up_states_are_not_ready(name):
    verdict = ready(state(state=name, squid_pid=None, reason="waiting for Squid"))
    assert verdict == checks.Verdict(False, f"not ready: {name}: waiting for Squid")


def test_shutting_down_is_not_ready():
    assert ready(state(state="SHUTTING_DOWN")).reason == "not ready: SHUTTING_DOWN"


def test_reload_is_not_ready_with_the_reason():
    assert ready(state(ready=False, reason="reloading")) == checks.Verdict(False, "not ready: reloading")


def test_not_ready_without_reason_gets_a_generic_one():
    assert ready(state(ready=False)).reason == "not ready: supervisor reports not ready"


def test_dead_squid_is_not_ready():
    assert ready(state(), alive=alive_only(SUPERVISOR)).reason == f"Squid (PID {SQUID}) is not running"


def test_unreadable_config_is_not_ready():
    verdict = ready(state(), readable=lambda p: False)
    assert verdict == checks.Verdict(False, "config /etc/squid/squid.conf is not readable")


def test_unwritable_cache_dir_is_not_ready():
    verdict = ready(state(cache_dirs=["/a", "/b"]), writable=lambda p: p != "/b")
    assert verdict == checks.Verdict(False, "cache directory /b is not writable")


def test_missing_squid_port_is_not_ready():
    assert ready(state(squid_port=None)).reason == "Squid port not published"


def test_a_multi_line_reason_becomes_one_line():
    verdict = ready(state(ready=False, reason="line one\nline two\r\n" + "x" * 1000))
    assert "\n" not in verdict.reason and len(verdict.reason) < 400


def test_real_file_checks(tmp_path):
    conf = tmp_path / "squid.conf"
    conf.write_text("http_port 3128\n")
    assert checks.readable_file(str(conf))
    assert not checks.readable_file(str(tmp_path / "missing"))
    assert not checks.readable_file(str(tmp_path))  # a directory is not a config file
    assert checks.writable_dir(str(tmp_path))
    assert not checks.writable_dir(str(conf))


# -- /status ------------------------------------------------------------------
def test_status_document_is_a_whitelist():
    document = checks.status_document(state(tls_key="-----BEGIN PRIVATE KEY-----", reason="r"), 1100.0, 42)
    assert "tls_key" not in document
    assert "PRIVATE" not in repr(document)
    assert document["state"] == "RUNNING"
    assert document["health_pid"] == 42
    assert document["uptime_seconds"] == 100.0
    assert document["squid_version"] == "5.7"
    assert document["config"] == "/etc/squid/squid.conf"


def test_status_without_state_has_nulls():
    document = checks.status_document(None, 1.0, 42)
    assert document["state"] is None and document["uptime_seconds"] is None
    assert document["health_pid"] == 42


def test_status_drops_nested_values():
    assert checks.status_document(state(version={"x": 1}), 1100.0, 1)["version"] is None
