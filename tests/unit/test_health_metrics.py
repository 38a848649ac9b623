"""/metrics text, checked by a strict parser of the Prometheus text format 0.0.4,
and the parsers of Squid's counters page and of /proc/net/tcp."""

from __future__ import annotations

import json
import math
import re

import pytest

from cephaloinit import procfs, squid, statefile
from cephaloinit.health import cachemgr, metrics

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_exposition(text: str) -> dict[str, dict]:
    """Parse exposition text strictly; return {family: {type, help, samples}}.

    Fails on: a missing final newline, empty lines, a bad metric or label name,
    a bad escape, a value that is not a Go float, TYPE after a sample or twice,
    HELP twice, a family's samples not contiguous, a duplicate series.
    """
    assert text.endswith("\n"), "the last line must end with a newline"
    families: dict[str, dict] = {}
    seen_series: set = set()
    current = None
    finished: set[str] = set()

    def family(name):
        if name not in families:
            families[name] = {"type": None, "help": None, "samples": []}
        return families[name]

    for line in text[:-1].split("\n"):
        assert line, "no empty lines"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert NAME.match(name), f"bad metric name {name!r}"
                fam = family(name)
                if parts[1] == "TYPE":
                    assert len(parts) == 4 and parts[3] in TYPES, line
                    assert fam["type"] is None, f"TYPE twice for {name}"
                    assert not fam["samples"], f"TYPE after samples for {name}"
                    fam["type"] = parts[3]
                else:
                    assert fam["help"] is None, f"HELP twice for {name}"
                    help_text = parts[3] if len(parts) == 4 else ""
                    assert re.fullmatch(r"(?:[^\\\n]|\\\\|\\n)*", help_text), f"bad HELP escape: {line}"
                    fam["help"] = help_text
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?", line)
        assert match, f"malformed sample line {line!r}"
        name, _, label_text, value, _ = match.groups()
        labels = parse_labels(label_text or "")
        value_ok = value in ("NaN", "+Inf", "-Inf") or re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value)
        assert value_ok, f"bad value {value!r}"
        if name != current:
            assert name not in finished, f"samples of {name} are not contiguous"
            if current is not None:
                finished.add(current)
            current = name
        series = (name, tuple(sorted(labels.items())))
        assert series not in seen_series, f"duplicate series {series}"
        seen_series.add(series)
        family(name)["samples"].append((labels, float(value.replace("Inf", "inf"))))
    return families


def parse_labels(text: str) -> dict[str, str]:
    labels = {}
    position = 0
    while position < len(text):
        match = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|\Z)').match(text, position)
        assert match, f"malformed labels {text!r} at {position}"
        name, raw, _ = match.groups()
        assert name not in labels, f"label {name} twice"
        labels[name] = raw.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        position = match.end()
    return labels


def value(families, name, **labels):
    for sample_labels, sample_value in families[name]["samples"]:
        if sample_labels == labels:
            return sample_value
    raise KeyError((name, labels))


STATE = {
    "state": "RUNNING", "ready": True, "reason": "", "supervisor_pid": 1, "squid_pid": 20,
    "health_restarts": 2, "started_at": 1000.0, "state_since": 1001.0, "squid_port": 3128,
    "config": "/etc/squid/squid.conf", "cache_dirs": [], "version": "0.1.0", "squid_version": "5.7",
}

# Captured from Squid 5.7 (/usr/sbin/squid on Debian), trimmed.
SQUID_COUNTERS = """\
sample_time = 1795784382.900985 (Fri, 27 Nov 2026 12:59:42 GMT)
client_http.requests = 12
client_http.hits = 3
client_http.errors = 1
client_http.kbytes_in = 5
client_http.kbytes_out = 40
client_http.hit_kbytes_out = 7
server.all.requests = 9
server.all.errors = 0
server.all.kbytes_in = 35
server.all.kbytes_out = 4
server.http.requests = 9
icp.pkts_sent = 0
cd.memory = 0
page_faults = 22
select_loops = 6
cpu_time = 0.051800
wall_time = 2.037789
swap.outs = 0
aborted_requests = 2
"""


def render(state=STATE, squid_up=True, sample=None, health=None):
    published = statefile.from_json(json.dumps(state)) if state is not None else None
    text = metrics.render(metrics.families(published, 1100.0, squid_up, sample,
                                           health or {"requests": {200: 5, 503: 1}, "connections": 3}))
    return text, parse_exposition(text)


def test_running_with_cachemgr_is_valid_exposition_with_every_family():
    sample = cachemgr.SquidSample(cachemgr.parse_counters(SQUID_COUNTERS), "", 4)
    _, families = render(sample=sample)
    for name, fam in families.items():
        assert fam["type"] in ("counter", "gauge") and fam["help"], name
        assert name.startswith("cephaloproxy_")
        assert name.endswith("_total") == (fam["type"] == "counter"), name
    assert value(families, "cephaloproxy_state", state="RUNNING") == 1
    assert sum(v for _, v in families["cephaloproxy_state"]["samples"]) == 1
    assert len(families["cephaloproxy_state"]["samples"]) == 8
    assert value(families, "cephaloproxy_uptime_seconds") == 100
    assert value(families, "cephaloproxy_start_time_seconds") == 1000
    assert value(families, "cephaloproxy_health_restarts_total") == 2
    assert value(families, "cephaloproxy_ready") == 1
    assert value(families, "cephaloproxy_squid_up") == 1
    assert value(families, "cephaloproxy_squid_cachemgr_up") == 1
    assert value(families, "cephaloproxy_squid_client_connections") == 4
    assert value(families, "cephaloproxy_squid_client_http_requests_total") == 12
    assert value(families, "cephaloproxy_squid_client_http_hits_total") == 3
    assert value(families, "cephaloproxy_squid_client_http_errors_total") == 1
    assert value(families, "cephaloproxy_squid_client_http_received_bytes_total") == 5 * 1024
    assert value(families, "cephaloproxy_squid_client_http_sent_bytes_total") == 40 * 1024
    assert value(families, "cephaloproxy_squid_server_requests_total") == 9
    assert value(families, "cephaloproxy_squid_aborted_requests_total") == 2
    assert value(families, "cephaloproxy_squid_cpu_seconds_total") == pytest.approx(0.0518)
    assert value(families, "cephaloproxy_health_requests_total", code="200") == 5
    assert value(families, "cephaloproxy_health_connections") == 3
    assert value(families, "cephaloproxy_build_info", version="0.1.0", squid_version="5.7") == 1


def test_cachemgr_down_keeps_the_supervisor_metrics():
    _, families = render(sample=cachemgr.SquidSample(None, "Connection refused", 0))
    assert value(families, "cephaloproxy_squid_cachemgr_up") == 0
    assert value(families, "cephaloproxy_state", state="RUNNING") == 1
    assert not [name for name in families if name.startswith("cephaloproxy_squid_client_http")]


def test_no_state_published_is_still_valid_with_every_state_0():
    _, families = render(state=None, squid_up=False, sample=None)
    assert all(v == 0 for _, v in families["cephaloproxy_state"]["samples"])
    assert value(families, "cephaloproxy_squid_up") == 0
    assert value(families, "cephaloproxy_squid_cachemgr_up") == 0
    assert "cephaloproxy_uptime_seconds" not in families


@pytest.mark.parametrize("name", ["INITIALIZING", "VALIDATING", "STARTING_HEALTH", "STARTING_SQUID",
                                  "SHUTTING_DOWN", "ERROR", "EXITED"])
def test_each_state_is_the_one_set_to_1(name):
    _, families = render(state=dict(STATE, state=name), squid_up=False)
    assert [labels["state"] for labels, v in families["cephaloproxy_state"]["samples"] if v == 1] == [name]
    assert value(families, "cephaloproxy_ready") == 0


def test_label_values_and_help_are_escaped():
    family = metrics.Family("x_total", "counter", 'help with \\ and\nnewline').add(1, v='a"b\\c\nd')
    text = metrics.render([family])
    assert parse_exposition(text)["x_total"]["samples"] == [({"v": 'a"b\\c\nd'}, 1.0)]
    text, families = render(state=dict(STATE, version='1"\n\\'))
    assert value(families, "cephaloproxy_build_info", version='1"\n\\', squid_version="5.7") == 1


def test_the_strict_parser_rejects_broken_text():
    for broken in ("x 1", "x 1\n\n", "# TYPE x bogus\nx 1\n", "x 1\n# TYPE x gauge\n",
                   'x{a="1} 1\n', "x one\n", "x 1\ny 1\nx 2\n", "x 1\nx 1\n", "1x 1\n",
                   'x{a="\\q"} 1\n'):
        with pytest.raises(AssertionError):
            parse_exposition(broken)


@pytest.mark.parametrize("number, text", [(1, "1"), (0.5, "0.5"), (3.0, "3"), (True, "1"),
                                          (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"),
                                          (1e20, "1e+20")])
def test_values_are_formatted_as_go_floats(number, text):
    assert metrics.format_value(number) == text


# -- Squid's counters page --------------------------------------------------------
def test_counters_parser_reads_squid_5_7_output():
    counters = cachemgr.parse_counters(SQUID_COUNTERS)
    assert counters["client_http.requests"] == 12
    assert counters["cpu_time"] == pytest.approx(0.0518)
    assert counters["sample_time"] == pytest.approx(1795784382.900985)


def test_counters_parser_skips_junk():
    counters = cachemgr.parse_counters("HTTP/1.1 200 OK\nno separator\nkey with space = 1\n"
                                      "a = \nb = x\nc = nan\nd = inf\ne = 7\n\n")
    assert counters == {"e": 7}


def test_counters_parser_on_an_html_error_page_finds_nothing():
    assert cachemgr.parse_counters("<html><body>Access Denied</body></html>") == {}


# -- /proc/net/tcp -------------------------------------------------------------------
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:0C38 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1
   2: 0100007F:0C38 0100007F:A1B3 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
   3: 0100007F:0C38 0100007F:A1B4 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   4: 0100007F:A1B2 0100007F:0C38 01 00000000:00000000 00:00000000 00000000  1000        0 4 1 0 20 4 30 10 -1
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0C38 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000  1000 0 5 1 0 20 4 30 10 -1
"""


def test_established_connections_to_the_port_are_counted():
    tcp, tcp6 = procfs.parse_net_tcp(PROC_NET_TCP), procfs.parse_net_tcp(PROC_NET_TCP6)
    assert squid.count_established(tcp, (3128,)) == 2  # not LISTEN, TIME_WAIT, or the client side
    assert squid.count_established(tcp6, (3128,)) == 1
    assert squid.count_established(tcp, (8080,)) == 0


def test_established_connections_from_a_proc_directory(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(PROC_NET_TCP)
    (tmp_path / "net" / "tcp6").write_text(PROC_NET_TCP6)
    assert metrics.squid_client_connections((3128,), str(tmp_path)) == 3
    assert metrics.squid_client_connections((3128,), str(tmp_path / "missing")) is None


# -- Squid's info page -----------------------------------------------------------------
def test_info_figures_are_gauges_in_base_units_with_window_labels():
    from .test_cachemgr import INFO_6_13

    info = cachemgr.parse_info(INFO_6_13)
    sample = cachemgr.SquidSample(cachemgr.parse_counters(SQUID_COUNTERS), "", 4, info)
    _, families = render(sample=sample)
    assert value(families, "cephaloproxy_squid_open_fds") == 9
    assert value(families, "cephaloproxy_squid_max_fds") == 1024
    assert value(families, "cephaloproxy_squid_hit_ratio", type="requests", window="5m") == 0.255
    assert value(families, "cephaloproxy_squid_hit_ratio", type="bytes", window="60m") == 1.0
    assert len(families["cephaloproxy_squid_hit_ratio"]["samples"]) == 4
    assert value(families, "cephaloproxy_squid_median_service_time_seconds",
                 type="dns", window="5m") == pytest.approx(0.01865)
    assert len(families["cephaloproxy_squid_median_service_time_seconds"]["samples"]) == 8
    for name in ("cephaloproxy_squid_open_fds", "cephaloproxy_squid_max_fds",
                 "cephaloproxy_squid_hit_ratio", "cephaloproxy_squid_median_service_time_seconds"):
        assert families[name]["type"] == "gauge"


def test_without_an_info_page_its_families_are_absent_and_the_counters_stay():
    sample = cachemgr.SquidSample(cachemgr.parse_counters(SQUID_COUNTERS), "", 4, None)
    _, families = render(sample=sample)
    assert "cephaloproxy_squid_open_fds" not in families
    assert value(families, "cephaloproxy_squid_client_http_requests_total") == 12
