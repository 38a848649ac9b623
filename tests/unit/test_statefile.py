"""The state file: what the supervisor writes is what the health server reads,
and whatever else the file holds is reduced to safe defaults, never a crash."""

from __future__ import annotations

import json
import os

import pytest

from cephaloinit import statefile
from cephaloinit.statefile import Published
from cephaloinit.states import State

RUNNING = Published(
    state=State.RUNNING, ready=True, reason="", supervisor_pid=1, squid_pid=20, health_pid=21,
    health_restarts=2, squid_kid_restarts=1, started_at=1000.5, state_since=1001.0, squid_port=3128,
    config="/etc/squid/squid.conf", cache_dirs=("/var/spool/squid",), ports=(3128, 3129),
    cachemgr_host="::1", cachemgr_port=3128, version="1.0", squid_version="6.13",
)


def document(**changes):
    base = json.loads(RUNNING.to_json())
    base.update(changes)
    return base


def parsed(**changes) -> Published:
    return statefile.from_json(json.dumps(document(**changes)))


def test_what_the_supervisor_publishes_reads_back_equal(tmp_path):
    path = f"{tmp_path}/cephaloinit.state"
    statefile.publish(path, RUNNING)
    assert statefile.read(path) == RUNNING
    assert os.listdir(tmp_path) == ["cephaloinit.state"]  # no temporary file left behind


def test_every_state_round_trips():
    for state in State:
        assert statefile.from_json(RUNNING._replace(state=state).to_json()).state is state


def test_no_file_is_none(tmp_path):
    assert statefile.read(f"{tmp_path}/missing") is None


def test_an_unreadable_file_is_unusable_not_an_exception(tmp_path):
    os.mkdir(f"{tmp_path}/cephaloinit.state")  # EISDIR on read
    read = statefile.read(f"{tmp_path}/cephaloinit.state")
    assert read.state is None and "cannot be read" in read.reason


def test_uptime_is_computed_once_here_and_never_negative():
    assert RUNNING.uptime(1100.5) == 100.0
    assert RUNNING.uptime(900.0) == 0.0
    assert Published(state=State.RUNNING).uptime(1100.0) is None


@pytest.mark.parametrize("data, why", [
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "larger than"),
    (b"[" * 20_000 + b"]" * 20_000, "not valid JSON"),  # nesting: RecursionError
    (b"[1, 2]", "not hold a JSON object"),
    (b'"RUNNING"', "not hold a JSON object"),
    (b"null", "not hold a JSON object"),
    (b"{}", "unknown supervisor state 'None'"),
    (b'{"state": "DANCING"}', "unknown supervisor state 'DANCING'"),
    (b'{"state": ["RUNNING"]}', "unknown supervisor state"),
    (b'{"state": "running"}', "unknown supervisor state 'running'"),
    (b'{"state": 1e999}', "unknown supervisor state 'inf'"),
    (b'{"state": "' + b"x" * 5000 + b'"}', "unknown supervisor state"),
])
def test_an_unusable_file_has_no_state_and_one_line_saying_why(data, why):
    read = statefile.from_json(data)
    assert read.state is None
    assert why in read.reason
    assert "\n" not in read.reason and len(read.reason) <= statefile.MAX_TEXT
    assert read._replace(reason="") == Published(state=None)  # every other field its default


@pytest.mark.parametrize("value", [0, -1, -2 ** 40, True, False, "100", 1.5, None, [1], {"pid": 1},
                                   2 ** 31, 2 ** 64])
@pytest.mark.parametrize("field", ["supervisor_pid", "squid_pid", "health_pid"])
def test_a_pid_that_is_not_a_positive_int_is_none(field, value):
    """None is never passed to kill(); 0 and -1 would address process groups."""
    assert getattr(parsed(**{field: value}), field) is None


@pytest.mark.parametrize("value", [0, 65536, -80, True, "3128", 3128.0, None])
def test_a_port_outside_1_65535_is_none(value):
    assert parsed(squid_port=value).squid_port is None


@pytest.mark.parametrize("value", ["1000", True, -1, None, [1], 2 ** 60])
def test_a_time_that_is_not_a_plausible_number_is_none(value):
    assert parsed(started_at=value).started_at is None
    assert parsed(started_at=value).uptime(2000.0) is None


def test_huge_and_non_finite_numbers_are_none():
    # Python's json reads these; float() of the first would overflow.
    data = RUNNING.to_json().replace("1000.5", "1" + "0" * 400).replace("1001.0", "NaN")
    read = statefile.from_json(data)
    assert read.started_at is None and read.state_since is None
    assert statefile.from_json(RUNNING.to_json().replace("1000.5", "Infinity")).started_at is None
    assert statefile.from_json(RUNNING.to_json().replace(": 3128", ": " + "9" * 5000)).state is None


@pytest.mark.parametrize("value", [1, "yes", "true", None, 1.0])
def test_ready_is_only_the_json_true(value):
    assert parsed(ready=value).ready is False


def test_restarts_must_be_a_non_negative_int():
    assert parsed(health_restarts=-1).health_restarts is None
    assert parsed(health_restarts="3").health_restarts is None
    assert parsed(health_restarts=3).health_restarts == 3
    assert parsed(squid_kid_restarts=True).squid_kid_restarts is None
    assert parsed(squid_kid_restarts=-2).squid_kid_restarts is None


def test_the_reason_is_one_bounded_printable_line():
    reason = parsed(reason="line one\nline two\r\n\x1b[31mred\x00" + "x" * 10_000).reason
    assert reason.startswith("line one line two [31mred")
    assert len(reason) == statefile.MAX_TEXT and reason.endswith("...")
    assert all(c.isprintable() for c in reason)
    assert parsed(reason={"a": 1}).reason == ""


def test_versions_are_bounded_strings():
    assert parsed(version=["1"]).version is None
    assert parsed(squid_version=6).squid_version is None
    assert len(parsed(version="v" * 10_000).version) == statefile.MAX_TEXT


@pytest.mark.parametrize("value", ["", 5, ["/etc/squid.conf"], "/etc/\x00squid.conf",
                                   "/etc/\nsquid.conf", "/" + "a" * 5000])
def test_a_config_path_that_is_not_one_printable_path_is_none(value):
    assert parsed(config=value).config is None


@pytest.mark.parametrize("value", ["/var/spool/squid", {"a": 1}, ["/a", 5], ["/a", ""],
                                   ["/a"] * 65])
def test_cache_dirs_that_are_not_a_list_of_paths_are_marked_unusable(value):
    """None, not (): readiness must fail on them, not skip the check."""
    assert parsed(cache_dirs=value).cache_dirs is None


def test_missing_cache_dirs_are_none_to_check():
    read = statefile.from_json(json.dumps({"state": "RUNNING"}))
    assert read.cache_dirs == ()
    assert parsed(cache_dirs=["/a", "/b"]).cache_dirs == ("/a", "/b")


def test_unknown_keys_are_not_carried():
    read = parsed(tls_key="-----BEGIN PRIVATE KEY-----", environment={"A": "b"})
    assert "PRIVATE" not in repr(read) and "environment" not in read._fields


def test_duplicate_keys_take_the_last_as_json_does():
    read = statefile.from_json(b'{"state": "ERROR", "state": "RUNNING", "squid_pid": 5}')
    assert read.state is State.RUNNING and read.squid_pid == 5


def test_a_file_just_under_the_limit_is_read():
    padding = "x" * (statefile.MAX_FILE_BYTES - 200)
    data = json.dumps({"state": "RUNNING", "padding": padding}).encode()
    assert len(data) < statefile.MAX_FILE_BYTES
    assert statefile.from_json(data).state is State.RUNNING


def test_a_file_over_the_limit_is_not_read_whole(tmp_path):
    path = f"{tmp_path}/cephaloinit.state"
    with open(path, "w") as file:
        file.write('{"state": "RUNNING", "padding": "' + "x" * (10 * statefile.MAX_FILE_BYTES) + '"}')
    read = statefile.read(path)
    assert read.state is None and "larger than" in read.reason


@pytest.mark.parametrize("value", [3128, "3128", [0], [3128, "x"], [1] * 65, {"a": 1}])
def test_ports_that_are_not_a_list_of_ports_are_empty(value):
    assert parsed(ports=value).ports == ()


@pytest.mark.parametrize("value", ["localhost", "example.com", "127.0.0.1:3128", "", 127, "1" * 100,
                                   "[::1]"])
def test_the_cache_manager_host_must_be_an_ip_address(value):
    """It is connected to: a name would need a lookup, which would block."""
    assert parsed(cachemgr_host=value).cachemgr_host is None


def test_ip_addresses_are_read_in_their_usual_form():
    assert parsed(cachemgr_host="127.0.0.1").cachemgr_host == "127.0.0.1"
    assert parsed(cachemgr_host="0:0:0:0:0:0:0:1").cachemgr_host == "::1"
